"""Deploys that stay correct against real Lambda, on the emulator over HTTP.

moto has no RevisionId, no preconditions and no states, so `RealLambda` gives them to one
`Aws` wrapper's client with botocore event hooks: RevisionIds on functions and aliases
(and a new one once an update finishes, as Lambda does), 412 PreconditionFailedException for
a stale one, PublishVersion's CodeSha256 check. Other real answers (version Pending then
Active or Failed, a large foreign layer, pages of 50 versions) are injected the same way.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from builder.aws import Aws, config_fingerprint, layer_name_of
from builder.clients import Clients
from builder.contract import BuildRequest
from builder.errors import Lambda3Error
from builder.handler import deploy_request
from builder.plan import parse_stamp
from builder.settings import BuilderSettings
from builder.timing import Timings
from lambda3.commands.rollback import rollback

MUTATING = ("PublishLayerVersion", "UpdateFunctionConfiguration", "UpdateFunctionCode")


def build_yaml(role: str, memory: int) -> str:
    return f"""
function:
  runtimes: [python3.11]
  handler: app.handler
  role: {role}
  memory: {memory}
  files: [app.py]
layers:
  data:
    files: [data]
"""


def app(version: int) -> str:
    return f"def handler(event, context):\n    return {{'v': {version}}}\n"


def error_response(code: str, status: int, message: str, **body):
    return (AWSResponse("https://lambda.test", status, {}, None),
            {"Error": {"Code": code, "Message": message},
             "ResponseMetadata": {"HTTPStatusCode": status}, **body})


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RealLambda:
    """What Lambda does and moto does not, added to one wrapper's client by event hooks."""

    def __init__(self, aws) -> None:
        self.raw = aws.client("lambda")
        self.sent: list[tuple[str, dict]] = []  # (operation, its parameters)

    def function_revision(self, name: str) -> str:
        return _digest(config_fingerprint(self.raw.get_function_configuration(FunctionName=name)))

    def alias_revision(self, name: str, alias: str) -> str:
        found = self.raw.get_alias(FunctionName=name, Name=alias)
        weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return _digest([found["FunctionVersion"], weights])

    def install(self, wrapper: Aws) -> Aws:
        events = wrapper.clients("lambda").meta.events
        events.register("before-parameter-build.lambda", self._keep_params)
        for operation in ("UpdateFunctionConfiguration", "UpdateFunctionCode", "PublishVersion"):
            events.register_first(f"before-call.lambda.{operation}", self._check_function)
        events.register_first("before-call.lambda.UpdateAlias", self._check_alias)
        for operation in ("GetFunctionConfiguration", "CreateFunction",
                          "UpdateFunctionConfiguration", "UpdateFunctionCode"):
            events.register(f"after-call.lambda.{operation}", self._function_revision)
        for operation in ("GetAlias", "CreateAlias", "UpdateAlias"):
            events.register(f"after-call.lambda.{operation}", self._alias_revision)
        return wrapper

    def _keep_params(self, params, model, context, **kwargs):
        context["sent"] = dict(params)
        self.sent.append((model.name, {k: v for k, v in params.items() if k != "ZipFile"}))

    def _check_function(self, model, context, **kwargs):
        sent = context["sent"]
        name = sent["FunctionName"]
        if sent.get("RevisionId") and sent["RevisionId"] != self.function_revision(name):
            return error_response("PreconditionFailedException", 412,
                                  "The Revision Id provided does not match the latest Revision "
                                  "Id. Call the GetFunction/GetAlias API to retrieve the latest "
                                  "Revision Id")
        latest = self.raw.get_function_configuration(FunctionName=name)["CodeSha256"]
        if model.name == "PublishVersion" and sent.get("CodeSha256") not in (None, latest):
            return error_response("InvalidParameterValueException", 400,
                                  f"CodeSHA256 ({sent['CodeSha256']}) is different from current "
                                  f"CodeSHA256 in $LATEST ({latest}). Please try again with the "
                                  f"CodeSHA256 in $LATEST.")
        return None

    def _check_alias(self, context, **kwargs):
        sent = context["sent"]
        given = sent.get("RevisionId")
        if given and given != self.alias_revision(sent["FunctionName"], sent["Name"]):
            return error_response("PreconditionFailedException", 412,
                                  "The Revision Id provided does not match the latest Revision "
                                  "Id.")
        return None

    def _function_revision(self, parsed, model, context, **kwargs):
        if "FunctionName" in parsed and not context["sent"].get("Qualifier"):
            revision = _digest(config_fingerprint(parsed))
            # an update's own answer has the revision of the update in progress; Lambda
            # gives the function another one when the update finishes
            in_progress = model.name != "GetFunctionConfiguration"
            parsed["RevisionId"] = revision + ("-updating" if in_progress else "")

    def _alias_revision(self, parsed, context, **kwargs):
        if "FunctionVersion" in parsed:
            weights = (parsed.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            parsed["RevisionId"] = _digest([parsed["FunctionVersion"], weights])


@pytest.fixture
def project(aws, git_server, make_repo, tmp_path, monkeypatch):
    role = aws.lambda_role()
    repo = make_repo({"app.py": app(1), "data/words.txt": "alpha\n",
                      "build.yaml": build_yaml(role, 128)})
    repo.role = role
    url = git_server.add_repo("acme/app", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    return repo, url


def make_aws(aws, sleeps=None) -> Aws:
    no_retries = Config(retries={"total_max_attempts": 1})  # the retries are Aws's own
    clients = Clients(region=aws.region, endpoint_url=aws.endpoint_url,
                      configs={"lambda": no_retries})
    return Aws(clients, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def deploy(url, token, wrapper, *, workdir=None, **event):
    request = BuildRequest.from_event({"action": "build", "repository": url, "ref": "main",
                                       "token": token, "function": "app", "alias": "live",
                                       **event})
    settings = BuilderSettings.from_environ()
    if workdir is not None:
        settings = replace(settings, workdir=workdir)
    try:
        return deploy_request(request, Timings(), settings=settings, aws=wrapper).to_json()
    except Lambda3Error as error:
        return {"ok": False, "error": error.to_dict()}


def alias(aws) -> dict:
    return aws.client("lambda").get_alias(FunctionName="app", Name="live")


def published(aws) -> list[dict]:
    versions = aws.client("lambda").list_versions_by_function(FunctionName="app")["Versions"]
    return [v for v in versions if v["Version"] != "$LATEST"]


def version(aws, number: str) -> dict:
    return aws.client("lambda").get_function_configuration(FunctionName="app", Qualifier=number)


# -- 1: a configuration change is published even after a failed or skipped publish ---------
@pytest.mark.parametrize("first_try", ["publish fails", "publish off"])
def test_configuration_change_is_published_after_a_failed_or_skipped_publish(
        project, aws, git_token, first_try):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    repo.commit("more memory", files={"build.yaml": build_yaml(repo.role, 256)})
    wrapper = make_aws(aws)
    if first_try == "publish fails":
        wrapper.clients("lambda").meta.events.register_first(
            "before-call.lambda.PublishVersion",
            lambda **kw: error_response("ServiceException", 500, "injected failure"))
        assert deploy(url, git_token, wrapper)["ok"] is False
    else:
        assert deploy(url, git_token, wrapper, publish=False, alias=None)["ok"]
    assert version(aws, alias(aws)["FunctionVersion"])["MemorySize"] == 128

    again = deploy(url, git_token, make_aws(aws))
    assert again["ok"], again
    assert again["version"] == "2" and alias(aws)["FunctionVersion"] == "2"
    assert version(aws, "2")["MemorySize"] == 256


# -- 2: every precondition is sent, and a stale one means read again and plan again --------
def test_every_call_carries_the_revision_it_expects(project, aws, git_token):
    repo, url = project
    lam = RealLambda(aws)
    assert deploy(url, git_token, lam.install(make_aws(aws)))["ok"]
    repo.commit("all of it", files={"app.py": app(2), "data/words.txt": "beta\n",
                                    "build.yaml": build_yaml(repo.role, 256)})
    lam.sent.clear()
    result = deploy(url, git_token, lam.install(make_aws(aws)))
    assert result["ok"], result
    writes = {op: params for op, params in lam.sent if op in (
        "UpdateFunctionConfiguration", "UpdateFunctionCode", "PublishVersion", "UpdateAlias")}
    assert set(writes) == {"UpdateFunctionConfiguration", "UpdateFunctionCode",
                           "PublishVersion", "UpdateAlias"}
    assert all(params.get("RevisionId") for params in writes.values()), writes
    assert writes["PublishVersion"]["CodeSha256"] == result["code_sha256"]
    assert alias(aws)["FunctionVersion"] == result["version"] == "2"


def test_a_stale_revision_once_is_planned_again_and_twice_fails_clearly(
        project, aws, git_token):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    stale = error_response("PreconditionFailedException", 412,
                           "The Revision Id provided does not match the latest Revision Id.")
    for times, ok in ((1, True), (2, False)):
        repo.commit("code", files={"app.py": app(1 + times)})
        wrapper = make_aws(aws)
        left = {"n": times}

        def refuse(**kwargs):
            if left["n"]:
                left["n"] -= 1
                return stale
            return None

        wrapper.clients("lambda").meta.events.register_first(
            "before-call.lambda.UpdateFunctionCode", refuse)
        result = deploy(url, git_token, wrapper)
        assert result["ok"] is ok, result
        if not ok:
            message = result["error"]["message"]
            assert "another change to function app happened meanwhile" in message
            assert "re-run" in message
    assert alias(aws)["FunctionVersion"] == "2"


# -- 2 and 3: two deploys at once -----------------------------------------------------------
@pytest.mark.parametrize("gate", ["PublishLayerVersion", "UpdateFunctionCode"])
@pytest.mark.parametrize("newer", ["A", "B"])
def test_two_concurrent_deploys_publish_whole_builds_and_the_alias_ends_on_the_newer(
        project, aws, git_token, tmp_path, gate, newer):
    """A reads the function and plans; B deploys start to end; then A applies. `gate` is
    A's call B runs before: all of A's changes, or after A's configuration update."""
    repo, url = project
    base = deploy(url, git_token, RealLambda(aws).install(make_aws(aws)))
    assert base["ok"], base
    builds = {}
    for name, number, memory in (("first", 2, 192), ("second", 3, 256)):
        builds[name] = repo.commit(name, files={
            "app.py": app(number), "data/words.txt": f"{name}\n",
            "build.yaml": build_yaml(repo.role, memory)})
    refs = {"A": builds["second"], "B": builds["first"]} if newer == "A" else {
        "A": builds["first"], "B": builds["second"]}
    memory = {builds["first"]: 192, builds["second"]: 256, base["commit"]: 128}

    a_is_waiting, b_is_done = threading.Event(), threading.Event()
    wrapper_a = make_aws(aws)

    def gate_a(**kwargs):
        if not a_is_waiting.is_set():
            a_is_waiting.set()
            assert b_is_done.wait(120)

    # first the gate, then RealLambda's checks: Lambda checks when the call arrives
    wrapper_a.clients("lambda").meta.events.register_first(f"before-call.lambda.{gate}", gate_a)
    RealLambda(aws).install(wrapper_a)
    results = {}

    def run(name, wrapper, before=None):
        if before is not None:
            assert before.wait(120)
        results[name] = deploy(url, git_token, wrapper, ref=refs[name],
                               workdir=tmp_path / f"work-{name}")
        if name == "B":
            b_is_done.set()

    threads = [threading.Thread(target=run, args=("A", wrapper_a)),
               threading.Thread(target=run, args=("B", RealLambda(aws).install(make_aws(aws)),
                                                   a_is_waiting))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert results["B"]["ok"], results["B"]
    assert results["A"]["ok"] is (newer == "A"), results["A"]
    if newer == "B":
        assert "--allow-older" in results["A"]["error"]["message"]

    whole = {base["commit"][:12]: base, results["B"]["commit"][:12]: results["B"]}
    if results["A"]["ok"]:
        whole[results["A"]["commit"][:12]] = results["A"]
    client = aws.client("lambda")
    for found in published(aws):
        stamp = parse_stamp(found["Description"])
        assert stamp is not None and stamp.commit in whole, found["Description"]
        build = whole[stamp.commit]
        data = next(layer for layer in build["layers"] if layer["component"] == "data")
        attached = [layer["Arn"] for layer in found["Layers"]]
        shas = {layer_name_of(arn): client.get_layer_version(
            LayerName=layer_name_of(arn), VersionNumber=int(arn.rsplit(":", 1)[1])
        )["Content"]["CodeSha256"] for arn in attached}
        assert found["CodeSha256"] == build["code_sha256"], found["Version"]
        assert shas == {"app-data": data["code_sha256"]}, found["Version"]
        assert found["MemorySize"] == memory[build["commit"]], found["Version"]
    newest = version(aws, alias(aws)["FunctionVersion"])
    assert parse_stamp(newest["Description"]).commit == builds["second"][:12]


# -- 3: the alias never moves backwards ---------------------------------------------------
def test_an_older_build_does_not_move_the_alias_unless_allowed(project, aws, git_token):
    repo, url = project
    first = deploy(url, git_token, make_aws(aws))
    assert first["ok"]
    repo.commit("newer", files={"app.py": app(2)})
    assert deploy(url, git_token, make_aws(aws))["ok"]
    assert alias(aws)["FunctionVersion"] == "2"
    stamp = parse_stamp(version(aws, "2")["Description"])
    assert stamp is not None and stamp.committed_at is not None

    older = deploy(url, git_token, make_aws(aws), ref=first["commit"])
    assert older["ok"] is False
    message = older["error"]["message"]
    assert first["commit"][:12] in message and stamp.commit in message
    assert "--allow-older" in message
    assert alias(aws)["FunctionVersion"] == "2"
    lambda_client = aws.client("lambda")
    latest = lambda_client.get_function_configuration(FunctionName="app")
    assert latest["CodeSha256"] == version(aws, "2")["CodeSha256"]  # $LATEST untouched

    allowed = deploy(url, git_token, make_aws(aws), ref=first["commit"], allow_older=True)
    assert allowed["ok"], allowed
    assert alias(aws)["FunctionVersion"] == allowed["version"]
    assert version(aws, allowed["version"])["CodeSha256"] == first["code_sha256"]


# -- 4: moving an alias clears its routing -------------------------------------------------
def test_moving_the_alias_clears_its_routing(project, aws, git_token):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    repo.commit("two", files={"app.py": app(2)})
    assert deploy(url, git_token, make_aws(aws))["ok"]
    aws.client("lambda").update_alias(FunctionName="app", Name="live", FunctionVersion="2",
                                      RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    repo.commit("three", files={"app.py": app(3)})
    assert deploy(url, git_token, make_aws(aws))["ok"]
    moved = alias(aws)
    assert moved["FunctionVersion"] == "3"
    assert not (moved.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


# -- 5: an update in progress is waited for -----------------------------------------------
def test_function_reported_updating_is_waited_for(project, aws, git_token):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    repo.commit("code", files={"app.py": app(2)})
    sleeps: list[float] = []
    wrapper = make_aws(aws, sleeps)
    busy = {"n": 0}

    def code_sent(**kwargs):
        busy["n"] = 3  # the next three reads see the update still going on

    def updating(parsed, **kwargs):
        if busy["n"] and "FunctionName" in parsed:
            busy["n"] -= 1
            parsed.update(State="Pending", LastUpdateStatus="InProgress")

    events = wrapper.clients("lambda").meta.events
    events.register("after-call.lambda.UpdateFunctionCode", code_sent)
    events.register("after-call.lambda.GetFunctionConfiguration", updating)
    result = deploy(url, git_token, wrapper)
    assert result["ok"], result
    assert busy["n"] == 0 and len(sleeps) == 3
    assert alias(aws)["FunctionVersion"] == "2"


# -- 6: SnapStart versions are waited for until Active; Failed leaves the alias -------------
@pytest.mark.parametrize("outcome", ["Active", "Failed"])
def test_snap_start_version_is_active_before_the_alias_moves(project, aws, git_token, outcome):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    repo.commit("code", files={"app.py": app(2)})
    sleeps: list[float] = []
    wrapper = make_aws(aws, sleeps)
    reads = {"n": 0}

    def snap_start(parsed, context, **kwargs):
        if "FunctionName" not in parsed:
            return
        parsed["SnapStart"] = {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
        if context["sent"].get("Qualifier") == "2":
            reads["n"] += 1
            if reads["n"] <= 2:
                parsed.update(State="Pending", StateReasonCode="Creating")
            elif outcome == "Failed":
                parsed.update(State="Failed", StateReason="snapshot failed: init error",
                              StateReasonCode="FunctionError")

    events = wrapper.clients("lambda").meta.events
    events.register("before-parameter-build.lambda",
                    lambda params, context, **kw: context.update(sent=dict(params)))
    events.register("after-call.lambda.GetFunctionConfiguration", snap_start)
    result = deploy(url, git_token, wrapper)
    assert reads["n"] == 3 and len(sleeps) == 2
    if outcome == "Active":
        assert result["ok"], result
        assert alias(aws)["FunctionVersion"] == "2"
    else:
        assert result["ok"] is False
        assert "snapshot failed: init error" in result["error"]["message"]
        assert alias(aws)["FunctionVersion"] == "1"


# -- 9: layers the function keeps count toward 250 MB ----------------------------------------
def test_foreign_layers_kept_count_toward_the_unzipped_limit(project, aws, git_token):
    repo, url = project
    assert deploy(url, git_token, make_aws(aws))["ok"]
    client = aws.client("lambda")
    foreign = client.publish_layer_version(
        LayerName="vendor", Content={"ZipFile": b"PK\x05\x06" + b"\0" * 18})["LayerVersionArn"]
    ours = [layer["Arn"] for layer in
            client.get_function_configuration(FunctionName="app")["Layers"]]
    client.update_function_configuration(FunctionName="app", Layers=[foreign, *ours])
    repo.commit("code", files={"app.py": app(2)})
    wrapper = make_aws(aws)

    def large(parsed, **kwargs):
        if parsed.get("LayerVersionArn") == foreign:
            parsed["Content"]["CodeSize"] = 260 * 1024 * 1024

    wrapper.clients("lambda").meta.events.register("after-call.lambda.GetLayerVersion", large)
    result = deploy(url, git_token, wrapper)
    assert result["ok"] is False
    assert result["error"]["step"] == "limits"
    assert "vendor:1" in result["error"]["message"]
    assert alias(aws)["FunctionVersion"] == "1"


# -- 12: rollback reads every page of versions ------------------------------------------------
def test_rollback_finds_the_previous_version_past_the_first_page(aws):
    client = aws.client("lambda")
    aws.create_function("many", {"app.py": app(0)})
    for number in range(1, 61):
        client.update_function_configuration(FunctionName="many", Description=f"v{number}")
        client.publish_version(FunctionName="many")
    client.create_alias(FunctionName="many", Name="live", FunctionVersion="60")
    wrapper = make_aws(aws)

    def pages_of_50(context, **kwargs):
        everything = client.list_versions_by_function(FunctionName="many")["Versions"]
        start = int(context["sent"].get("Marker") or 0)
        page = {"Versions": everything[start:start + 50],
                "ResponseMetadata": {"HTTPStatusCode": 200}}
        if start + 50 < len(everything):
            page["NextMarker"] = str(start + 50)
        return AWSResponse("https://lambda.test", 200, {}, None), page

    events = wrapper.clients("lambda").meta.events
    events.register("before-parameter-build.lambda",
                    lambda params, context, **kw: context.update(sent=dict(params)))
    events.register_first("before-call.lambda.ListVersionsByFunction", pages_of_50)
    assert rollback(wrapper, "many", "live", None) == ("60", "59")
    assert client.get_alias(FunctionName="many", Name="live")["FunctionVersion"] == "59"
