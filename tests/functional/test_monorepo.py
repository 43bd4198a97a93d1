"""Several functions from one repository (`functions:`), deployed on the emulator through
the builder's deploy path, fed by the real git server: one fetch, each function its own plan,
version and alias, a shared custom layer published once, and a failure in one function's
apply (a real AWS error shape through botocore's event hooks) reported for that function."""
from __future__ import annotations

import json

import pytest
from botocore.awsrequest import AWSResponse

from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuildRequest, BuildResult
from builder.errors import Lambda3Error
from builder.handler import deploy_request
from builder.timing import Timings
from lambda3.action.run import outputs_from_result
from lambda3.action.summary import render_summary

pytestmark = pytest.mark.network  # the api function installs idna from PyPI

KEYS = ("api", "worker", "cron")
NAMES = {"api": "shop-api", "worker": "shop-worker", "cron": "nightly"}


def app(name: str, version: int) -> str:
    return (f"from shopshared import greet\n\ndef handler(event, context):\n"
            f"    return {{'fn': {name!r}, 'v': {version}, 'hello': greet()}}\n")


def build_yaml(role: str) -> str:
    return f"""
functions:
  api:
    runtimes: [python3.11]
    handler: app.handler
    role: {role}
    source_dir: services/api
    files: [app.py]
    dependencies: [services/api/requirements.txt]
    layers: [shared]
  worker:
    runtimes: [python3.11]
    handler: app.handler
    role: {role}
    memory: 256
    source_dir: services/worker
    files: [app.py]
    layers: [shared]
  cron:
    name: nightly
    runtimes: [python3.11]
    handler: app.handler
    role: {role}
    source_dir: services/cron
    files: [app.py]
layers:
  shared:
    source_dir: libs
    dest_dir: python
    files: [shopshared]
"""


@pytest.fixture
def project(aws, git_server, make_repo, tmp_path, monkeypatch):
    role = aws.lambda_role()
    files = {f"services/{key}/app.py": app(key, 1) for key in KEYS}
    files.update({"services/api/requirements.txt": "idna==3.7\n",
                  "libs/shopshared/__init__.py": "def greet():\n    return 'hi'\n",
                  "build.yaml": build_yaml(role)})
    repo = make_repo(files)
    url = git_server.add_repo("acme/shop", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    return repo, url


def make_aws(aws) -> Aws:
    return Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url), sleep=lambda s: None)


def deploy(url, token, wrapper, **event) -> BuildResult:
    request = BuildRequest.from_event({"action": "build", "repository": url, "ref": "main",
                                       "token": token, "function": "shop", "alias": "live",
                                       **event})
    try:
        answer = deploy_request(request, Timings(), aws=wrapper)
    except Lambda3Error as error:  # what the handler answers for it
        answer = BuildResult.failed(error)
    return BuildResult.from_json(answer.to_json())


def by_key(result: BuildResult) -> dict:
    return {f.key: f for f in result.functions}


def alias_of(aws, name: str) -> str:
    return aws.client("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"]


def versions_of(aws, name: str) -> list[str]:
    found = aws.client("lambda").list_versions_by_function(FunctionName=name)["Versions"]
    return [v["Version"] for v in found if v["Version"] != "$LATEST"]


def layers_of(aws, name: str) -> list[str]:
    config = aws.client("lambda").get_function_configuration(FunctionName=name)
    return [layer["Arn"] for layer in config.get("Layers", [])]


def layer_versions(aws, name: str) -> list[dict]:
    return aws.client("lambda").list_layer_versions(LayerName=name)["LayerVersions"]


def test_first_deploy_then_one_function_changed(project, aws, git_token):
    repo, url = project
    wrapper = make_aws(aws)
    first = deploy(url, git_token, wrapper)
    assert first.ok, first.error
    functions = by_key(first)
    assert list(functions) == list(KEYS)
    assert {k: (f.name, f.version, f.alias, f.deployed) for k, f in functions.items()} == {
        k: (NAMES[k], "1", "live", True) for k in KEYS}
    assert first.function is None and first.version is None  # several: no single fields
    shared = layer_versions(aws, "shop-shared")
    assert len(shared) == 1  # published once for api and worker
    arn = shared[0]["LayerVersionArn"]
    assert arn in layers_of(aws, "shop-api") and layers_of(aws, "shop-worker") == [arn]
    assert layers_of(aws, "nightly") == []
    assert len(layer_versions(aws, "shop-api-dependencies")) == 1
    assert layer_versions(aws, "shop-worker-dependencies") == []  # worker lists none
    assert sorted(first.changed_layers) == ["shop-api-dependencies", "shop-shared"]
    assert any("attach layer shop-shared as published for api" in line
               for line in functions["worker"].plan_text)
    singles = first.each_function()  # what a client drives and prunes per function
    assert [(r.function, r.version, r.alias, r.functions[0].key) for r in singles] == [
        (NAMES[k], "1", "live", k) for k in KEYS]
    outputs = outputs_from_result(first)  # the action's outputs and step summary
    assert json.loads(outputs["versions"]) == {"api": "1", "worker": "1", "cron": "1"}
    assert (outputs["version"], outputs["commit"]) == ("", first.commit)
    text = render_summary(first)
    assert text.startswith("### lambda3 deployed 3 functions: `shop-api`, `shop-worker`")
    assert all(f"#### `{k}`: `{NAMES[k]}` (deployed)" in text for k in KEYS)

    repo.commit("worker v2", files={"services/worker/app.py": app("worker", 2)})
    second = deploy(url, git_token, wrapper)
    assert second.ok, second.error
    functions = by_key(second)
    assert {k: f.version for k, f in functions.items()} == {"api": "1", "worker": "2",
                                                            "cron": "1"}
    assert functions["api"].plan == () and functions["cron"].plan == ()
    assert second.changed_layers == ()
    assert (versions_of(aws, "shop-api"), versions_of(aws, "nightly")) == (["1"], ["1"])
    assert alias_of(aws, "shop-worker") == "2"
    assert len(layer_versions(aws, "shop-shared")) == 1


def test_only_the_functions_asked_for_are_deployed(project, aws, git_token):
    _, url = project
    result = deploy(url, git_token, make_aws(aws), functions=["cron"])
    assert result.ok, result.error
    assert [f.key for f in result.functions] == ["cron"]
    # one function: the result's own fields are that function's, as for `function:`
    assert (result.function, result.version, result.alias) == ("nightly", "1", "live")
    names = [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]]
    assert "nightly" in names and "shop-api" not in names and "shop-worker" not in names
    unknown = deploy(url, git_token, make_aws(aws), functions=["nope"])
    assert unknown.ok is False and "unknown function 'nope'" in unknown.error.message


def fail_update_code_of(wrapper: Aws, function: str) -> list[str]:
    """UpdateFunctionCode of `function` answers a real 500 ServiceException."""
    calls = []

    def fail(params, **kwargs):
        if f"/functions/{function}/" not in params.get("url_path", ""):
            return None
        calls.append(function)
        response = AWSResponse("https://lambda.test", 500, {}, None)
        return response, {"Error": {"Code": "ServiceException",
                                    "Message": "injected UpdateFunctionCode failure"},
                          "ResponseMetadata": {"HTTPStatusCode": 500}}

    wrapper.clients("lambda").meta.events.register_first(
        "before-call.lambda.UpdateFunctionCode", fail)
    return calls


def test_a_failure_in_one_function_names_it_and_leaves_its_alias(project, aws, git_token):
    repo, url = project
    wrapper = make_aws(aws)
    assert deploy(url, git_token, wrapper).ok
    repo.commit("all v2", files={f"services/{key}/app.py": app(key, 2) for key in KEYS})
    calls = fail_update_code_of(wrapper, "shop-worker")
    result = deploy(url, git_token, wrapper)
    assert calls == ["shop-worker"]
    assert result.ok is False
    message = result.error.message
    assert message.startswith("function worker (shop-worker): ")
    assert "injected UpdateFunctionCode failure" in message
    assert "deployed: api (shop-api)" in message and "not deployed: cron (nightly)" in message
    functions = by_key(result)
    assert (functions["api"].deployed, functions["api"].version) == (True, "2")
    assert functions["worker"].deployed is False and functions["worker"].error is not None
    assert functions["cron"].deployed is False and functions["cron"].error is None
    assert [alias_of(aws, n) for n in ("shop-api", "shop-worker", "nightly")] == ["2", "1", "1"]
    assert [r.function for r in result.each_function()] == ["shop-api"]  # deployed only
    text = render_summary(result)
    assert "### lambda3 failed at step `apply:UpdateFunctionCode`" in text
    assert "#### `worker`: `shop-worker` (failed)" in text
    assert "#### `api`: `shop-api` (deployed)" in text
    assert "#### `cron`: `nightly` (not deployed)" in text
    assert json.loads(outputs_from_result(result)["versions"])["api"] == "2"

    wrapper = make_aws(aws)  # the failure is gone: a re-run converges
    again = deploy(url, git_token, wrapper)
    assert again.ok, again.error
    assert {k: (f.version, f.deployed) for k, f in by_key(again).items()} == {
        "api": ("2", True), "worker": ("2", True), "cron": ("2", True)}


def test_a_function_outside_the_allow_list_is_refused_before_anything_is_built(
        project, aws, git_token, monkeypatch):
    _, url = project
    monkeypatch.setenv("LAMBDA3_ALLOW", "shop-*")
    result = deploy(url, git_token, make_aws(aws))
    assert result.ok is False
    assert (result.error.type, result.error.step) == ("TargetNotAllowed", "request")
    assert "'nightly'" in result.error.message
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_lambda3_build_builds_every_function_or_the_named_ones(project, git_server, tmp_path,
                                                               capsys, git_token, monkeypatch):
    from lambda3.cli import main

    _, url = project
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    out = tmp_path / "dist"
    common = [url, "--ref", "main", "--out", str(out), "--workdir", str(tmp_path / "w")]
    assert main(["build", *common, "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert [f["key"] for f in built["functions"]] == list(KEYS)
    names = {f["key"]: [c["name"] for c in f["components"]] for f in built["functions"]}
    assert names == {"api": ["dependencies", "shared", "function"],
                     "worker": ["shared", "function"], "cron": ["function"]}
    shared = {c["zip"] for f in built["functions"] for c in f["components"]
              if c["name"] == "shared"}
    assert shared == {str(out / "shared.zip")}  # built once for both
    assert (out / "api" / "function.zip").is_file() and (out / "cron" / "function.zip").is_file()
    assert main(["build", *common, "--only", "worker", "--only", "cron"]) == 0
    text = capsys.readouterr().out
    assert "function worker:" in text and "function cron:" in text and "function api:" not in text


def test_lambda3_deploy_only_one_function_then_all(project, aws, tmp_path, capsys, git_token,
                                                   monkeypatch):
    from lambda3.cli import main

    _, url = project
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    monkeypatch.chdir(tmp_path)
    args = ["deploy", "--local-builder", "--endpoint-url", aws.endpoint_url, "-g", url,
            "-f", "shop", "-b", "main", "-a", "live", "-y"]
    assert main([*args, "--only", "worker"]) == 0
    assert "version:  1  alias: live" in capsys.readouterr().out  # one function: as before
    names = {f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]}
    assert names == {"shop-worker"}
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "api: arn:" in out and "[deployed]" in out
    assert "cron: arn:" in out and "version: 1  alias: live" in out
    assert versions_of(aws, "shop-worker") == ["1"]  # unchanged: nothing published again
