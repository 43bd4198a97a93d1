"""Pull-request previews on the emulator: the builder deploys every function of a request
with `preview: N` to `<name>-pr-<N>` (a `functions:` entry's own `name` too), tagged with
the pull request; their removal finds them by those tags and touches nothing else; the
action's `preview` input does both from the workflow's event."""
from __future__ import annotations

import json

import pytest

from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuildRequest
from builder.errors import Lambda3Error
from builder.handler import deploy_request
from builder.reconcile import PREVIEW_TAG, REPOSITORY_TAG
from builder.settings import BuilderSettings
from builder.timing import Timings
from lambda3.previews import remove_pull_request

APP = "def handler(event, context):\n    return {'v': %d}\n"


def wrapper(aws) -> Aws:
    return Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url), sleep=lambda s: None)


@pytest.fixture
def shop(aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    """A repository with two functions: api (named shop-api) and worker (shop-worker)."""
    role = aws.lambda_role()
    common = f"    runtimes: [python3.11]\n    handler: app.handler\n    role: {role}\n"
    build = ("functions:\n"
             f"  api:\n    name: shop-api\n{common}    files: [app.py]\n"
             f"  worker:\n{common}    files: [app.py]\n    tags: {{team: shop}}\n")
    repo = make_repo({"app.py": APP % 1, "build.yaml": build})
    url = git_server.add_repo("acme/shop", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)

    def deploy(**fields):
        request = BuildRequest(action="build", repository=url, ref="main", token=git_token,
                               function="shop", alias="live", **fields)
        request = BuildRequest.from_event(request.to_event())
        return deploy_request(request, Timings(), settings=BuilderSettings.from_environ(),
                              aws=wrapper(aws))

    return repo, url, deploy


def names(aws) -> set[str]:
    return {f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]}


def tags(aws, name: str) -> dict[str, str]:
    lam = aws.client("lambda")
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    return lam.list_tags(Resource=arn)["Tags"]


def test_a_preview_deploys_every_function_under_its_own_name_and_tags_it(aws, shop):
    repo, url, deploy = shop
    assert deploy().ok  # production: shop-api and shop-worker
    repo.commit("the pull request", files={"app.py": APP % 2})
    result = deploy(preview=7)
    assert result.ok, result.error
    assert [(f.key, f.name, f.version) for f in result.functions] == [
        ("api", "shop-api-pr-7", "1"), ("worker", "shop-worker-pr-7", "1")]
    assert names(aws) == {"shop-api", "shop-worker", "shop-api-pr-7", "shop-worker-pr-7"}
    host = url.split("/")[2].split(":")[0]
    assert tags(aws, "shop-api-pr-7") == {PREVIEW_TAG: "7",
                                          REPOSITORY_TAG: f"{host}/acme/shop"}
    assert tags(aws, "shop-worker-pr-7")["team"] == "shop"  # the build file's tags as well
    assert PREVIEW_TAG not in tags(aws, "shop-api")
    lam = aws.client("lambda")
    prod = lam.invoke(FunctionName="shop-api", Qualifier="live")["Payload"].read()
    assert json.loads(prod) == {"v": 1}  # production untouched


def test_closing_the_pull_request_removes_only_its_previews(aws, shop):
    repo, url, deploy = shop
    assert deploy().ok and deploy(preview=7).ok and deploy(preview=8).ok
    lam = aws.client("lambda")
    host = url.split("/")[2].split(":")[0]
    aws.create_function("billing-pr-7", {"app.py": APP % 1},  # another repository's
                        Tags={PREVIEW_TAG: "7", REPOSITORY_TAG: f"{host}/acme/billing"})
    aws.create_function("legacy-pr-7", {"app.py": APP % 1})  # no tags: not lambda3's
    listed = remove_pull_request(wrapper(aws), repository=f"{host}/acme/shop", pr=7,
                                 dry_run=True)
    assert "preview function shop-api-pr-7 (pull request #7):" in listed
    assert "shop-api-pr-7" in names(aws)  # a dry run deletes nothing
    lines = remove_pull_request(wrapper(aws), repository=f"{host}/acme/shop", pr=7)
    assert [line for line in lines if line.startswith("preview")] == [
        "preview function shop-api-pr-7 (pull request #7):",
        "preview function shop-worker-pr-7 (pull request #7):"]
    assert names(aws) == {"shop-api", "shop-worker", "shop-api-pr-8", "shop-worker-pr-8",
                          "billing-pr-7", "legacy-pr-7"}
    assert lam.get_alias(FunctionName="shop-api", Name="live")["FunctionVersion"] == "1"
    assert remove_pull_request(wrapper(aws), repository=f"{host}/acme/shop", pr=7) == [
        "no preview of pull request #7 to remove"]


def test_a_preview_name_over_64_characters_is_refused_before_anything_is_deployed(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    role = aws.lambda_role()
    build = ("function:\n  runtimes: [python3.11]\n  handler: app.handler\n"
             f"  role: {role}\n  files: [app.py]\n")
    url = git_server.add_repo("acme/long", make_repo({"app.py": APP % 1,
                                                      "build.yaml": build}).path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    base = "f" * 58

    def deploy(preview: int):
        request = BuildRequest.from_event(BuildRequest(
            action="build", repository=url, ref="main", token=git_token, function=base,
            preview=preview).to_event())
        return deploy_request(request, Timings(), settings=BuilderSettings.from_environ(),
                              aws=wrapper(aws))

    with pytest.raises(Lambda3Error, match=f"the preview of {base} would be {base}-pr-12345, "
                                           "67 characters; Lambda allows 64"):
        deploy(12345)
    assert names(aws) == set()
    assert deploy(7).function == f"{base}-pr-7"


# -- the action's `preview` input -----------------------------------------------------------
RECORDING_BUILDER = '''
import json

def handler(event, context):
    print("lambda3 request " + event["log_marker"])
    print("seen", json.dumps({k: event.get(k) for k in
                              ("function", "alias", "ref", "preview", "contract", "rollout")}))
    name = event["function"] + ("-pr-%d" % event["preview"] if event.get("preview") else "")
    return {"ok": True, "commit": event["ref"], "version": "1", "alias": event["alias"],
            "function": name,
            "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:" + name}
'''
HEAD = "a" * 40


def pull_request_event(tmp_path, action: str = "opened", *, fork: bool = False) -> str:
    path = tmp_path / "event.json"
    head_repo = "someone/hello" if fork else "octo-org/hello"
    path.write_text(json.dumps({"action": action, "number": 7, "pull_request": {
        "number": 7, "head": {"sha": HEAD, "repo": {"full_name": head_repo}},
        "base": {"sha": "b" * 40, "repo": {"full_name": "octo-org/hello"}}}}))
    return str(path)


@pytest.fixture
def recording_builder(aws):
    from tests.functional.test_oidc import _create_role

    _create_role(aws)
    aws.create_function("lambda3-builder", {"app.py": RECORDING_BUILDER})


def action_environ(aws, oidc_issuer, tmp_path, action: str = "opened", **inputs):
    from tests.functional.test_oidc import _action_environ

    return _action_environ(aws, oidc_issuer, tmp_path, GITHUB_EVENT_NAME="pull_request",
                           GITHUB_EVENT_PATH=pull_request_event(tmp_path, action),
                           LAMBDA3_FUNCTION_NAME="hello", **inputs)


def seen(out: str) -> dict:
    line = next(line for line in out.splitlines() if line.startswith("seen "))
    return json.loads(line[len("seen "):])


def test_the_action_deploys_a_pull_requests_head_as_its_preview(aws, oidc_issuer,
                                                                 recording_builder, tmp_path,
                                                                 capsys):
    from lambda3.action.run import main
    from tests.functional.test_oidc import _read_outputs

    assert main(action_environ(aws, oidc_issuer, tmp_path, LAMBDA3_PREVIEW="function")) == 0
    out = capsys.readouterr().out
    assert seen(out) == {"function": "hello", "alias": None, "ref": HEAD, "preview": 7,
                         "contract": 3, "rollout": "all-at-once"}
    assert _read_outputs(tmp_path / "output")["function-arn"].endswith(":function:hello-pr-7")
    summary = (tmp_path / "sum").read_text()
    assert "`hello-pr-7`" in summary
    assert "Preview of pull request #7: removed when it closes." in summary

    assert main(action_environ(aws, oidc_issuer, tmp_path, LAMBDA3_PREVIEW="alias",
                               LAMBDA3_ROLLOUT="canary 10 1")) == 0
    assert seen(capsys.readouterr().out) == {"function": "hello", "alias": "pr-7", "ref": HEAD,
                                             "preview": None, "contract": 2,
                                             "rollout": "canary 10 1"}


@pytest.mark.parametrize("inputs, says", [
    ({"LAMBDA3_PREVIEW": "branch"}, "the input preview is 'branch' (use function"),
    ({"LAMBDA3_PREVIEW": "alias", "LAMBDA3_ALIAS": "live"},
     "preview: alias names the alias pr-<N> itself, and alias is 'live'"),
    ({"LAMBDA3_PREVIEW": "function", "LAMBDA3_PROMOTE_FROM": "staging"},
     "preview and promote-from do not go together"),
    ({"LAMBDA3_PREVIEW": "function", "GITHUB_EVENT_NAME": "push"},
     "preview needs a pull_request event; this run is push"),
    ({"LAMBDA3_PREVIEW": "function", "GITHUB_EVENT_NAME": "pull_request_target"},
     "preview does not run on pull_request_target"),
])
def test_preview_settings_are_refused_in_one_line(aws, oidc_issuer, recording_builder,
                                                   tmp_path, capsys, inputs, says):
    from lambda3.action.run import main

    environ = {**action_environ(aws, oidc_issuer, tmp_path), **inputs}
    assert main(environ) == 1
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    assert len(errors) == 1 and errors[0].startswith("::error title=lambda3 settings::")
    assert says in errors[0]


def test_a_forks_pull_request_is_refused_with_the_fix(aws, oidc_issuer, recording_builder,
                                                      tmp_path, capsys):
    from lambda3.action.run import main

    environ = {**action_environ(aws, oidc_issuer, tmp_path, LAMBDA3_PREVIEW="function"),
               "GITHUB_EVENT_PATH": pull_request_event(tmp_path, fork=True)}
    assert main(environ) == 1
    out = capsys.readouterr().out
    assert "pull request #7 comes from someone/hello" in out
    assert "github.event.pull_request.head.repo.full_name == github.repository" in out
    assert "seen " not in out  # the builder was not invoked


def test_the_action_removes_the_preview_when_the_pull_request_closes(
        aws, oidc_issuer, recording_builder, tmp_path, capsys):
    from lambda3.action.run import main

    repo_tag = "github.com/octo-org/hello"
    for name in ("hello-pr-7", "hello-api-pr-7"):
        aws.create_function(name, {"app.py": APP % 1},
                            Tags={PREVIEW_TAG: "7", REPOSITORY_TAG: repo_tag})
        aws.client("lambda").publish_version(FunctionName=name,
                                             Description="lambda3 0123456789ab "
                                                         "2026-12-01T00:00:00Z")
    aws.create_function("hello-pr-8", {"app.py": APP % 1},
                        Tags={PREVIEW_TAG: "8", REPOSITORY_TAG: repo_tag})
    environ = action_environ(aws, oidc_issuer, tmp_path, "closed", LAMBDA3_PREVIEW="function")
    assert main({**environ, "LAMBDA3_DRY_RUN": "true"}) == 0
    assert "Preview of #7 would be removed" in (tmp_path / "sum").read_text()
    assert {"hello-pr-7", "hello-api-pr-7"} <= names(aws)
    assert main(environ) == 0
    out = capsys.readouterr().out
    assert "seen " not in out  # no build for a closed pull request
    assert "lambda3: preview function hello-api-pr-7 (pull request #7):" in out
    assert "lambda3:   delete function hello-pr-7" in out
    assert names(aws) == {"lambda3-builder", "hello-pr-8"}
    assert "### Preview of #7 removed" in (tmp_path / "sum").read_text()


def test_the_cli_deploys_a_preview_and_prune_removes_it_by_its_tags(
        aws, shop, git_token, tmp_path, monkeypatch, capsys):
    from lambda3.cli import main

    _, url, _ = shop
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    monkeypatch.chdir(tmp_path)
    args = ["deploy", "--local-builder", "--endpoint-url", aws.endpoint_url, "-g", url,
            "-f", "shop", "-b", "main", "-y"]
    assert main([*args, "--preview", "0"]) == 1
    assert "'preview' must be a pull request number, got 0" in capsys.readouterr().err
    assert main([*args, "--preview", "9"]) == 0
    assert names(aws) == {"shop-api-pr-9", "shop-worker-pr-9"}
    host = url.split("/")[2].split(":")[0]
    prune = ["prune", "--endpoint-url", aws.endpoint_url, "--previews", "--pr", "9"]
    assert main([*prune, "--repository", f"{host}/acme/shop", "--dry-run"]) == 0
    assert "  would delete function shop-api-pr-9" in capsys.readouterr().out
    assert main([*prune, "--repository", f"{host}/acme/other"]) == 0
    assert "no preview of pull request #9 to remove" in capsys.readouterr().out
    assert main([*prune, "--repository", f"{host}/acme/shop"]) == 0
    assert names(aws) == set()
    assert main([*prune[:-2], "--repository", f"{host}/acme/shop"]) == 1
    assert "--repository goes with --pr N alone" in capsys.readouterr().err
