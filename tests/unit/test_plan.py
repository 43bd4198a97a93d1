"""The planner is pure: (what was built, what AWS has) -> steps. These tests compare plans."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from builder.aws import AliasState, FunctionState, LayerVersion
from builder.errors import LimitError, SpecError
from builder.plan import (
    BuiltLayer,
    Code,
    CreateFunction,
    Desired,
    OlderBuildError,
    Published,
    PublishLayerVersion,
    PublishVersion,
    SetAlias,
    Stamp,
    State,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UploadArtifact,
    describe,
    make_plan,
    parse_stamp,
    step_to_json,
    version_description,
)
from builder.reconcile import function_settings
from builder.spec import FunctionSpec, Spec

ACCOUNT = "arn:aws:lambda:us-east-1:123456789012"


def code(component, sha, size=1000, unzipped=3000, bucket=None):
    key = f"lambda3/artifacts/{sha}.zip" if bucket else None
    return Code(component, f"/tmp/{component}.zip", sha, sha + "hex", size, unzipped, bucket, key)


def layer(component, sha, name=None, **kw):
    return BuiltLayer(code(component, sha, **kw), name or f"fn-{component}")


def layer_arn(name, version):
    return f"{ACCOUNT}:layer:{name}:{version}"


def function_state(sha="F1", layers=(), **config):
    base = {"FunctionName": "fn", "FunctionArn": f"{ACCOUNT}:function:fn", "CodeSha256": sha,
            "Runtime": "python3.12", "Handler": "app.handler", "Architectures": ["x86_64"]}
    base.update(config)
    return FunctionState("fn", base["FunctionArn"], sha, "rev-1", tuple(layers), base)


def desired(**kw):
    values = dict(function="fn", code=code("function", "F2"), layers=(layer("dependencies", "D1"),),
                  our_layer_names=frozenset({"fn-dependencies"}), alias="live", publish=True,
                  commit="a" * 40)
    values.update(kw)
    return Desired(**values)


def test_first_deploy_creates_function_with_new_layer_then_version_and_alias():
    d = desired(settings=(("Role", "arn:aws:iam::123456789012:role/r"), ("Handler", "app.h"),
                          ("Runtime", "python3.12")))
    plan = make_plan(d, State(function=None))
    assert [type(s) for s in plan.steps] == [PublishLayerVersion, CreateFunction, PublishVersion,
                                            SetAlias]
    create = plan.steps[1]
    assert create.layers == (Published("dependencies"),)
    assert plan.steps[3] == SetAlias("fn", "live", None, exists=False)
    assert plan.code_changed


def test_missing_function_without_creation_settings_is_a_clear_error():
    with pytest.raises(SpecError) as info:
        make_plan(desired(), State(function=None))
    message = str(info.value)
    assert "does not exist" in message and "function.role" in message
    assert "function.handler" in message and "function.runtime" in message


def test_code_only_change_publishes_no_layer():
    current = layer_arn("fn-dependencies", 3)
    state = State(
        function=function_state("F1", [current]),
        layer_versions={current: LayerVersion("fn-dependencies", current, 3, "D1", 10)},
        latest_version={"Version": "4", "CodeSha256": "F1", "Layers": [{"Arn": current}]},
        alias=AliasState("4", "alias-rev"),
    )
    plan = make_plan(desired(), state)
    assert [type(s) for s in plan.steps] == [UpdateFunctionCode, PublishVersion, SetAlias]
    assert plan.layers == {"dependencies": current}
    assert plan.steps[2].exists is True


def test_noop_redeploy_plans_nothing_and_reports_the_current_version():
    current = layer_arn("fn-dependencies", 3)
    state = State(
        function=function_state("F2", [current]),
        layer_versions={current: LayerVersion("fn-dependencies", current, 3, "D1", 10)},
        latest_version={"Version": "5", "CodeSha256": "F2", "Layers": [{"Arn": current}]},
        alias=AliasState("5", "alias-rev"),
    )
    plan = make_plan(desired(), state)
    assert plan.steps == ()
    assert plan.version == "5"
    assert describe(plan) == ["fn: nothing to do, everything is up to date"]


def test_unchanged_code_but_alias_elsewhere_moves_alias_only():
    current = layer_arn("fn-dependencies", 3)
    state = State(
        function=function_state("F2", [current]),
        layer_versions={current: LayerVersion("fn-dependencies", current, 3, "D1", 10)},
        latest_version={"Version": "5", "CodeSha256": "F2", "Layers": [{"Arn": current}]},
        alias=AliasState("2", "alias-rev"),
    )
    plan = make_plan(desired(), state)
    assert plan.steps == (SetAlias("fn", "live", "5", exists=True, revision_id="alias-rev"),)


def test_dependency_change_republishes_only_that_layer_and_keeps_foreign_layers_in_place():
    ours, foreign = layer_arn("fn-dependencies", 3), f"{ACCOUNT}:layer:otel:7"
    models = layer_arn("fn-models", 2)
    state = State(
        function=function_state("F2", [foreign, ours, models]),
        layer_versions={ours: LayerVersion("fn-dependencies", ours, 3, "OLD", 10),
                        models: LayerVersion("fn-models", models, 2, "M1", 10)},
        latest_layers={"fn-dependencies": LayerVersion("fn-dependencies", ours, 3, "OLD", 10)},
    )
    d = desired(layers=(layer("dependencies", "D1"), layer("models", "M1")),
                our_layer_names=frozenset({"fn-dependencies", "fn-models"}))
    plan = make_plan(d, state)
    assert [type(s) for s in plan.steps] == [PublishLayerVersion, UpdateFunctionConfiguration,
                                            PublishVersion, SetAlias]
    assert plan.steps[0].layer.layer_name == "fn-dependencies"
    assert plan.steps[1].layers == (foreign, Published("dependencies"), models)
    assert plan.steps[1].settings == ()


def test_layer_matching_latest_version_is_reused_not_republished():
    latest = layer_arn("fn-dependencies", 9)
    state = State(function=function_state("F2", []),
                  latest_layers={"fn-dependencies": LayerVersion("fn-dependencies", latest, 9,
                                                                 "D1", 5)})
    plan = make_plan(desired(alias=None), state)
    assert not any(isinstance(s, PublishLayerVersion) for s in plan.steps)
    assert plan.steps[0] == UpdateFunctionConfiguration("fn", (), (latest,), "rev-1")


def test_settings_mentioned_are_applied_and_others_left_alone():
    state = State(function=function_state("F2", [], MemorySize=128, Timeout=3,
                                          Environment={"Variables": {"A": "1"}}))
    d = desired(layers=(), our_layer_names=frozenset(), alias=None,
                settings=(("MemorySize", 512), ("Timeout", 3), ("Environment", {"A": "1"})))
    plan = make_plan(d, state)
    assert plan.steps[0] == UpdateFunctionConfiguration("fn", (("MemorySize", 512),), None,
                                                        "rev-1")


def test_architecture_change_goes_with_the_code():
    state = State(function=function_state("F2", []))
    plan = make_plan(desired(layers=(), our_layer_names=frozenset(), alias=None,
                             architecture="arm64"), state)
    assert plan.steps[0] == UpdateFunctionCode("fn", code("function", "F2"), "arm64", "rev-1")


def test_too_many_layers_is_refused_before_anything_is_published():
    foreign = [f"{ACCOUNT}:layer:x{i}:1" for i in range(5)]
    state = State(function=function_state("F1", foreign))
    with pytest.raises(LimitError, match="at most 5"):
        make_plan(desired(), state)


def test_unzipped_limit_is_checked_up_front():
    big = layer("dependencies", "D1", unzipped=200 * 1024 * 1024)
    d = desired(layers=(big,), code=code("function", "F2", unzipped=60 * 1024 * 1024))
    with pytest.raises(LimitError, match="250"):
        make_plan(d, State(function=function_state()))


def test_large_zip_is_uploaded_once_content_addressed():
    big = layer("dependencies", "D1", size=60 * 1024 * 1024, bucket="b")
    plan = make_plan(desired(layers=(big,), alias=None), State(function=function_state("F2")))
    assert plan.steps[0] == UploadArtifact("dependencies", "/tmp/dependencies.zip", "b",
                                           "lambda3/artifacts/D1.zip")
    again = make_plan(desired(layers=(big,), alias=None),
                      State(function=function_state("F2"),
                            s3_keys=frozenset({"lambda3/artifacts/D1.zip"})))
    assert not any(isinstance(s, UploadArtifact) for s in again.steps)


def test_no_publish_means_no_version_and_no_alias():
    plan = make_plan(desired(alias=None, publish=False, layers=(),
                             our_layer_names=frozenset()), State(function=function_state("F1")))
    assert [type(s) for s in plan.steps] == [UpdateFunctionCode]
    assert plan.version is None


def test_steps_render_as_json_data():
    plan = make_plan(desired(settings=(("Role", "r"), ("Handler", "h"), ("Runtime", "python3.12"))),
                     State(function=None))
    rendered = [step_to_json(s) for s in plan.steps]
    assert rendered[0]["action"] == "PublishLayerVersion"
    assert rendered[1]["layers"] == [{"published": "dependencies"}]
    assert rendered[3] == {"action": "SetAlias", "function": "fn", "alias": "live",
                           "version": None, "exists": False, "revision_id": None, "weights": []}


def published_state(latest_config=None, alias="5", **function_config):
    """$LATEST at code F2 with our layer, the latest version 5 as `latest_config` says."""
    current = layer_arn("fn-dependencies", 3)
    latest = {"Version": "5", "CodeSha256": "F2", "Layers": [{"Arn": current}]}
    latest.update(latest_config or {})
    return State(
        function=function_state("F2", [current], **function_config),
        layer_versions={current: LayerVersion("fn-dependencies", current, 3, "D1", 10)},
        latest_version=latest, alias=AliasState(alias, "alias-rev") if alias else None,
    )


def test_configuration_changed_since_the_last_version_is_published():
    # $LATEST has memory 256 (a publish failed or was skipped), version 5 has 128
    state = published_state({"MemorySize": 128}, MemorySize=256)
    plan = make_plan(desired(settings=(("MemorySize", 256),)), state)
    assert [type(s) for s in plan.steps] == [PublishVersion, SetAlias]
    assert plan.version is None


def test_version_description_is_ours_and_does_not_make_a_change():
    state = published_state({"Description": "lambda3 aaaaaaaaaaaa: my app"},
                            Description="my app")
    plan = make_plan(desired(settings=(("Description", "my app"),)), state)
    assert plan.steps == ()


def test_every_precondition_is_the_one_read_at_plan_time():
    state = published_state({"MemorySize": 128}, MemorySize=128)
    d = desired(code=code("function", "F3"), settings=(("MemorySize", 256),))
    steps = make_plan(d, state).steps
    assert [type(s) for s in steps] == [UpdateFunctionConfiguration, UpdateFunctionCode,
                                       PublishVersion, SetAlias]
    assert [s.revision_id for s in steps] == ["rev-1", "rev-1", "rev-1", "alias-rev"]
    assert steps[2].code_sha256 == "F3"
    assert steps[3].weights == ()


def test_version_description_records_commit_and_time_and_keeps_the_users():
    text = version_description("0123456789abcdef", 1_700_000_000, "my app")
    assert text == "lambda3 0123456789ab 2023-11-14T22:13:20Z: my app"
    assert parse_stamp(text) == Stamp("0123456789ab", 1_700_000_000)
    assert parse_stamp("lambda3 0123456789ab") == Stamp("0123456789ab", None)
    assert parse_stamp("deployed by hand") is None
    assert len(version_description("a" * 40, 1, "x" * 300)) == 256


def test_alias_is_not_moved_to_an_older_build():
    state = State(function=function_state("F1"), alias=AliasState("7", "alias-rev"),
                  alias_build=Stamp("b" * 12, 2_000_000_000))
    older = desired(layers=(), our_layer_names=frozenset(), committed_at=1_900_000_000)
    with pytest.raises(OlderBuildError) as info:
        make_plan(older, state)
    message = str(info.value)
    assert "b" * 12 in message and "a" * 12 in message and "--allow-older" in message
    allowed = make_plan(desired(layers=(), our_layer_names=frozenset(),
                                committed_at=1_900_000_000, allow_older=True), state)
    assert isinstance(allowed.steps[-1], SetAlias)
    newer = make_plan(desired(layers=(), our_layer_names=frozenset(),
                              committed_at=2_100_000_000), state)
    assert isinstance(newer.steps[-1], SetAlias)


def test_kept_foreign_layers_count_toward_the_unzipped_limit():
    foreign = f"{ACCOUNT}:layer:big:1"
    state = State(function=function_state("F1", [foreign]),
                  layer_versions={foreign: LayerVersion("big", foreign, 1, "X", 200 * 1024 * 1024)})
    d = desired(layers=(), our_layer_names=frozenset(),
                code=code("function", "F2", unzipped=60 * 1024 * 1024))
    with pytest.raises(LimitError, match="big:1"):
        make_plan(d, state)


def test_snap_start_is_a_setting_and_its_versions_are_waited_for():
    state = published_state(alias=None)
    steps = make_plan(desired(settings=(("SnapStart", "PublishedVersions"),), alias=None),
                      state).steps
    assert steps[0] == UpdateFunctionConfiguration(
        "fn", (("SnapStart", "PublishedVersions"),), None, "rev-1")
    assert steps[1].wait_active is True
    plain = make_plan(desired(code=code("function", "F3"), alias=None), state).steps
    assert plain[-1].wait_active is False


def settings_of(**function):
    spec = Spec("build.yaml", FunctionSpec(files=("app.py",), **function), None, ())
    return function_settings(spec, "python3.13")


def test_snap_start_in_the_build_file_is_a_setting():
    assert settings_of(snap_start=True) == (("SnapStart", "PublishedVersions"),)
    assert settings_of(snap_start=False) == (("SnapStart", "None"),)
    assert settings_of() == ()


def test_snap_start_on_the_target_runtime_before_3_12_is_refused():
    spec = Spec("build.yaml", FunctionSpec(files=("app.py",), snap_start=True), None, (),
                lines=(("function.snap_start", 7),))
    with pytest.raises(SpecError, match="not available on python3.11") as info:
        function_settings(spec, "python3.11")
    assert (info.value.file, info.value.line, info.value.key) == (
        "build.yaml", 7, "function.snap_start")


SETTINGS_2026 = dict(
    ephemeral_storage=2048, tracing="Active",
    logging=(("LogFormat", "JSON"), ("ApplicationLogLevel", "WARN")),
    kms_key="arn:aws:kms:us-east-1:123456789012:key/k1",
    dead_letter="arn:aws:sqs:us-east-1:123456789012:dlq",
    vpc=(("subnet-2", "subnet-1"), ("sg-1",)))


def test_settings_of_2026_become_lambdas_keys():
    assert dict(settings_of(**SETTINGS_2026)) == {
        "EphemeralStorage": 2048, "TracingConfig": "Active",
        "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "WARN"},
        "KMSKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k1",
        "DeadLetterConfig": "arn:aws:sqs:us-east-1:123456789012:dlq",
        "VpcConfig": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}}


# $LATEST and version 5 as Lambda returns them with those settings already applied
APPLIED_2026 = dict(
    EphemeralStorage={"Size": 2048}, TracingConfig={"Mode": "Active"},
    LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "INFO",
                   "LogGroup": "/aws/lambda/fn"},
    KMSKeyArn="arn:aws:kms:us-east-1:123456789012:key/k1",
    DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq"},
    VpcConfig={"SubnetIds": ["subnet-2", "subnet-1"], "SecurityGroupIds": ["sg-1"],
               "VpcId": "vpc-1"})


def test_settings_of_2026_already_applied_publish_nothing():
    state = published_state(APPLIED_2026, alias=None, **APPLIED_2026)
    plan = make_plan(desired(alias=None,
                             settings=settings_of(**SETTINGS_2026)), state)
    assert plan.steps == () and plan.version == "5"


def test_each_changed_setting_of_2026_is_updated_and_shown():
    state = published_state(APPLIED_2026, alias=None, **APPLIED_2026)
    wanted = settings_of(**{**SETTINGS_2026, "ephemeral_storage": 4096, "tracing": "PassThrough",
                            "logging": (("LogFormat", "Text"),),
                            "vpc": ((), ())})
    plan = make_plan(desired(alias=None,
                             settings=wanted), state)
    update = plan.steps[0]
    assert update == UpdateFunctionConfiguration("fn", (
        ("EphemeralStorage", 4096), ("TracingConfig", "PassThrough"),
        ("LoggingConfig", {"LogFormat": "Text"}),
        ("VpcConfig", {"SubnetIds": [], "SecurityGroupIds": []})), None, "rev-1")
    assert update.describe() == (
        "update configuration of fn: EphemeralStorage 2048 -> 4096, TracingConfig Active -> "
        "PassThrough, LoggingConfig {LogFormat: JSON} -> {LogFormat: Text}, VpcConfig "
        "{SubnetIds: [subnet-1, subnet-2], SecurityGroupIds: [sg-1]} -> {SubnetIds: [], "
        "SecurityGroupIds: []}")
    assert isinstance(plan.steps[1], PublishVersion)


def test_a_version_published_with_other_settings_of_2026_is_published_again():
    """$LATEST already has the settings (changed by hand, say) but version 5 does not."""
    state = published_state(APPLIED_2026, alias=None, **APPLIED_2026)
    state = replace(state, latest_version={**state.latest_version, "TracingConfig": {
        "Mode": "PassThrough"}})
    plan = make_plan(desired(alias=None,
                             settings=(("TracingConfig", "Active"),)), state)
    assert [type(step) for step in plan.steps] == [PublishVersion]


def test_settings_of_2026_on_creation():
    plan = make_plan(desired(layers=(), alias=None, settings=(
        ("Role", "arn:aws:iam::123456789012:role/r"), ("Handler", "app.handler"),
        ("Runtime", "python3.13")) + settings_of(**SETTINGS_2026)), State(None))
    create = plan.steps[0]
    assert isinstance(create, CreateFunction)
    assert dict(create.settings)["VpcConfig"] == {"SubnetIds": ["subnet-1", "subnet-2"],
                                                  "SecurityGroupIds": ["sg-1"]}


# -- several functions: names, and a shared layer published once ---------------------------
from builder.reconcile import (  # noqa: E402 - the several-functions part of this module
    Destination,
    FunctionPlan,
    destination_of,
    function_name,
    layer_names,
    several_result,
    share_layers,
)


def view(key="function", name=None, layers=(), dependencies=True):
    """A one-function Spec as `Spec.for_function` makes it."""
    at = ("function",) if key == "function" else ("functions", key)
    deps = SimpleNamespace(name=None) if dependencies else None
    return SimpleNamespace(key=key, name=name, function_at=at, dependencies=deps,
                           layers=tuple(SimpleNamespace(key=k, name=None) for k in layers))


def test_the_single_function_keeps_its_names():
    spec = view(layers=("models",))
    assert function_name(spec, "shop") == "shop"
    assert layer_names(spec, "shop") == {"dependencies": "shop-dependencies",
                                         "models": "shop-models"}
    assert destination_of(spec, "shop", alias="live") == Destination("shop", "live")


def test_functions_are_named_by_key_and_share_their_custom_layers_names():
    api, worker = view("api", layers=("shared",)), view("worker", name="jobs",
                                                        layers=("shared",))
    targets = [destination_of(v, "shop") for v in (api, worker)]
    assert [t.function for t in targets] == ["shop-api", "jobs"]
    named = zip((api, worker), targets, strict=True)
    assert [layer_names(v, t.function, t.layer_base) for v, t in named] == [
        {"dependencies": "shop-api-dependencies", "shared": "shop-shared"},
        {"dependencies": "jobs-dependencies", "shared": "shop-shared"}]


def function_plan(key, *layers, state=None):
    d = desired(function=f"shop-{key}", layers=layers,
                our_layer_names=frozenset(x.layer_name for x in layers))
    target = Destination(f"shop-{key}", "live")
    return FunctionPlan(key, None, target, d, make_plan(d, state or State(function_state())))


def test_a_layer_two_plans_publish_alike_is_published_by_the_first_only():
    shared = layer("shared", "S1", name="shop-shared", size=60 * 1024 * 1024, bucket="b")
    plans = [function_plan("api", layer("dependencies", "A1", name="shop-api-deps"), shared),
             function_plan("worker", layer("dependencies", "W1", name="shop-worker-deps"),
                           shared),
             function_plan("cron", layer("shared", "S2", name="shop-shared"))]
    api, worker, cron = share_layers(plans)
    published = [[s.layer.layer_name for s in p.plan.steps if isinstance(s, PublishLayerVersion)]
                 for p in (api, worker, cron)]
    assert published == [["shop-api-deps", "shop-shared"], ["shop-worker-deps"],
                         ["shop-shared"]]  # other content under the same name: its own
    assert (api.shared, worker.shared, cron.shared) == ({}, {"shared": "api"}, {})
    assert not any(isinstance(s, UploadArtifact) for s in worker.plan.steps)  # api uploads it
    assert worker.plan.layers["shared"] == Published("shared")  # resolved from api's publish
    assert "attach layer shop-shared as published for api" in worker.describe()
    assert api.plan == plans[0].plan  # the first is left as it was


def test_a_layer_every_function_already_has_is_published_by_none():
    current = LayerVersion(layer_arn("shop-shared", 3), "shop-shared", 3, "S1", 10)
    state = State(function_state(layers=(current.arn,)), layer_versions={current.arn: current})
    plans = share_layers([function_plan(k, layer("shared", "S1", name="shop-shared"),
                                        state=state) for k in ("api", "worker")])
    assert all(p.shared == {} and p.plan.layers["shared"] == current.arn for p in plans)


def test_a_partial_failure_names_the_function_and_what_the_others_are():
    from builder.contract import Failure, FunctionResult

    output = SimpleNamespace(commit="c" * 40, warnings=[])
    functions = [FunctionResult(key="api", name="shop-api", deployed=True, plan_text=("x",)),
                 FunctionResult(key="worker", name="shop-worker",
                                error=Failure(step="apply", message="function worker "
                                              "(shop-worker): throttled")),
                 FunctionResult(key="cron", name="shop-cron")]
    result = several_result("build", output, functions, functions[1].error)
    assert result.ok is False
    assert result.error.message == ("function worker (shop-worker): throttled; deployed: api "
                                    "(shop-api); not deployed: cron (shop-cron)")
    assert result.plan_text == ("api: x",) and result.function is None
    assert several_result("build", output, functions[:1]).ok is True


# -- tags and reserved concurrency: their own steps, after the version ----------------------
from builder.plan import SetReservedConcurrency, TagFunction  # noqa: E402


def test_only_the_tags_the_build_file_names_are_set_or_removed():
    state = replace(published_state(alias=None), tags={"team": "shop", "old": "x", "own": "y"})
    plan = make_plan(desired(alias=None, tags=(
        ("cost", "42"), ("old", None), ("gone", None), ("team", "shop"))), state)
    tag = plan.steps[-1]
    assert tag == TagFunction("fn", (("cost", "42"),), ("old",), f"{ACCOUNT}:function:fn")
    assert tag.describe() == "tag fn: set cost; remove old"
    assert plan.steps == (tag,) and plan.version == "5"  # tags do not make a version


def test_tags_and_concurrency_already_so_plan_nothing():
    state = replace(published_state(alias=None), tags={"team": "shop"},
                    reserved_concurrency=5)
    plan = make_plan(desired(alias=None, tags=(("team", "shop"), ("old", None)),
                             reserved_concurrency=5), state)
    assert plan.steps == () and plan.version == "5"
    assert make_plan(desired(alias=None, reserved_concurrency=6), state).steps == (
        SetReservedConcurrency("fn", 6, 5),)


def test_reserved_concurrency_is_put_when_it_differs():
    state = replace(published_state(alias=None), reserved_concurrency=None)
    step = make_plan(desired(alias=None, reserved_concurrency=0), state).steps[-1]
    assert step == SetReservedConcurrency("fn", 0, None)
    assert step.describe() == "set reserved concurrency of fn to 0 (was none)"


def test_a_new_function_is_tagged_once_created():
    plan = make_plan(desired(layers=(), alias=None, tags=(("team", "shop"), ("x", None)),
                             reserved_concurrency=3, settings=(
        ("Role", "arn:aws:iam::123456789012:role/r"), ("Handler", "app.handler"),
        ("Runtime", "python3.13"))), State(None))
    assert plan.steps[-2:] == (TagFunction("fn", (("team", "shop"),), (), None),
                               SetReservedConcurrency("fn", 3, None))


def test_a_changed_environment_is_shown_by_variable_names_only():
    state = published_state(alias=None, Environment={"Variables": {
        "KEEP": "1", "TOKEN": "old-secret", "GONE": "x"}})
    wanted = (("Environment", {"KEEP": "1", "TOKEN": "new-secret", "NEW": "y"}),)
    update = make_plan(desired(alias=None, settings=wanted), state).steps[0]
    text = update.describe()
    assert text == "update configuration of fn: Environment (add NEW; change TOKEN; remove GONE)"
    assert "secret" not in text and "previous" not in step_to_json(update)


# -- settings on the alias and outside layers ------------------------------------------------
from builder.errors import RequestError  # noqa: E402
from builder.plan import (  # noqa: E402
    SetFunctionUrl,
    SetProvisionedConcurrency,
    SetRecursion,
)
from builder.spec import FunctionUrlSpec  # noqa: E402


def unversioned_steps(plan):
    kinds = (SetRecursion, SetProvisionedConcurrency, SetFunctionUrl)
    return [s for s in plan.steps if isinstance(s, kinds)]


def test_provisioned_concurrency_is_set_after_the_alias_and_waited_for_on_a_move():
    state = published_state(alias="4")
    plan = make_plan(desired(provisioned_concurrency=5), replace(state, provisioned=None))
    assert isinstance(plan.steps[-2], SetAlias)
    assert plan.steps[-1] == SetProvisionedConcurrency("fn", "live", 5, None)
    assert plan.steps[-1].describe() == ("set provisioned concurrency of fn:live to 5 (was none) "
                                         "and wait until it is READY")
    same = make_plan(desired(provisioned_concurrency=5), replace(state, provisioned=5))
    assert same.steps[-1] == SetProvisionedConcurrency("fn", "live", 5, 5, put=False)
    removed = make_plan(desired(provisioned_concurrency=0), replace(state, provisioned=5))
    assert removed.steps[-1].describe() == "remove provisioned concurrency of fn:live (was 5)"
    unchanged = make_plan(desired(code=None, layers=(), provisioned_concurrency=5),
                          replace(published_state(alias="5"), provisioned=5))
    assert unchanged.steps == ()


def test_provisioned_concurrency_without_an_alias_is_refused_before_any_step():
    with pytest.raises(RequestError, match="names no alias"):
        make_plan(desired(alias=None, provisioned_concurrency=2), published_state(alias=None))
    with pytest.raises(RequestError, match="does not create alias live"):
        make_plan(desired(publish=False, provisioned_concurrency=2),
                  published_state(alias=None))


def test_recursion_is_set_only_when_it_differs():
    state = published_state()
    plan = make_plan(desired(code=None, layers=(), recursion="Allow"), state)
    assert unversioned_steps(plan) == [SetRecursion("fn", "Allow", "Terminate")]
    assert make_plan(desired(code=None, layers=(), recursion="Allow"),
                     replace(state, recursion="Allow")).steps == ()


def test_a_public_function_url_is_created_with_its_two_statements():
    plan = make_plan(desired(code=None, layers=(), function_url=FunctionUrlSpec(auth="NONE")),
                     published_state())
    step = unversioned_steps(plan)[0]
    assert step == SetFunctionUrl("fn", "live", (("AuthType", "NONE"),), exists=False,
                                  add_statements=("lambda3-url-public",
                                                  "lambda3-url-public-invoke"))
    assert step.describe() == ("create a function URL for fn:live (AuthType NONE); public: "
                               "anyone may invoke it")
    assert plan.function_url is None


def test_a_function_url_changes_only_what_the_file_names_and_drops_our_statements():
    url = {"FunctionUrl": "https://u.lambda-url.us-east-1.on.aws/", "AuthType": "NONE",
           "Cors": {"AllowOrigins": ["*"]}, "InvokeMode": "BUFFERED"}
    state = replace(published_state(), url=url,
                    url_statements=frozenset({"lambda3-url-public", "lambda3-url-public-invoke"}))
    same = make_plan(desired(code=None, layers=(), function_url=FunctionUrlSpec(
        cors=(("AllowOrigins", ("*",)),))), state)
    assert same.steps == () and same.function_url == url["FunctionUrl"]
    private = make_plan(desired(code=None, layers=(),
                                function_url=FunctionUrlSpec(auth="AWS_IAM")), state)
    step = unversioned_steps(private)[0]
    assert (step.config, step.remove_statements, step.add_statements) == (
        (("AuthType", "AWS_IAM"),), ("lambda3-url-public", "lambda3-url-public-invoke"), ())
    assert step.describe() == ("update the function URL of fn:live: AuthType NONE -> AWS_IAM; "
                               "no longer public")
    gone = make_plan(desired(code=None, layers=(), function_url=FunctionUrlSpec(remove=True)),
                     state)
    assert unversioned_steps(gone)[0].remove and gone.function_url is None


def test_outside_layers_replace_versions_in_place_detach_the_unlisted_and_append_the_new():
    ours = layer_arn("fn-dependencies", 3)
    otel, insights = layer_arn("otel", 4), layer_arn("insights", 1)
    state = published_state()
    state = replace(state, function=function_state("F2", [otel, ours, insights]),
                    layer_versions={**state.layer_versions,
                                    otel: LayerVersion("otel", otel, 4, "O", 10),
                                    insights: LayerVersion("insights", insights, 1, "I", 10),
                                    layer_arn("otel", 5): LayerVersion("otel", "", 5, "O5", 10),
                                    layer_arn("new", 1): LayerVersion("new", "", 1, "N", 10)})
    plan = make_plan(desired(code=None, outside_layers=(layer_arn("otel", 5),
                                                        layer_arn("new", 1))), state)
    update = plan.steps[0]
    assert update.layers == (layer_arn("otel", 5), ours, layer_arn("new", 1))
    kept = make_plan(desired(code=None), replace(state, function=function_state(
        "F2", [otel, ours, insights])))
    assert all(not isinstance(s, UpdateFunctionConfiguration) for s in kept.steps)
