"""The builder's deploy engine against the emulator over HTTP, fed by the real git server.

Each test calls the handler's deploy path in this process with an `Aws` whose clients talk
to the emulator; failures are injected as real AWS error responses through botocore's
event hooks, not by patching our code.
"""
from __future__ import annotations

import json
import logging
import time

import pytest
from botocore.awsrequest import AWSResponse

from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuildRequest
from builder.errors import Lambda3Error
from builder.handler import deploy_request, lambda_handler
from builder.timing import Timings

APP_V1 = "import idna\n\ndef handler(event, context):\n    return {'v': 1}\n"
APP_V2 = "import idna\n\ndef handler(event, context):\n    return {'v': 2}\n"


def build_yaml(role: str) -> str:
    return f"""
function:
  runtimes: [python3.11]
  handler: app.handler
  role: {role}
  files: [app.py]
layers:
  dependencies: [requirements.txt]
  data:
    files: [data]
"""


@pytest.fixture
def project(aws, git_server, make_repo, tmp_path, monkeypatch):
    role = aws.lambda_role()
    repo = make_repo({"app.py": APP_V1, "requirements.txt": "idna==3.7\n",
                      "data/words.txt": "alpha\n", "build.yaml": build_yaml(role)})
    repo.commit("first")
    url = git_server.add_repo("acme/app", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    return repo, url


def waiting_aws(aws) -> Aws:
    """An engine whose sleeps really wait (a little): the emulator's provisioned concurrency
    turns READY after 0.2 s of real time, whatever the engine's count of its waits says."""
    return Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url),
               sleep=lambda seconds: time.sleep(min(seconds, 0.05)))


def make_aws(aws, sleeps=None) -> Aws:
    factory = Clients(region=aws.region, endpoint_url=aws.endpoint_url)
    return Aws(factory, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def deploy(url, token, aws_wrapper, **event):
    request = BuildRequest.from_event({"action": "build", "repository": url, "ref": "main",
                             "token": token, "function": "app", "alias": "live", **event})
    try:
        return deploy_request(request, Timings(), aws=aws_wrapper).to_json()
    except Lambda3Error as error:
        return {"ok": False, "error": error.to_dict()}


def layer_versions(aws, name):
    return aws.client("lambda").list_layer_versions(LayerName=name)["LayerVersions"]


def alias_version(aws):
    return aws.client("lambda").get_alias(FunctionName="app", Name="live")["FunctionVersion"]


def test_first_then_code_only_then_noop_then_dependency_change(project, aws, git_token):
    repo, url = project
    wrapper = make_aws(aws)
    first = deploy(url, git_token, wrapper)
    assert first["ok"], first
    assert (first["version"], first["alias"]) == ("1", "live")
    assert {layer["name"]: layer["changed"] for layer in first["layers"]} == {
        "app-dependencies": True, "app-data": True}
    assert alias_version(aws) == "1"
    config = aws.client("lambda").get_function_configuration(FunctionName="app")
    attached = [layer["Arn"] for layer in config["Layers"]]
    assert attached == [layer["arn"] for layer in first["layers"]]
    assert config["CodeSha256"] == first["code_sha256"]

    repo.commit("code only", files={"app.py": APP_V2})
    second = deploy(url, git_token, wrapper)
    assert second["ok"], second
    assert second["version"] == "2" and alias_version(aws) == "2"
    assert not any(layer["changed"] for layer in second["layers"])
    assert [s["action"] for s in second["plan"]] == ["UpdateFunctionCode", "PublishVersion",
                                                     "SetAlias"]
    assert len(layer_versions(aws, "app-dependencies")) == 1

    third = deploy(url, git_token, wrapper)
    assert third["ok"] and third["plan"] == [] and third["version"] == "2"
    assert len(aws.client("lambda").list_versions_by_function(FunctionName="app")["Versions"]) == 3

    repo.commit("deps", files={"requirements.txt": "idna==3.6\n"})
    fourth = deploy(url, git_token, wrapper)
    assert fourth["ok"], fourth
    changed = {layer["name"] for layer in fourth["layers"] if layer["changed"]}
    assert changed == {"app-dependencies"}
    assert len(layer_versions(aws, "app-dependencies")) == 2
    assert len(layer_versions(aws, "app-data")) == 1
    assert fourth["version"] == "3" and alias_version(aws) == "3"


def test_foreign_layers_are_kept_in_place(project, aws, git_token):
    _, url = project
    wrapper = make_aws(aws)
    assert deploy(url, git_token, wrapper)["ok"]
    client = aws.client("lambda")
    foreign = client.publish_layer_version(
        LayerName="otel", Content={"ZipFile": b"PK\x05\x06" + b"\0" * 18})["LayerVersionArn"]
    config = client.get_function_configuration(FunctionName="app")
    ours = [layer["Arn"] for layer in config["Layers"]]
    client.update_function_configuration(FunctionName="app", Layers=[foreign, *ours])
    result = deploy(url, git_token, wrapper, components=["data", "dependencies", "function"])
    assert result["ok"], result
    config = client.get_function_configuration(FunctionName="app")
    layers = [layer["Arn"] for layer in config["Layers"]]
    assert layers == [foreign, *ours]


def test_dry_run_changes_nothing(project, aws, git_token):
    _, url = project
    result = deploy(url, git_token, make_aws(aws), action="plan")
    assert result["ok"], result
    assert [s["action"] for s in result["plan"]] == [
        "PublishLayerVersion", "PublishLayerVersion", "CreateFunction", "PublishVersion",
        "SetAlias"]
    client = aws.client("lambda")
    assert client.list_functions()["Functions"] == []
    assert client.list_layers()["Layers"] == []


def inject_failure(wrapper: Aws, operation: str, code: str = "ServiceException"):
    """Make the next `operation` call answer with a real AWS error response."""
    calls = []

    def fail(**kwargs):
        calls.append(operation)
        response = AWSResponse("https://lambda.test", 500, {}, None)
        return response, {"Error": {"Code": code, "Message": f"injected {operation} failure"},
                          "ResponseMetadata": {"HTTPStatusCode": 500}}

    wrapper.clients("lambda").meta.events.register_first(f"before-call.lambda.{operation}", fail)
    return lambda: wrapper.clients("lambda").meta.events.unregister(
        f"before-call.lambda.{operation}", fail)


@pytest.mark.parametrize("operation,step", [
    ("PublishLayerVersion", "apply:PublishLayerVersion"),
    ("UpdateFunctionConfiguration", "apply:UpdateFunctionConfiguration"),
    ("UpdateFunctionCode", "apply:UpdateFunctionCode"),
    ("PublishVersion", "apply:PublishVersion"),
    ("UpdateAlias", "apply:SetAlias"),
])
def test_failure_at_each_apply_step_leaves_alias_and_rerun_converges(
        project, aws, git_token, operation, step):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    repo.commit("both", files={"app.py": APP_V2, "requirements.txt": "idna==3.6\n"})
    failing = make_aws(aws)
    remove = inject_failure(failing, operation)
    failed = deploy(url, git_token, failing)
    assert failed["ok"] is False
    assert failed["error"]["step"] == step
    assert "alias was not moved" in failed["error"]["message"]
    assert alias_version(aws) == "1"
    remove()
    again = deploy(url, git_token, make_aws(aws))
    assert again["ok"], again
    assert alias_version(aws) == again["version"]
    assert len(layer_versions(aws, "app-dependencies")) == 2  # never published twice
    assert deploy(url, git_token, make_aws(aws))["plan"] == []


def test_update_in_progress_is_retried_with_the_injected_sleep(project, aws, git_token):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    repo.commit("code", files={"app.py": APP_V2})
    sleeps: list[float] = []
    wrapper = make_aws(aws, sleeps)
    remaining = {"n": 2}

    def conflict(**kwargs):
        if remaining["n"] == 0:
            return None
        remaining["n"] -= 1
        response = AWSResponse("https://lambda.test", 409, {}, None)
        return response, {"Error": {"Code": "ResourceConflictException",
                                    "Message": "An update is in progress for resource"},
                          "ResponseMetadata": {"HTTPStatusCode": 409}}

    wrapper.clients("lambda").meta.events.register_first(
        "before-call.lambda.UpdateFunctionCode", conflict)
    result = deploy(url, git_token, wrapper)
    assert result["ok"], result
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]


def test_missing_function_without_role_is_refused_with_nothing_created(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    repo = make_repo({"app.py": APP_V1, "build.yaml": "function:\n  files: [app.py]\n"})
    repo.commit("first")
    url = git_server.add_repo("acme/bare", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    result = deploy(url, git_token, make_aws(aws))
    assert result["ok"] is False
    assert "does not exist" in result["error"]["message"]
    assert "function.role" in result["error"]["message"]
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_bad_spec_gives_file_key_line_and_deploys_nothing(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    repo = make_repo({"app.py": APP_V1,
                      "build.yaml": "function:\n  files: [app.py]\n  memory: lots\n"})
    repo.commit("first")
    url = git_server.add_repo("acme/badspec", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    result = deploy(url, git_token, make_aws(aws))
    error = result["error"]
    assert (error["step"], error["file"], error["line"]) == ("spec", "build.yaml", 3)
    assert "function.memory" in error["message"]
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_canary_token_appears_nowhere(project, aws, git_token, tmp_path, caplog, capsys):
    _, url = project
    caplog.set_level(logging.DEBUG)
    result = lambda_handler({"action": "build", "repository": url, "ref": "main",
                             "token": git_token, "function": "app", "alias": "live"})
    assert result["ok"], result
    bad = lambda_handler({"action": "build", "repository": url, "ref": "nope",
                          "token": git_token, "function": "app"})
    assert bad["ok"] is False and bad["error"]["step"] == "fetch"
    wrong = lambda_handler({"action": "build", "repository": url, "ref": "main",
                            "token": git_token + "x", "function": "app"})
    assert wrong["ok"] is False and "authentication" in wrong["error"]["message"]
    captured = capsys.readouterr()
    everything = [json.dumps(result), json.dumps(bad), json.dumps(wrong), caplog.text,
                  captured.out, captured.err]
    assert not any(git_token in text for text in everything)
    for path in (tmp_path / "work").rglob("*"):
        if path.is_file():
            assert git_token.encode() not in path.read_bytes(), path


# -- settings carried by CreateFunction / UpdateFunctionConfiguration -----------------------
def settings_yaml(role: str, storage: int, tracing: str) -> str:
    return f"""
function:
  runtimes: [python3.12]
  handler: app.handler
  role: {role}
  files: [app.py]
  ephemeral_storage: {storage}
  tracing: {tracing}
  kms_key: arn:aws:kms:us-east-1:123456789012:key/k1
  vpc: {{subnets: [subnet-0b, subnet-0a], security_groups: [sg-01]}}
"""


def test_settings_of_2026_are_created_then_only_the_changed_ones_updated(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    role = aws.lambda_role()
    repo = make_repo({"app.py": APP_V1.replace("import idna\n", ""),
                      "build.yaml": settings_yaml(role, 2048, "Active")})
    repo.commit("first")
    url = git_server.add_repo("acme/settings", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    first = deploy(url, git_token, make_aws(aws))
    assert first["ok"], first
    config = aws.client("lambda").get_function_configuration(FunctionName="app")
    assert config["EphemeralStorage"] == {"Size": 2048}
    assert config["TracingConfig"] == {"Mode": "Active"}
    assert config["KMSKeyArn"] == "arn:aws:kms:us-east-1:123456789012:key/k1"
    assert (config["VpcConfig"]["SubnetIds"], config["VpcConfig"]["SecurityGroupIds"]) == (
        ["subnet-0a", "subnet-0b"], ["sg-01"])

    repo.commit("more /tmp, no tracing",
                files={"build.yaml": settings_yaml(role, 4096, "PassThrough")})
    wrapper = make_aws(aws)
    sent: list[dict] = []
    wrapper.clients("lambda").meta.events.register(
        "provide-client-params.lambda.UpdateFunctionConfiguration",
        lambda params, **kw: sent.append(dict(params)))
    second = deploy(url, git_token, wrapper)
    assert second["ok"], second
    assert ("update configuration of app: EphemeralStorage 2048 -> 4096, TracingConfig Active "
            "-> PassThrough") in second["plan_text"]
    assert len(sent) == 1
    assert (sent[0]["EphemeralStorage"], sent[0]["TracingConfig"]) == (
        {"Size": 4096}, {"Mode": "PassThrough"})
    assert not {"KMSKeyArn", "VpcConfig", "Runtime", "Handler"} & set(sent[0])
    assert second["version"] == "2"


def test_a_reserved_environment_variable_is_refused_before_anything_is_deployed(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    repo = make_repo({"app.py": APP_V1, "build.yaml": (
        "function:\n  files: [app.py]\n  environment:\n    AWS_REGION: eu-west-1\n")})
    repo.commit("first")
    url = git_server.add_repo("acme/reserved", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    error = deploy(url, git_token, make_aws(aws))["error"]
    assert (error["step"], error["file"], error["line"]) == ("spec", "build.yaml", 4)
    assert "AWS_REGION is reserved" in error["message"]
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_tags_and_reserved_concurrency_are_applied_after_the_alias(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    role = aws.lambda_role()
    base = (f"function:\n  runtimes: [python3.12]\n  handler: app.handler\n  role: {role}\n"
            "  files: [app.py]\n")
    repo = make_repo({"app.py": APP_V1.replace("import idna\n", ""), "build.yaml": (
        base + "  tags: {team: shop, stage: beta}\n  reserved_concurrency: 7\n")})
    url = git_server.add_repo("acme/tagged", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    first = deploy(url, git_token, make_aws(aws))
    assert first["ok"], first
    assert first["plan_text"][-2:] == ["tag app: set stage, team",
                                       "set reserved concurrency of app to 7 (was none)"]
    client = aws.client("lambda")
    arn = client.get_function_configuration(FunctionName="app")["FunctionArn"]
    client.tag_resource(Resource=arn, Tags={"owner": "someone else"})
    assert client.list_tags(Resource=arn)["Tags"] == {
        "team": "shop", "stage": "beta", "owner": "someone else"}
    assert client.get_function_concurrency(
        FunctionName="app")["ReservedConcurrentExecutions"] == 7

    repo.commit("no more beta", files={"build.yaml": (
        base + "  tags: {team: shop, stage: null}\n  reserved_concurrency: 7\n")})
    second = deploy(url, git_token, make_aws(aws))
    assert second["ok"], second
    assert second["plan_text"] == ["tag app: remove stage"]
    assert second["version"] == "1"
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "shop", "owner": "someone else"}


def test_a_dry_run_of_a_rollout_shows_how_the_alias_will_move(project, aws, git_token):
    repo, url = project
    first = deploy(url, git_token, make_aws(aws))
    assert first["ok"], first
    repo.commit("code only", files={"app.py": APP_V2})
    result = deploy(url, git_token, make_aws(aws), action="plan", rollout="canary 10 5")
    assert result["ok"], result
    assert [s["action"] for s in result["plan"]] == ["UpdateFunctionCode", "PublishVersion"]
    assert result["plan_text"][-1] == (
        "start rollout (canary 10 5) of alias live: version 1 -> the new version, 10% of "
        "traffic first; the client drives the rest")
    assert alias_version(aws) == "1"
    nothing = deploy(url, git_token, make_aws(aws), action="plan", rollout="canary 10 5",
                     ref=first["commit"])
    assert nothing["ok"] and nothing["plan_text"] == ["app: nothing to do, everything is up "
                                                      "to date"], nothing

    with_post = (repo.work / "build.yaml").read_text() + "post_checks: [events/after.json]\n"
    repo.commit("post-traffic checks", files={"events/after.json": "{}", "build.yaml": with_post})
    checked = deploy(url, git_token, make_aws(aws), action="plan")
    assert checked["ok"], checked
    assert checked["plan_text"][-1] == (
        "start rollout (all-at-once) of alias live: version 1 -> the new version, 100% of "
        "traffic first, the post-traffic checks once it takes all traffic; the client drives "
        "the rest")
    assert alias_version(aws) == "1"


def test_function_url_recursion_provisioned_concurrency_and_outside_layers(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    role = aws.lambda_role()
    client = aws.client("lambda")
    otel = client.publish_layer_version(
        LayerName="otel", Content={"ZipFile": b"PK\x05\x06" + b"\0" * 18})["LayerVersionArn"]
    base = (f"function:\n  runtimes: [python3.12]\n  handler: app.handler\n  role: {role}\n"
            "  files: [app.py]\n  recursion: allow\n  provisioned_concurrency: 2\n"
            f"  layers: [{otel}]\n")
    public = base + "  function_url: {auth: NONE, cors: {allow_origins: ['*']}}\n"
    repo = make_repo({"app.py": APP_V1.replace("import idna\n", ""), "build.yaml": public})
    url = git_server.add_repo("acme/url", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    first = deploy(url, git_token, waiting_aws(aws))
    assert first["ok"], first
    assert first["function_url"].startswith("https://")
    assert [s["action"] for s in first["plan"]][-3:] == [
        "SetRecursion", "SetProvisionedConcurrency", "SetFunctionUrl"]
    assert client.get_function_recursion_config(FunctionName="app")["RecursiveLoop"] == "Allow"
    ready = client.get_provisioned_concurrency_config(FunctionName="app", Qualifier="live")
    assert (ready["Status"], ready["RequestedProvisionedConcurrentExecutions"]) == ("READY", 2)
    config = client.get_function_url_config(FunctionName="app", Qualifier="live")
    assert (config["AuthType"], config["Cors"]["AllowOrigins"]) == ("NONE", ["*"])
    assert statements(client) == {"lambda3-url-public", "lambda3-url-public-invoke"}
    layers = client.get_function_configuration(FunctionName="app")["Layers"]
    assert [layer["Arn"] for layer in layers] == [otel]

    again = deploy(url, git_token, waiting_aws(aws))
    assert again["ok"] and again["plan"] == [], again
    assert again["function_url"] == first["function_url"]

    repo.commit("private, no outside layers", files={"build.yaml": base.replace(
        f"  layers: [{otel}]\n", "  layers: []\n") + "  function_url: {auth: AWS_IAM}\n"})
    private = deploy(url, git_token, waiting_aws(aws))
    assert private["ok"], private
    assert "update the function URL of app:live: AuthType NONE -> AWS_IAM; no longer public" in (
        private["plan_text"])
    assert client.get_function_configuration(FunctionName="app").get("Layers", []) == []
    assert statements(client) == set()


def statements(client) -> set[str]:
    """The statement ids of the resource policy of app:live."""
    try:
        found = client.get_policy(FunctionName="app", Qualifier="live")
    except client.exceptions.ResourceNotFoundException:
        return set()
    return {s["Sid"] for s in json.loads(found["Policy"])["Statement"]}
