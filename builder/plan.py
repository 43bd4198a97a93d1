"""The deploy plan as data: what to publish and update, decided from what was built and
what AWS holds now. `make_plan` is pure; `builder.apply` executes a plan, and
`describe` renders one for --dry-run, the log and the step summary.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from builder import limits
from builder.aws import FunctionState, LayerVersion, layer_name_of
from builder.errors import LimitError, SpecError


@dataclass(frozen=True)
class Published:
    """A value produced by an earlier step: the ARN of the layer published for `component`."""

    component: str


@dataclass(frozen=True)
class Code:
    """A built zip and where it will be read from (a local file, or S3 when too large)."""

    component: str
    path: str
    code_sha256: str
    sha256_hex: str
    size: int
    unzipped_size: int
    bucket: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class BuiltLayer:
    code: Code
    layer_name: str
    description: str | None = None
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    license: str | None = None


# -- steps ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadArtifact:
    component: str
    path: str
    bucket: str
    key: str


@dataclass(frozen=True)
class PublishLayerVersion:
    layer: BuiltLayer


@dataclass(frozen=True)
class CreateFunction:
    function: str
    code: Code
    settings: tuple[tuple[str, Any], ...]
    architecture: str
    layers: tuple[str | Published, ...]


@dataclass(frozen=True)
class UpdateFunctionConfiguration:
    function: str
    settings: tuple[tuple[str, Any], ...]
    layers: tuple[str | Published, ...] | None  # None: leave the layer list as it is


@dataclass(frozen=True)
class UpdateFunctionCode:
    function: str
    code: Code
    architecture: str | None  # set only when it changes


@dataclass(frozen=True)
class PublishVersion:
    function: str
    code_sha256: str
    description: str


@dataclass(frozen=True)
class SetAlias:
    function: str
    alias: str
    version: str | None  # None: the version PublishVersion returns
    exists: bool


Step = (UploadArtifact | PublishLayerVersion | CreateFunction | UpdateFunctionConfiguration
        | UpdateFunctionCode | PublishVersion | SetAlias)


# -- inputs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Desired:
    function: str
    code: Code | None  # None when the function component was not built this time
    layers: tuple[BuiltLayer, ...]  # built layers, in attach order
    our_layer_names: frozenset[str]  # every layer name the build file defines
    settings: tuple[tuple[str, Any], ...] = ()  # Runtime, Handler, Role, MemorySize, ...
    architecture: str | None = None
    alias: str | None = None
    publish: bool = True
    commit: str | None = None
    bucket: str | None = None


@dataclass(frozen=True)
class State:
    function: FunctionState | None
    layer_versions: Mapping[str, LayerVersion] = field(default_factory=dict)  # by ARN
    latest_layers: Mapping[str, LayerVersion] = field(default_factory=dict)  # by layer name
    latest_version: Mapping[str, Any] | None = None
    alias_version: str | None = None
    s3_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    function: str
    steps: tuple[Step, ...]
    exists: bool
    layers: Mapping[str, str | Published]  # component -> ARN reused or Published
    code_changed: bool
    version: str | None  # the version when nothing is published
    alias: str | None

    @property
    def changes(self) -> bool:
        return bool(self.steps)


REQUIRED_TO_CREATE = ("Role", "Handler", "Runtime")
SPEC_KEYS = {"Role": "role", "Handler": "handler", "Runtime": "runtime", "MemorySize": "memory",
             "Timeout": "timeout", "Environment": "environment", "Description": "description"}


def artifact_key(sha256_hex: str) -> str:
    return f"lambda3/artifacts/{sha256_hex}.zip"


def make_plan(desired: Desired, state: State) -> Plan:
    steps: list[Step] = []
    refs = {layer.code.component: _layer_ref(layer, state, steps) for layer in desired.layers}
    steps[:0] = _uploads(desired, state, steps)
    final_layers = _final_layers(desired, state, refs)
    _check_limits(desired, final_layers)
    if state.function is None:
        steps += _create_steps(desired, final_layers)
        code_changed = True
    else:
        code_changed = _update_steps(desired, state, final_layers, steps)
    version = _version_and_alias(desired, state, steps)
    return Plan(desired.function, tuple(steps), state.function is not None, refs, code_changed,
                version, desired.alias)


def _layer_ref(layer: BuiltLayer, state: State, steps: list[Step]) -> str | Published:
    current = _current_layer_arn(state, layer.layer_name)
    candidates = [state.layer_versions.get(current)] if current else []
    candidates.append(state.latest_layers.get(layer.layer_name))
    for found in candidates:
        if found is not None and found.code_sha256 == layer.code.code_sha256:
            return found.arn
    steps.append(PublishLayerVersion(layer))
    return Published(layer.code.component)


def _current_layer_arn(state: State, name: str) -> str | None:
    if state.function is None:
        return None
    return next((arn for arn in state.function.layers if layer_name_of(arn) == name), None)


def _uploads(desired: Desired, state: State, steps: Sequence[Step]) -> list[Step]:
    """S3 uploads for the zips that are too large to send directly and not there yet."""
    codes = [s.layer.code for s in steps if isinstance(s, PublishLayerVersion)]
    if desired.code is not None and (state.function is None
                                     or state.function.code_sha256 != desired.code.code_sha256):
        codes.append(desired.code)
    uploads = []
    for code in codes:
        if code.bucket and code.key not in state.s3_keys:
            uploads.append(UploadArtifact(code.component, code.path, code.bucket, code.key))
    return uploads


def _final_layers(desired: Desired, state: State,
                  refs: Mapping[str, str | Published]) -> tuple[str | Published, ...]:
    """Ours replaced in place, foreign layers kept, new ones of ours appended in order."""
    by_name = {layer.layer_name: refs[layer.code.component] for layer in desired.layers}
    result: list[str | Published] = []
    placed = set()
    for arn in (state.function.layers if state.function else ()):
        name = layer_name_of(arn)
        if name in by_name:
            result.append(by_name[name])
            placed.add(name)
        else:
            result.append(arn)
    result += [ref for name, ref in by_name.items() if name not in placed]
    return tuple(result)


def _check_limits(desired: Desired, final_layers: Sequence[str | Published]) -> None:
    if len(final_layers) > limits.MAX_LAYERS:
        shown = [r if isinstance(r, str) else f"(new) {r.component}" for r in final_layers]
        raise LimitError(
            f"{desired.function} would have {len(final_layers)} layers ({', '.join(shown)}); "
            f"Lambda allows at most {limits.MAX_LAYERS}: remove a layer from the function or "
            f"merge layers in the build file"
        )
    sized = [limits.Sized(layer.code.component, layer.code.size, layer.code.unzipped_size)
             for layer in desired.layers]
    code = desired.code
    function = limits.Sized("function", code.size, code.unzipped_size) if code else None
    problems = limits.check_total(function, sized)
    if problems:
        raise LimitError("; ".join(problems))


def _create_steps(desired: Desired, layers: tuple[str | Published, ...]) -> list[Step]:
    settings = dict(desired.settings)
    missing = [SPEC_KEYS[key] for key in REQUIRED_TO_CREATE if not settings.get(key)]
    if desired.code is None:
        missing.insert(0, "the function component (it was left out of this build)")
    if missing:
        raise SpecError(
            f"function {desired.function!r} does not exist; to create it the build file needs "
            f"function.{', function.'.join(missing)}",
            key="function",
        )
    return [CreateFunction(desired.function, desired.code, desired.settings,
                           desired.architecture or "x86_64", layers)]


def _update_steps(desired: Desired, state: State, layers: tuple[str | Published, ...],
                  steps: list[Step]) -> bool:
    current = state.function
    changed_settings = tuple((k, v) for k, v in desired.settings
                             if _current_setting(current.config, k) != v)
    new_layers = layers if layers != current.layers else None
    if changed_settings or new_layers is not None:
        steps.append(UpdateFunctionConfiguration(desired.function, changed_settings, new_layers))
    arch = desired.architecture
    arch_change = arch if arch and arch not in current.config.get("Architectures",
                                                                     ["x86_64"]) else None
    code = desired.code
    if code is not None and (code.code_sha256 != current.code_sha256 or arch_change):
        steps.append(UpdateFunctionCode(desired.function, code, arch_change))
        return True
    return False


def _current_setting(config: Mapping[str, Any], key: str) -> Any:
    if key == "Environment":
        return config.get("Environment", {}).get("Variables", {})
    return config.get(key)


def _version_and_alias(desired: Desired, state: State, steps: list[Step]) -> str | None:
    if not desired.publish:
        return None
    latest = state.latest_version
    unchanged = (state.function is not None and not steps and latest is not None
                 and latest.get("CodeSha256") == state.function.code_sha256
                 and tuple(x["Arn"] for x in latest.get("Layers", [])) == state.function.layers)
    version = latest["Version"] if unchanged else None
    if version is None:
        sha = desired.code.code_sha256 if desired.code else state.function.code_sha256
        description = f"lambda3 {desired.commit[:12]}" if desired.commit else "lambda3"
        steps.append(PublishVersion(desired.function, sha, description))
    if desired.alias and (version is None or state.alias_version != version):
        steps.append(SetAlias(desired.function, desired.alias, version,
                              exists=state.alias_version is not None))
    return version


# -- rendering -----------------------------------------------------------------------------
def step_to_json(step: Step) -> dict[str, Any]:
    data = asdict(step)
    return {"action": type(step).__name__, **_jsonable(data)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"component"}:
            return {"published": value["component"]}
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def describe_step(step: Step) -> str:
    if isinstance(step, UploadArtifact):
        return f"upload {step.component} to s3://{step.bucket}/{step.key}"
    if isinstance(step, PublishLayerVersion):
        code = step.layer.code
        return (f"publish layer {step.layer.layer_name} ({code.component}, "
                f"{limits.human(code.size)}, sha256 {code.code_sha256[:12]})")
    if isinstance(step, CreateFunction):
        return f"create function {step.function} with {len(step.layers)} layer(s)"
    if isinstance(step, UpdateFunctionConfiguration):
        parts = [k for k, _ in step.settings] + (["Layers"] if step.layers is not None else [])
        return f"update configuration of {step.function}: {', '.join(parts)}"
    if isinstance(step, UpdateFunctionCode):
        return f"update code of {step.function} (sha256 {step.code.code_sha256[:12]})"
    if isinstance(step, PublishVersion):
        return f"publish a version of {step.function}"
    if isinstance(step, SetAlias):
        target = step.version or "the new version"
        return f"{'move' if step.exists else 'create'} alias {step.alias} -> {target}"
    raise TypeError(f"not a plan step: {step!r}")


def describe(plan: Plan) -> list[str]:
    if not plan.steps:
        return [f"{plan.function}: nothing to do, everything is up to date"]
    return [describe_step(step) for step in plan.steps]
