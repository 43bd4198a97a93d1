"""Post-traffic checks and previews on LocalStack's Lambda, which enforces RevisionIds,
reports the version an alias ran and keeps tags: the builder moves the alias and records the
old version, the client runs the checks through the alias from the result, and a build that
fails its check is rolled back to the version before it; a preview is a tagged function of
its own, found by its tags when it goes.

All at once only: LocalStack's UpdateAlias fails (InternalError) on any non-empty
AdditionalVersionWeights, so the weighted steps are tested on the emulator."""
from __future__ import annotations

import json
import time

import pytest

from builder import rollout as model
from builder.contract import BuildResult
from builder.rollout import RolledBack
from lambda3.rollout import after_deploy
from tests.localstack.project import APP_V2, build_yaml

RELEASE = """rollout: {rollout}
post_checks:
  - event: events/after.json
    expect: {{v: 2}}
"""


def release(project, app: str, rollout: str) -> None:
    project.repo.commit("release", files={
        "app.py": app, "events/after.json": json.dumps({"probe": 1}),
        "build.yaml": build_yaml(project.role) + RELEASE.format(rollout=rollout)})


def drive(project, result: dict, lines: list[str]) -> None:
    after_deploy(project.aws, BuildResult.from_json(result), show=lines.append,
                 sleep=lambda s: time.sleep(min(s, 0.2)), poll=0.2)


def alias(project) -> tuple[str, dict, model.RolloutState | None]:
    found = project.other.get_alias(FunctionName=project.function, Name="live")
    weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return found["FunctionVersion"], weights, model.decode(found.get("Description"))


def test_post_checks_complete_a_good_build_and_roll_a_bad_one_back(project):
    assert project.deploy()["ok"]
    release(project, APP_V2, "all-at-once")
    started = project.deploy()
    assert started["ok"], started
    assert started["rollout"]["phase"] == model.POST_CHECKS
    assert started["rollout"]["post_checks"][0]["expect"] == {"v": 2}
    version, weights, state = alias(project)
    assert (version, weights, state.old) == ("2", {}, "1")

    project.calls.forget()
    lines: list[str] = []
    drive(project, started, lines)
    assert "live: post-traffic check events/after.json passed on version 2" in lines
    version, weights, state = alias(project)
    assert (version, weights, state.phase) == ("2", {}, model.COMPLETE)
    moves = project.calls.params("UpdateAlias")
    assert len(moves) == 1 and moves[0].get("RevisionId")  # LocalStack gives one
    invoked = project.calls.of("Invoke")
    assert [c.params["Qualifier"] for c in invoked] == ["live"]
    assert invoked[0].answer["ExecutedVersion"] == "2"

    broken = "def handler(event, context):\n    return {'v': 'broken'}\n"
    release(project, broken, "all-at-once")
    moved = project.deploy()
    assert moved["ok"], moved
    assert moved["rollout"]["phase"] == model.POST_CHECKS and alias(project)[0] == "3"
    with pytest.raises(RolledBack, match="post-traffic check events/after.json failed: the "
                                         "answer .*broken.* does not contain"):
        drive(project, moved, [])
    version, weights, state = alias(project)
    assert (version, weights, state.phase) == ("2", {}, model.ROLLED_BACK)


def test_a_preview_is_its_own_tagged_function_and_goes_when_removed(project):
    from builder.reconcile import PREVIEW_TAG, REPOSITORY_TAG, preview_tags
    from lambda3.previews import remove_pull_request

    assert project.deploy()["ok"]
    preview = project.deploy(preview=5, contract=3)
    assert preview["ok"], preview
    name = f"{project.function}-pr-5"
    assert preview["function"] == name
    arn = project.other.get_function_configuration(FunctionName=name)["FunctionArn"]
    repository = dict(preview_tags(project.url, 5))[REPOSITORY_TAG]
    tags = project.other.list_tags(Resource=arn)["Tags"]
    assert (tags[PREVIEW_TAG], tags[REPOSITORY_TAG]) == ("5", repository)
    lines = remove_pull_request(project.aws, repository=repository, pr=5)
    assert f"preview function {name} (pull request #5):" in lines
    functions = {f["FunctionName"] for f in project.other.list_functions()["Functions"]}
    assert name not in functions and project.function in functions
