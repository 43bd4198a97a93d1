"""Deploying to LocalStack, whose functions are Pending and updates InProgress for a while:
the engine waits for them instead of racing ahead."""
from __future__ import annotations

from tests.localstack.project import APP_V2

REFUSALS = {"ResourceConflictException", "PreconditionFailedException"}


def refusals(project) -> list[str]:
    """The errors LocalStack answered the engine with for racing or for stale data."""
    return [code for code in project.calls.errors() if code in REFUSALS]


def states_seen(project, operation: str = "GetFunctionConfiguration") -> list[tuple]:
    return [(c.answer.get("State"), c.answer.get("LastUpdateStatus"))
            for c in project.calls.of(operation) if not c.error]


def test_first_deploy_waits_for_the_pending_function(project):
    result = project.deploy()
    assert result["ok"], result
    assert (result["version"], result["alias"]) == ("1", "live")
    created = project.calls.of("CreateFunction")
    assert len(created) == 1 and created[0].answer["State"] == "Pending"
    seen = states_seen(project)
    assert any(state == "Pending" for state, _ in seen), seen
    assert project.sleeps, "the engine went on without waiting for the function"
    names = project.calls.names()
    last_read = max(i for i, n in enumerate(names[:names.index("PublishVersion")])
                    if n == "GetFunctionConfiguration")
    assert project.calls.made[last_read].answer["State"] == "Active"
    assert project.alias_version() == "1"
    assert project.configuration()["CodeSha256"] == result["code_sha256"]
    assert refusals(project) == []


def test_code_only_redeploy_then_noop_publishes_nothing(project):
    assert project.deploy()["ok"]
    project.repo.commit("code only", files={"app.py": APP_V2})
    second = project.deploy()
    assert second["ok"], second
    assert [s["action"] for s in second["plan"]] == ["UpdateFunctionCode", "PublishVersion",
                                                     "SetAlias"]
    assert second["version"] == "2" and project.alias_version() == "2"
    assert not any(layer["changed"] for layer in second["layers"])
    assert len(project.layer_versions()) == 1
    assert project.versions()[-1]["CodeSha256"] == second["code_sha256"]

    before = len(project.calls.made)
    third = project.deploy()
    assert third["ok"] and third["plan"] == [] and third["version"] == "2"
    writes = [c.operation for c in project.calls.made[before:]
              if not c.operation.startswith(("Get", "List"))]
    assert writes == []
    assert [v["Version"] for v in project.versions()] == ["1", "2"]
    assert len(project.layer_versions()) == 1
    assert refusals(project) == []


def test_second_update_waits_for_the_first_to_finish(project):
    """Configuration then code: LocalStack answers 409 to an update while one is InProgress,
    so the engine must see LastUpdateStatus Successful before sending the next one."""
    assert project.deploy()["ok"]
    project.commit_code_and_memory()
    result = project.deploy()
    assert result["ok"], result
    assert [s["action"] for s in result["plan"]][:2] == ["UpdateFunctionConfiguration",
                                                         "UpdateFunctionCode"]
    assert refusals(project) == []
    names = project.calls.names()
    between = project.calls.made[names.index("UpdateFunctionConfiguration") + 1:
                                 names.index("UpdateFunctionCode")]
    reads = [c.answer.get("LastUpdateStatus") for c in between
             if c.operation == "GetFunctionConfiguration"]
    assert reads and reads[-1] == "Successful"
    assert "InProgress" in reads, "LocalStack's update finished before it was read: no proof"
    config = project.configuration()
    assert config["MemorySize"] == 256 and config["CodeSha256"] == result["code_sha256"]
