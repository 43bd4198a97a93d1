"""The builder's API: every request and result field survives the round trip, versions are
checked in both directions, and no client builds an event or reads a result by string."""
from __future__ import annotations

import ast
import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from builder.contract import (
    BASE_CONTRACT,
    CONTRACT,
    MIN_CONTRACT,
    SINCE,
    BuilderInfo,
    BuildRequest,
    BuildResult,
    ComponentResult,
    ContractError,
    Failure,
    FunctionResult,
    LayerResult,
    RolloutResult,
    ToolchainResult,
)
from builder.errors import RequestError, SpecError
from builder.handler import handle

ROOT = Path(__file__).resolve().parents[2]

FULL_REQUEST = BuildRequest(
    action="plan", repository="https://github.com/o/r.git", ref="refs/tags/v1",
    function="shop-api", build_file="deploy/build.yaml", components=("function", "deps"),
    functions=("api", "worker"), alias="live", publish=True, refresh=True, allow_older=True,
    bucket="art-bucket",
    log_marker="ab" * 16, token="ghs_secret", contract=CONTRACT, rollout="canary 10 5",
    index_credentials=(("pkgs.example.com", "deploy:idx_secret"),), preview=42)

FULL_RESULT = BuildResult(
    ok=True, action="build", contract=CONTRACT,
    builder=BuilderInfo(contract=CONTRACT, version="0.2.0", python="3.12.1", machine="x86_64",
                        runtime="AWS_Lambda_python3.12", executable="/var/lang/bin/python",
                        installers={"uv": "0.13.9", "pip": None},
                        toolchain={"dulwich": "1.2.21", "PyYAML": None}),
    commit="c" * 40, function="shop-api",
    function_arn="arn:aws:lambda:us-east-1:123456789012:function:shop-api", version="7",
    alias="live", code_sha256="abc=", target="python3.12 x86_64",
    layers=(LayerResult(component="dependencies", name="shop-api-dependencies",
                        arn="arn:aws:lambda:us-east-1:123456789012:layer:x:3", version=3,
                        changed=True, size=2048, code_sha256="def="),),
    components=(ComponentResult(name="function", kind="function", code_sha256="abc=", size=1,
                                unzipped_size=2, files=3, changed=False, arn=None,
                                reused=True),),
    plan=({"action": "UpdateFunctionCode", "function": "shop-api"},),
    plan_text=("update the code of shop-api",), warnings=("a warning",),
    timings={"fetch": 0.5, "total": 1.0},
    toolchain=ToolchainResult(layer_arn="arn:t:1", code_sha256="t=", size=10, published=True,
                              attached=False, packages=("uv==0.13.9",), target="python3.12"),
    error=None,
    rollout=RolloutResult(strategy="canary 10 5", phase="shifting", old_version="6",
                          new_version="7", weight=0.1, alarms=("shop-5xx",), max_error_rate=0.02,
                          checks=({"file": "events/smoke.json", "event": "{}",
                                   "expect": {"ok": True}},),
                          post_checks=({"file": "events/after.json", "event": "{}",
                                        "expect": None},)),
    prune_keep=3,
    function_url="https://abc.lambda-url.us-east-1.on.aws/",
    functions=(FunctionResult(
        key="api", name="shop-api", arn="arn:aws:lambda:us-east-1:123456789012:function:shop-api",
        version="7", alias="live", code_sha256="abc=", target="python3.12 x86_64",
        deployed=True,
        layers=(LayerResult(component="shared", name="shop-shared", changed=True),),
        components=(ComponentResult(name="function", kind="function", code_sha256="abc="),),
        plan=({"action": "PublishVersion", "function": "shop-api"},),
        plan_text=("publish a version of shop-api",),
        rollout=RolloutResult(strategy="all-at-once"),
        error=Failure(step="apply", message="function api (shop-api): throttled"),
        function_url="https://def.lambda-url.us-east-1.on.aws/"),))


def test_every_request_field_survives_the_round_trip():
    event = json.loads(json.dumps(FULL_REQUEST.to_event()))
    assert set(event) == {f.name for f in fields(BuildRequest)}
    assert BuildRequest.from_event(event) == FULL_REQUEST
    for f in fields(BuildRequest):  # every field was set to a non-default value above
        assert getattr(FULL_REQUEST, f.name) != f.default or f.name in ("publish", "contract")


def test_the_token_is_not_in_repr():
    assert "ghs_secret" not in repr(FULL_REQUEST)
    assert "idx_secret" not in repr(FULL_REQUEST)


def test_every_result_field_survives_the_round_trip():
    data = json.loads(json.dumps(FULL_RESULT.to_json()))
    assert BuildResult.from_json(data) == FULL_RESULT
    assert data["changed_layers"] == ["shop-api-dependencies"]
    for f in fields(BuildResult):
        assert f.name in data


def test_every_function_result_field_survives_the_round_trip():
    data = json.loads(json.dumps(FULL_RESULT.to_json()))
    assert {f.name for f in fields(FunctionResult)} <= set(data["functions"][0])
    several = BuildResult(ok=True, functions=FULL_RESULT.functions * 2)
    assert several.to_json()["changed_layers"] == ["shop-shared"]  # once, however many use it


@pytest.mark.parametrize("value, match", [
    ("api", "must be a list"), (["a b"], "function keys are"), (["x"] * 65, "at most 64")])
def test_function_keys_in_a_request_are_checked(value, match):
    with pytest.raises(RequestError, match=match):
        BuildRequest.from_event({"contract": CONTRACT, "repository": "https://h/r.git",
                                 "function": "f", "functions": value})


def test_a_failure_round_trips_with_its_location():
    failed = BuildResult.failed(SpecError("unknown key 'runtim'", file="build.yaml", line=4,
                                          key="runtim", hint="did you mean 'runtime'?"))
    back = BuildResult.from_json(json.loads(json.dumps(failed.to_json())))
    assert back.ok is False and back == failed
    assert back.error == Failure(step="spec", type="SpecError",
                                 message="build.yaml:4: unknown key 'runtim' (did you mean "
                                         "'runtime'?)", file="build.yaml", line=4,
                                 key="runtim", hint="did you mean 'runtime'?")


def test_a_version_1_answer_without_newer_fields_is_read():
    old = {"ok": True, "commit": "a" * 40, "version": "2", "layers": [{"name": "d"}],
           "unknown_later_field": {"x": 1}}
    result = BuildResult.from_json(old)
    assert (result.contract, result.version, result.layers[0].name) == (1, "2", "d")
    assert BuildResult.from_json({"ok": False}).error == Failure()


@pytest.mark.parametrize("answer", [[1, 2], {"no": "ok"}, {"ok": "yes"},
                                    {"ok": True, "layers": 5}])
def test_an_answer_that_is_no_result_is_refused(answer):
    with pytest.raises(RequestError, match="not a lambda3 result"):
        BuildResult.from_json(answer)


def test_a_version_1_event_is_still_read_leniently():
    request = BuildRequest.from_event({"repository": "https://h/r.git", "function": "f",
                                       "components": "a, b", "publish": "false"})
    assert (request.contract, request.components, request.publish) == (1, ("a", "b"), False)
    with pytest.raises(RequestError, match="components"):
        BuildRequest.from_event({"contract": CONTRACT, "repository": "https://h/r.git",
                                 "function": "f", "components": "a, b"})


@pytest.mark.parametrize("event, match", [
    ({"contract": "2"}, "'contract' must be a positive whole number"),
    ({"contract": True}, "'contract' must be a positive whole number"),
    ({"function": "f\n", "repository": "r"}, "control character"),
    ({"function": "f", "repository": "r" * 5000}, "at most 2048"),
    ({"function": "f", "repository": "r", "ref": "x" * 1_000_000}, "at most 1024"),
    ({"function": "f", "repository": "r", "components": ["a b"]}, "component names"),
    ({"function": "f", "repository": "r", "alias": "123"}, "not a valid alias"),
    ({"function": "f", "repository": "r", "publish": 1}, "true or false"),
])
def test_bad_events_are_refused_with_one_line(event, match):
    with pytest.raises(RequestError, match=match) as caught:
        BuildRequest.from_event({"contract": CONTRACT, **event})
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


# -- version skew, on the builder's side: refused before anything is fetched ---------------
def _skewed(speaks: tuple[int, int], **fields) -> BuildResult:
    event = BuildRequest(repository="https://127.0.0.1:1/never/contacted.git", ref="main",
                         function="f", token="t0ken-canary", **fields).to_event()
    answer = handle(event, speaks=speaks)
    return BuildResult.from_json(answer, speaks=(min(speaks[0], CONTRACT),
                                                 max(speaks[1], CONTRACT)))


def test_a_request_carries_the_lowest_version_that_holds_it():
    plain = BuildRequest(repository="https://h/r.git", function="f")
    assert plain.to_event()["contract"] == BASE_CONTRACT < CONTRACT
    assert replace(plain, preview=7).to_event()["contract"] == SINCE["preview"] == CONTRACT
    assert replace(plain, contract=1).to_event()["contract"] == 1  # as read, sent as it was
    with pytest.raises(RequestError, match="'preview' needs contract version 3; the request "
                                           "says 2"):
        BuildRequest.from_event({**plain.to_event(), "preview": 7})


def test_a_builder_one_version_behind_refuses_a_request_it_would_misread():
    result = _skewed((MIN_CONTRACT, CONTRACT - 1), preview=7)
    assert result.ok is False and result.error.step == "contract"
    message = result.error.message
    assert f"builder speaks contract version {CONTRACT - 1}" in message
    assert f"the client speaks {CONTRACT}" in message and "lambda3 bootstrap" in message
    assert set(result.timings) == {"request", "total"}  # nothing fetched or built
    assert result.contract == CONTRACT - 1 and result.builder.contract == CONTRACT - 1
    plain = _skewed((MIN_CONTRACT, CONTRACT - 1))  # no newer field: it goes on (to the fetch)
    assert plain.error.step == "fetch"


def test_a_builder_one_version_ahead_refuses_a_client_it_no_longer_speaks():
    result = _skewed((CONTRACT + 1, CONTRACT + 1))
    assert result.ok is False and result.error.step == "contract"
    message = result.error.message
    assert f"builder speaks contract versions {CONTRACT + 1}-{CONTRACT + 1}" in message
    assert f"client speaks {BASE_CONTRACT}" in message and "pin the action" in message
    assert set(result.timings) == {"request", "total"}


def test_a_client_refuses_an_answer_in_a_version_it_does_not_speak():
    newer = {**FULL_RESULT.to_json(), "contract": CONTRACT + 1}
    with pytest.raises(ContractError, match=f"contract version {CONTRACT + 1}") as caught:
        BuildResult.from_json(newer)
    assert "lambda3 bootstrap" in str(caught.value)


def test_the_builder_answers_with_its_versions():
    answer = handle({"contract": CONTRACT, "action": "ping"})
    result = BuildResult.from_json(answer)
    assert result.ok and result.contract == CONTRACT and result.builder.contract == CONTRACT
    assert result.builder.version and "dulwich" in result.builder.toolchain
    assert "uv" in result.builder.installers


# -- no client builds an event dict or reads a result key by string -------------------------
CLIENT_DIRS = ("lambda3", "bootstrap", "benchmarks")
REQUEST_KEYS = {f.name for f in fields(BuildRequest)}
# keys only a builder result has (benchmarks' own reports use "ok" and "error" too)
RESULT_KEYS = {"function_arn", "plan_text", "toolchain_layer", "changed_layers", "code_sha256",
               "layers", "components", "commit", "installers", "toolchain", "timings"}
USES_THE_BUILDER = ("invoke_builder", "lambda_handler", "deploy_request", "BuildResult")


def _client_modules():
    """The client modules that talk to the builder (invoke it, or run its handler)."""
    for folder in CLIENT_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            if any(name in text for name in USES_THE_BUILDER):
                yield path, ast.parse(text, filename=str(path))


def test_the_scan_sees_the_clients():
    scanned = {str(path.relative_to(ROOT)) for path, _ in _client_modules()}
    assert {"lambda3/action/run.py", "lambda3/commands/deploy.py", "lambda3/remote.py",
            "bootstrap/toolchain.py", "benchmarks/deploy.py", "lambda3/embedded/demo.py",
            "lambda3/commands/bootstrap.py"} <= scanned


def test_no_client_builds_an_event_dict():
    offenders = []
    for path, tree in _client_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                inputs = any("-" in str(k) for k in keys)  # an action's inputs, not an event
                if "action" in keys or (len(keys & REQUEST_KEYS) >= 3 and not inputs):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def _string_key(node: ast.AST) -> str | None:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant)):
        return node.args[0].value
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return node.slice.value
    return None


def test_no_client_reads_a_result_key_by_string():
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno} [{_string_key(node)!r}]"
                 for path, tree in _client_modules() for node in ast.walk(tree)
                 if _string_key(node) in RESULT_KEYS]
    assert offenders == []


def test_the_answer_stays_under_lambdas_response_limit():
    from builder.handler import within_answer_limit

    many = BuildResult(ok=True, warnings=tuple(f"warning {i} " + "x" * 100 for i in range(5000)),
                       plan=tuple({"action": "X", "n": i} for i in range(5000)))
    text = within_answer_limit(many, limit=100_000)
    kept = BuildResult.from_json(json.loads(text))
    assert kept.ok and kept.plan == () and len(kept.warnings) == 101
    assert "4900 more warnings" in kept.warnings[-1]
    huge = BuildResult(ok=True, plan_text=("y" * 200_000,))
    refused = BuildResult.from_json(json.loads(within_answer_limit(huge, limit=100_000)))
    assert refused.ok is False and refused.error.step == "result"
    assert "6 MB" in refused.error.message and len(within_answer_limit(huge, 100_000)) < 2000
    small = within_answer_limit(FULL_RESULT)
    assert BuildResult.from_json(json.loads(small)) == FULL_RESULT


def test_a_client_pinned_to_an_older_version_reads_a_newer_builders_answer():
    old_client = (MIN_CONTRACT, BASE_CONTRACT)  # what a release of contract 2 speaks
    answer = handle({"contract": BASE_CONTRACT, "action": "ping"})
    result = BuildResult.from_json(answer, speaks=old_client)
    assert result.ok and result.contract == BASE_CONTRACT
    assert result.builder.contract == CONTRACT  # the builder's own, for the record
    unread = handle({"contract": CONTRACT + 1, "action": "ping"})
    assert unread["contract"] == CONTRACT and unread["ok"] is False


def test_the_package_and_the_builder_say_the_same_lambda3_version():
    from builder.contract import LAMBDA3_VERSION
    from builder.tomlread import read_toml

    project = read_toml(ROOT / "pyproject.toml", "pyproject.toml")["project"]
    assert project["version"] == LAMBDA3_VERSION
