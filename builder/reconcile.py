"""Reconciling a build with AWS: the desired state, the state AWS has now, the plan between
them, and the result the builder answers with. Applying the plan is `builder.apply`.

A build file with several functions is reconciled function by function (`FunctionPlan`):
each its own desired state, plan, version and alias. `share_layers` makes a layer that
several plans would publish with the same name and CodeSha256 published once, by the first
function that needs it, and attached to the others as that publish produced it."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from builder import limits
from builder.apply import Applied, Executor
from builder.aws import Aws, ConcurrentChangeError
from builder.build import BuildOutput
from builder.contract import (
    BuildResult,
    ComponentResult,
    Failure,
    FunctionResult,
    LayerResult,
    RolloutResult,
)
from builder.errors import AwsError, LimitError, RequestError
from builder.plan import (
    URL_STATEMENTS,
    BuiltLayer,
    Code,
    Desired,
    Plan,
    Published,
    PublishLayerVersion,
    State,
    UploadArtifact,
    artifact_key,
    describe,
    make_plan,
    parse_stamp,
    step_to_json,
)
from builder.schema import format_path
from builder.spec import check_snap_start_runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """Where a build goes: the function, the alias to move and how."""

    function: str
    alias: str | None = None
    publish: bool = True
    bucket: str | None = None
    allow_older: bool = False
    rollout: str | None = None  # the request's strategy; none: the build file's
    layer_base: str | None = None  # custom layers' default `<base>-<key>`; none: function
    tags: tuple[tuple[str, str], ...] = ()  # set besides the build file's (a preview's)


PREVIEW_TAG, REPOSITORY_TAG = "lambda3:preview", "lambda3:repository"


def function_name(spec, base: str, preview: int | None = None) -> str:
    """The Lambda function of one function's Spec: `base` (the request's function) for the
    `function:` form; in `functions:` its `name`, or `<base>-<key>`. A pull request's
    preview is that name with `-pr-<N>`."""
    name = base if spec.function_at == ("function",) else spec.name or f"{base}-{spec.key}"
    if preview is None:
        return name
    previewed = f"{name}-pr-{preview}"
    if len(previewed) > 64:
        raise RequestError(f"the preview of {name} would be {previewed}, {len(previewed)} "
                           "characters; Lambda allows 64", hint="give the function a shorter "
                           "name (function-name, or its `name:` in functions:)")
    return previewed


def preview_tags(repository: str, preview: int | None) -> tuple[tuple[str, str], ...]:
    """The tags that say a function is the preview of pull request N of a repository
    (`host/owner/name`, as tag values allow), so its cleanup finds it and nothing else."""
    if preview is None:
        return ()
    parts = urlsplit(repository)
    path = parts.path.strip("/").removesuffix(".git")
    return ((PREVIEW_TAG, str(preview)), (REPOSITORY_TAG, f"{parts.hostname or ''}/{path}"))


def destination_of(spec, request_function: str, *, preview: int | None = None,
                   repository: str = "", **how: Any) -> Destination:
    """Where one function's build goes; custom layers of `functions:` are named after the
    request's function (the repository's name by default), shared by every function."""
    several = spec.function_at != ("function",)
    return Destination(function_name(spec, request_function, preview),
                       layer_base=request_function if several else None,
                       tags=preview_tags(repository, preview), **how)


def layer_names(spec, function: str, base: str | None = None) -> dict[str, str]:
    """component -> AWS layer name: `<function>-dependencies`, `<base>-<key>` (`base` is the
    function unless given), or the name the build file gives."""
    names = {}
    if spec.dependencies is not None:
        names["dependencies"] = spec.dependencies.name or f"{function}-dependencies"
    for layer in spec.layers:
        names[layer.key] = layer.name or f"{base or function}-{layer.key}"
    return names


def desired_state(output: BuildOutput, target: Destination) -> Desired:
    spec = output.spec
    names = layer_names(spec, target.function, target.layer_base)
    layers = []
    for artifact in output.artifacts:
        if artifact.kind != "layer":
            continue
        layer_spec = _layer_spec(spec, artifact.name)
        layers.append(BuiltLayer(
            code=_code(artifact, target.bucket), layer_name=names[artifact.name],
            description=layer_spec.description or f"{artifact.name} for {target.function}",
            runtimes=tuple(layer_spec.runtimes) or tuple(spec.function.runtimes)
            or (output.target.runtime,),
            architectures=(output.target.architecture,), license=layer_spec.license,
        ))
    function = output.artifact("function")
    return Desired(
        function=target.function,
        code=_code(function, target.bucket) if function else None,
        layers=tuple(layers), our_layer_names=frozenset(names.values()),
        settings=function_settings(spec, output.target.runtime),
        architecture=spec.function.architecture, alias=target.alias, publish=target.publish,
        commit=output.commit, bucket=target.bucket,
        committed_at=output.committed_at, allow_older=target.allow_older,
        tags=_tags(spec.function.tags, target.tags),
        reserved_concurrency=spec.function.reserved_concurrency,
        recursion=spec.function.recursion,
        provisioned_concurrency=spec.function.provisioned_concurrency,
        function_url=spec.function.function_url, outside_layers=spec.function.outside_layers,
    )


def _tags(from_file, extra: tuple[tuple[str, str], ...]):
    """The build file's tags (None: it manages none), with the destination's over them."""
    if not extra:
        return from_file
    return tuple(dict([*(from_file or ()), *extra]).items())


def _layer_spec(spec, component: str):
    if component == "dependencies":
        return spec.dependencies
    return next(layer for layer in spec.layers if layer.key == component)


def _code(artifact, bucket: str | None) -> Code:
    stats = artifact.stats
    s3 = limits.needs_s3(stats.size)
    if s3 and not bucket:
        raise LimitError(
            f"{artifact.name} is {limits.human(stats.size)} zipped, over Lambda's "
            f"{limits.human(limits.DIRECT_UPLOAD_LIMIT)} direct-upload limit, and no artifact "
            f"bucket is configured (LAMBDA3_BUCKET or the request's 'bucket')"
        )
    return Code(artifact.name, str(artifact.zip_path), stats.code_sha256, stats.sha256_hex,
                stats.size, stats.unzipped_size,
                bucket if s3 else None, artifact_key(stats.sha256_hex) if s3 else None)


def function_settings(spec, runtime: str) -> tuple[tuple[str, Any], ...]:
    """The function settings the build file mentions; the others are left as they are.
    Each value is in the form `builder.plan` compares and `builder.apply` sends: a scalar,
    or a mapping of the sub-keys managed (LoggingConfig, VpcConfig)."""
    fn = spec.function
    if fn.snap_start:  # the runtime the target resolved to, when the file names none
        check_snap_start_runtime(runtime, spec.file, spec.line_of(
            f"{format_path(spec.function_at)}.snap_start"),
            f"{format_path(spec.function_at)}.snap_start")
    settings: dict[str, Any] = {}
    if fn.runtime or fn.runtimes:
        settings["Runtime"] = runtime
    for key, value in (("Handler", fn.handler), ("Role", fn.role), ("MemorySize", fn.memory),
                       ("Timeout", fn.timeout), ("Description", fn.description),
                       ("EphemeralStorage", fn.ephemeral_storage),
                       ("TracingConfig", fn.tracing), ("KMSKeyArn", fn.kms_key),
                       ("DeadLetterConfig", fn.dead_letter)):
        if value is not None:
            settings[key] = value
    if fn.environment is not None:
        settings["Environment"] = dict(fn.environment)
    if fn.logging is not None:
        settings["LoggingConfig"] = dict(fn.logging)
    if fn.vpc is not None:
        settings["VpcConfig"] = {"SubnetIds": sorted(fn.vpc[0]),
                                 "SecurityGroupIds": sorted(fn.vpc[1])}
    if fn.snap_start is not None:
        settings["SnapStart"] = "PublishedVersions" if fn.snap_start else "None"
    return tuple(settings.items())


def read_state(aws: Aws, desired: Desired) -> State:
    function = aws.get_function(desired.function)
    layer_versions = {}
    for arn in function.layers if function else ():
        found = aws.get_layer_version(arn)
        if found is not None:
            layer_versions[arn] = found
    layer_versions.update(_outside_layer_versions(aws, desired, layer_versions))
    latest_layers = {}
    for layer in desired.layers:
        found = aws.latest_layer_version(layer.layer_name)
        if found is not None:
            latest_layers[layer.layer_name] = found
    versions = aws.list_versions(desired.function) if function else []
    alias = aws.get_alias(desired.function, desired.alias) if function and desired.alias else None
    alias_config = next((v for v in versions if alias and v["Version"] == alias.version), None)
    codes = [layer.code for layer in desired.layers] + ([desired.code] if desired.code else [])
    s3_keys = frozenset(c.key for c in codes
                        if c.bucket and aws.s3_object_exists(c.bucket, c.key))
    tags = (aws.call("lambda", "list_tags", Resource=function.arn).get("Tags") or {}
            if function and desired.tags is not None else {})
    reserved = (aws.call("lambda", "get_function_concurrency", FunctionName=desired.function)
                .get("ReservedConcurrentExecutions")
                if function and desired.reserved_concurrency is not None else None)
    return State(function, layer_versions, latest_layers, versions[-1] if versions else None,
                 alias, s3_keys,
                 alias_build=parse_stamp(alias_config.get("Description")) if alias_config else None,
                 tags=tags, reserved_concurrency=reserved,
                 **(_unversioned_state(aws, desired, alias is not None) if function else {}))


def _outside_layer_versions(aws: Aws, desired: Desired,
                            known: Mapping[str, Any]) -> dict[str, Any]:
    """The layers from outside the build file it names, each read (for its size) before
    anything is deployed: one of another region, or one this account cannot read, is
    refused with its ARN."""
    found = {}
    for arn in desired.outside_layers or ():
        region = arn.split(":")[3]
        if region != aws.region:
            raise RequestError(f"layer {arn} is in {region}; {desired.function} is in "
                               f"{aws.region} and Lambda attaches only layers of its region",
                               hint=f"use the layer's {aws.region} ARN")
        if arn in known:
            continue
        try:
            version = aws.get_layer_version(arn)
        except AwsError as error:
            raise RequestError(f"layer {arn} cannot be read ({error.code}): it is not shared "
                               f"with this account, or the deploy may not read it",
                               hint="check the ARN and the layer's permissions") from None
        if version is None:
            raise RequestError(f"layer {arn} does not exist", hint="check the ARN and version")
        found[arn] = version
    return found


def _unversioned_state(aws: Aws, desired: Desired, alias_exists: bool) -> dict[str, Any]:
    """What AWS holds of the settings the build file names that are not part of a version:
    recursion, and the alias's (or the function's) provisioned concurrency and URL."""
    name, alias = desired.function, desired.alias
    qualifier = {"Qualifier": alias} if alias else {}
    state: dict[str, Any] = {}
    if desired.recursion is not None:
        state["recursion"] = aws.call("lambda", "get_function_recursion_config",
                                      FunctionName=name).get("RecursiveLoop", "Terminate")
    if desired.provisioned_concurrency is not None and alias and alias_exists:
        found = aws.maybe("lambda", "get_provisioned_concurrency_config", FunctionName=name,
                          Qualifier=alias)
        state["provisioned"] = found.get("RequestedProvisionedConcurrentExecutions") if (
            found) else None
    if desired.function_url is not None and (alias_exists or not alias):
        state["url"] = aws.maybe("lambda", "get_function_url_config", FunctionName=name,
                                 **qualifier)
        policy = aws.maybe("lambda", "get_policy", FunctionName=name, **qualifier)
        statements = json.loads(policy["Policy"]).get("Statement", []) if policy else []
        state["url_statements"] = frozenset(
            s.get("Sid") for s in statements if s.get("Sid") in URL_STATEMENTS)
    return state


def plan_deploy(aws: Aws, output: BuildOutput, target: Destination) -> tuple[Desired, Plan]:
    desired = desired_state(output, target)
    state = read_state(aws, desired)
    plan = make_plan(desired, state)  # refuses an older build for the alias, rollout or not
    if state.alias is not None and desired.alias and desired.publish and _rolls_out(
            output, target):
        moved = make_plan(replace(desired, move_alias=False), state)  # the rollout moves it
        if moved.version is None or moved.version != state.alias.version:
            plan = replace(moved, after=(_rollout_line(output, target, state.alias.version,
                                                       moved.version),))
        else:
            plan = moved
    for line in describe(plan):
        log.info("plan: %s", line)
    return desired, plan


def _rollout_line(output: BuildOutput, target: Destination, old: str,
                  new: str | None) -> str:
    """The plan's last line when the alias moves by a rollout (see `start_rollout`)."""
    from builder.rollout import parse_strategy

    release = _release(output)
    strategy = parse_strategy(target.rollout or release.rollout)
    first = strategy.weights()[0] if strategy.gradual else 1.0
    before = " after the pre-traffic checks" if release.checks else ""
    after = (", the post-traffic checks once it takes all traffic" if release.post_checks
             else "")
    return (f"start rollout ({strategy.text()}) of alias {target.alias}: version {old} -> "
            f"{'version ' + new if new else 'the new version'}, {first * 100:g}% of traffic "
            f"first{before}{after}; the client drives the rest")


def _release(output: BuildOutput):
    from builder.rollout import ReleaseSettings

    return getattr(output.spec, "release", None) or ReleaseSettings()


def _rolls_out(output: BuildOutput, target: Destination) -> bool:
    from builder.rollout import parse_strategy

    release = _release(output)
    return (parse_strategy(target.rollout or release.rollout).gradual or bool(release.checks)
            or bool(release.post_checks))


def start_rollout(aws: Aws, output: BuildOutput, target: Destination, version: str | None, *,
                  now=time.time) -> RolloutResult | None:
    """The builder's one step of a rollout: the alias keeps its version, the new one gets
    the first weight (none while checks are pending), and the state is recorded on the
    alias; a rollout already under way to this version is left for the client to drive."""
    from builder import rollout

    if not (target.alias and version and _rolls_out(output, target)):
        return None
    found = aws.call("lambda", "get_alias", FunctionName=target.function, Name=target.alias)
    state = rollout.decode(found.get("Description"))
    weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    if state is None or state.final or state.new != version or not rollout.matches(
            state, found["FunctionVersion"], weights):
        if found["FunctionVersion"] == version:
            return None
        release = _release(output)
        state = rollout.start_state(
            rollout.parse_strategy(target.rollout or release.rollout), found["FunctionVersion"],
            version, now(), alarms=release.alarms, max_error_rate=release.max_error_rate,
            checks=bool(release.checks), post_checks=bool(release.post_checks))
        aws.call("lambda", "update_alias", idempotent=False, **rollout.update_alias_args(
            target.function, target.alias, state, found.get("RevisionId")))
        log.info("rollout: %s", rollout.describe(state))
    release = _release(output)
    return rollout_result(state, release.checks, release.post_checks)


def rollout_result(state, checks=(), post_checks=()) -> RolloutResult:
    def wire(items):
        return tuple({"file": c.file, "event": c.event, "expect": c.expect} for c in items)

    return RolloutResult(
        strategy=state.strategy, phase=state.phase, old_version=state.old,
        new_version=state.new, weight=state.weight, alarms=state.alarms,
        max_error_rate=state.max_error_rate, checks=wire(checks),
        post_checks=wire(post_checks))


def apply_plan(aws: Aws, plan: Plan, published: Mapping[str, Any] | None = None) -> Applied:
    """Apply `plan`; if another change to the function comes between our reading and our
    changing it, read again, plan again and apply that, once. `Applied.plan` is the plan
    that was applied. `published`: component -> LayerVersion another function's apply
    published in this request, for the plan's `Published` refs without a publish step."""
    applied = Applied(layers=dict(published or {}))
    try:
        return Executor(aws).run(plan, applied)
    except ConcurrentChangeError as first:
        if plan.desired is None:
            raise
        log.info("%s: reading the function again and planning again", first.message)
    replan = make_plan(plan.desired, read_state(aws, plan.desired))
    for line in describe(replan):
        log.info("plan (again): %s", line)
    try:  # layers the first attempt published are reused by the new plan: keep their record
        return Executor(aws).run(replan, Applied(layers=dict(applied.layers)))
    except ConcurrentChangeError as again:
        raise ConcurrentChangeError(
            plan.function, "twice, between reading it and changing it; the alias was not "
                           "moved") from again


def result_of(output: BuildOutput, desired: Desired, plan: Plan, applied: Applied | None,
              aws: Aws) -> BuildResult:
    """The builder's answer for a successful build, plan or deploy (after a re-plan, of
    the plan that was applied)."""
    plan = applied.plan if applied and applied.plan else plan
    layers = tuple(_layer_result(layer, plan, applied) for layer in desired.layers)
    state_fn = aws.get_function(desired.function)
    code_sha = (desired.code.code_sha256 if desired.code else
                state_fn.code_sha256 if state_fn else None)
    version = applied.version if applied else plan.version
    return BuildResult(
        ok=True,
        action="build" if applied is not None else "plan",
        commit=output.commit,
        function=desired.function,
        function_arn=(applied.function_arn if applied and applied.function_arn
                      else state_fn.arn if state_fn else None),
        version=version,
        alias=desired.alias if applied is not None and version else None,
        code_sha256=code_sha,
        layers=layers,
        components=_components(output, plan, layers),
        plan=tuple(step_to_json(step) for step in plan.steps),
        plan_text=tuple(describe(plan)),
        target=output.target.describe(),
        warnings=tuple(output.warnings),
        function_url=(applied.function_url if applied and applied.function_url
                      else plan.function_url),
    )


def _layer_result(layer: BuiltLayer, plan: Plan, applied: Applied | None) -> LayerResult:
    ref = plan.layers[layer.code.component]
    published = applied.layers.get(layer.code.component) if applied else None
    arn = published.arn if published else (None if isinstance(ref, Published) else ref)
    return LayerResult(
        component=layer.code.component, name=layer.layer_name, arn=arn,
        version=int(arn.rsplit(":", 1)[1]) if arn else None,
        changed=isinstance(ref, Published), size=layer.code.size,
        code_sha256=layer.code.code_sha256)


def _components(output: BuildOutput, plan: Plan,
                layers: tuple[LayerResult, ...]) -> tuple[ComponentResult, ...]:
    by_component = {layer.component: layer for layer in layers}
    rows = []
    for artifact in output.artifacts:
        layer = by_component.get(artifact.name)
        changed = (plan.code_changed if artifact.kind == "function"
                   else bool(layer and layer.changed))
        stats = artifact.stats
        rows.append(ComponentResult(
            name=artifact.name, kind=artifact.kind, code_sha256=stats.code_sha256,
            size=stats.size, unzipped_size=stats.unzipped_size, files=stats.files,
            changed=changed, arn=layer.arn if layer else None, reused=artifact.reused))
    return tuple(rows)


# -- several functions ---------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionPlan:
    """One function's part of a request: its build, destination, desired state and plan.
    `shared`: component -> key of the earlier function whose plan publishes that layer."""

    key: str
    output: BuildOutput
    target: Destination
    desired: Desired
    plan: Plan
    shared: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> list[str]:
        return describe(self.plan) + self.shared_lines()

    def shared_lines(self) -> list[str]:
        names = {layer.code.component: layer.layer_name for layer in self.desired.layers}
        return [f"attach layer {names[c]} as published for {key}"
                for c, key in self.shared.items()]


def share_layers(plans: Sequence[FunctionPlan]) -> list[FunctionPlan]:
    """A layer several plans publish with the same name and CodeSha256 is published by the
    first of them only: the later ones lose that publish (and its upload) and record whose
    publish they attach."""
    first: dict[tuple[str, str], str] = {}  # (layer name, CodeSha256) -> function key
    shared_plans = []
    for item in plans:
        keep, shared = [], {}
        dropped = set()
        for step in item.plan.steps:
            if isinstance(step, PublishLayerVersion):
                found = (step.layer.layer_name, step.layer.code.code_sha256)
                if found in first:
                    shared[step.layer.code.component] = first[found]
                    dropped.add(step.layer.code.component)
                    continue
                first[found] = item.key
            keep.append(step)
        keep = [step for step in keep
                if not (isinstance(step, UploadArtifact) and step.component in dropped)]
        plan = replace(item.plan, steps=tuple(keep))
        shared_plans.append(replace(item, plan=plan, shared={**item.shared, **shared}))
    return shared_plans


def apply_function(aws: Aws, item: FunctionPlan, applied_by: Mapping[str, Applied]
                   ) -> tuple[Applied, RolloutResult | None]:
    """Apply one function's plan, the layers it shares taken from the earlier function's
    apply; had that one not published them after all, plan again from what AWS holds."""
    seed = {component: applied_by[key].layers.get(component) if key in applied_by else None
            for component, key in item.shared.items()}
    plan = item.plan
    if any(found is None for found in seed.values()):
        plan, seed = make_plan(item.desired, read_state(aws, item.desired)), {}
    applied = apply_plan(aws, plan, published=seed)
    return applied, start_rollout(aws, item.output, item.target, applied.version)


def function_result(item: FunctionPlan, result: BuildResult, *, deployed: bool,
                    error: Failure | None = None) -> FunctionResult:
    """One function's part of the answer, from `result_of` for it."""
    return FunctionResult(
        key=item.key, name=item.target.function, arn=result.function_arn,
        version=result.version, alias=result.alias, code_sha256=result.code_sha256,
        target=result.target, deployed=deployed, layers=result.layers,
        components=result.components, plan=result.plan,
        plan_text=result.plan_text + tuple(item.shared_lines()), rollout=result.rollout,
        error=error, function_url=result.function_url)


def several_result(action: str, output: BuildOutput, functions: Sequence[FunctionResult],
                   error: Failure | None = None) -> BuildResult:
    """The answer for a `functions:` build file: each function's part, and `error` naming
    the function that failed and what the others are."""
    if error is not None:
        done = [f"{f.key} ({f.name})" for f in functions if f.deployed]
        left = [f"{f.key} ({f.name})" for f in functions if not f.deployed and f.error is None]
        message = error.message + (f"; deployed: {', '.join(done)}" if done else "") + (
            f"; not deployed: {', '.join(left)}" if left else "")
        error = replace(error, message=message)
    return BuildResult(
        ok=error is None, action=action, commit=output.commit, warnings=tuple(output.warnings),
        plan_text=tuple(f"{f.key}: {line}" for f in functions for line in f.plan_text),
        functions=tuple(functions), error=error)
