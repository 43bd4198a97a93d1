"""The deploy plan as data: what to publish and update, decided from what was built and
what AWS holds now. `make_plan` is pure; `builder.apply` executes a plan, and
`describe` renders one for --dry-run, the log and the step summary.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from builder import limits
from builder.aws import AliasState, FunctionState, LayerVersion, layer_name_of
from builder.errors import Lambda3Error, LimitError, RequestError, SpecError


class OlderBuildError(Lambda3Error):
    """The alias points at a newer build than this one."""

    step = "plan"


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

    def describe(self) -> str:
        return f"upload {self.component} to s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PublishLayerVersion:
    layer: BuiltLayer

    def describe(self) -> str:
        code = self.layer.code
        return (f"publish layer {self.layer.layer_name} ({code.component}, "
                f"{limits.human(code.size)}, sha256 {code.code_sha256[:12]})")


@dataclass(frozen=True)
class CreateFunction:
    function: str
    code: Code
    settings: tuple[tuple[str, Any], ...]
    architecture: str
    layers: tuple[str | Published, ...]

    def describe(self) -> str:
        return f"create function {self.function} with {len(self.layers)} layer(s)"


# A step's revision_id is the RevisionId read at plan time: the call fails if the function
# (or alias) changed since. Once one of our own calls has changed the function, the executor
# carries that call's revision forward instead.
@dataclass(frozen=True)
class UpdateFunctionConfiguration:
    function: str
    settings: tuple[tuple[str, Any], ...]
    layers: tuple[str | Published, ...] | None  # None: leave the layer list as it is
    revision_id: str | None = None
    # what each changed setting is now, as `describe` shows it (environment: names only)
    previous: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def describe(self) -> str:
        was = dict(self.previous)
        parts = [change_text(k, was[k], v) if k in was else k for k, v in self.settings]
        parts += ["Layers"] if self.layers is not None else []
        return f"update configuration of {self.function}: {', '.join(parts)}"


def change_text(key: str, old: Any, new: Any) -> str:
    """`MemorySize 128 -> 256`; environment variables by name only (values may be secret)."""
    if key == "Environment":
        old, new = dict(old or {}), dict(new or {})
        changed = sorted(k for k in new if k in old and old[k] != new[k])
        parts = [f"{label} {', '.join(names)}" for label, names in (
            ("add", sorted(set(new) - set(old))), ("change", changed),
            ("remove", sorted(set(old) - set(new)))) if names]
        return f"Environment ({'; '.join(parts)})"
    return f"{key} {_shown(old)} -> {_shown(new)}"


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return "none" if value is None else str(value)


@dataclass(frozen=True)
class UpdateFunctionCode:
    function: str
    code: Code
    architecture: str | None  # set only when it changes
    revision_id: str | None = None

    def describe(self) -> str:
        return f"update code of {self.function} (sha256 {self.code.code_sha256[:12]})"


@dataclass(frozen=True)
class PublishVersion:
    function: str
    code_sha256: str
    description: str
    revision_id: str | None = None
    wait_active: bool = False  # SnapStart: a new version is Pending until its snapshot is ready

    def describe(self) -> str:
        return f"publish a version of {self.function}"


@dataclass(frozen=True)
class SetAlias:
    function: str
    alias: str
    version: str | None  # None: the version PublishVersion returns
    exists: bool
    revision_id: str | None = None  # the alias's
    weights: tuple[tuple[str, float], ...] = ()  # other versions' traffic; none: clear routing

    def describe(self) -> str:
        target = self.version or "the new version"
        return f"{'move' if self.exists else 'create'} alias {self.alias} -> {target}"


@dataclass(frozen=True)
class TagFunction:
    """TagResource of the tags to set, UntagResource of those to remove: only keys the build
    file names. Tags are not part of a version."""

    function: str
    set: tuple[tuple[str, str], ...]
    remove: tuple[str, ...]
    arn: str | None  # None: the function this plan creates

    def describe(self) -> str:
        parts = ([f"set {', '.join(k for k, _ in self.set)}"] if self.set else []) + (
            [f"remove {', '.join(self.remove)}"] if self.remove else [])
        return f"tag {self.function}: {'; '.join(parts)}"


@dataclass(frozen=True)
class SetReservedConcurrency:
    """PutFunctionConcurrency; not part of a version."""

    function: str
    reserved: int
    current: int | None  # None: none reserved

    def describe(self) -> str:
        was = "none" if self.current is None else str(self.current)
        return f"set reserved concurrency of {self.function} to {self.reserved} (was {was})"


@dataclass(frozen=True)
class SetRecursion:
    """PutFunctionRecursionConfig (recursive loop detection); not part of a version."""

    function: str
    loop: str  # Allow | Terminate
    current: str

    def describe(self) -> str:
        return (f"set recursive loop handling of {self.function} to {self.loop} "
                f"(was {self.current})")


@dataclass(frozen=True)
class SetProvisionedConcurrency:
    """Put (or, for 0, Delete) the alias's provisioned concurrency, then wait until it is
    READY; `put` False: only wait, for the version the alias has just moved to."""

    function: str
    alias: str
    wanted: int
    current: int | None  # None: none configured
    put: bool = True

    def describe(self) -> str:
        where = f"{self.function}:{self.alias}"
        if not self.put:
            return f"wait until provisioned concurrency of {where} is READY on its new version"
        was = "none" if self.current is None else str(self.current)
        if self.wanted == 0:
            return f"remove provisioned concurrency of {where} (was {was})"
        return (f"set provisioned concurrency of {where} to {self.wanted} (was {was}) and wait "
                f"until it is READY")


URL_STATEMENTS = ("lambda3-url-public", "lambda3-url-public-invoke")  # our policy statements


@dataclass(frozen=True)
class SetFunctionUrl:
    """Create, update or delete the function URL of `qualifier` (an alias; None: the
    function), and add or remove our statements that make an auth-NONE URL public."""

    function: str
    qualifier: str | None
    config: tuple[tuple[str, Any], ...]  # AuthType, InvokeMode, Cors to send
    exists: bool
    remove: bool = False
    add_statements: tuple[str, ...] = ()
    remove_statements: tuple[str, ...] = ()
    previous: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    def describe(self) -> str:
        where = f"{self.function}:{self.qualifier}" if self.qualifier else self.function
        public = ("; public: anyone may invoke it" if self.add_statements else
                  "; no longer public" if self.remove_statements else "")
        if self.remove:
            return f"delete the function URL of {where}{public}"
        if not self.exists:
            shown = ", ".join(f"{k} {_shown(v)}" for k, v in self.config) or "AuthType AWS_IAM"
            return f"create a function URL for {where} ({shown}){public}"
        was = dict(self.previous)
        changes = ", ".join(change_text(k, was.get(k), v) for k, v in self.config)
        return f"update the function URL of {where}: {changes or 'permissions'}{public}"


Step = (UploadArtifact | PublishLayerVersion | CreateFunction | UpdateFunctionConfiguration
        | UpdateFunctionCode | PublishVersion | SetAlias | TagFunction
        | SetReservedConcurrency | SetRecursion | SetProvisionedConcurrency | SetFunctionUrl)


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
    committed_at: int | None = None  # unix seconds of the commit
    allow_older: bool = False  # move the alias even to an older build than it points at
    tags: tuple[tuple[str, str | None], ...] | None = None  # None value: remove; None: as is
    reserved_concurrency: int | None = None  # None: as is
    recursion: str | None = None  # Allow | Terminate; None: as is
    provisioned_concurrency: int | None = None  # on the alias; 0: none; None: as is
    function_url: Any = None  # builder.spec.FunctionUrlSpec; None: as is
    outside_layers: tuple[str, ...] | None = None  # layer ARNs not built here; None: as is
    move_alias: bool = True  # False: a rollout moves the alias after the apply


@dataclass(frozen=True)
class Stamp:
    """The build a published version came from, as its Description records it."""

    commit: str
    committed_at: int | None


@dataclass(frozen=True)
class State:
    function: FunctionState | None
    layer_versions: Mapping[str, LayerVersion] = field(default_factory=dict)  # by ARN
    latest_layers: Mapping[str, LayerVersion] = field(default_factory=dict)  # by layer name
    latest_version: Mapping[str, Any] | None = None  # its configuration
    alias: AliasState | None = None
    s3_keys: frozenset[str] = frozenset()
    alias_build: Stamp | None = None  # the build of the version the alias points at
    tags: Mapping[str, str] = field(default_factory=dict)  # the function's (ListTags)
    reserved_concurrency: int | None = None  # GetFunctionConcurrency; None: none reserved
    recursion: str = "Terminate"  # GetFunctionRecursionConfig
    provisioned: int | None = None  # the alias's requested provisioned concurrency
    url: Mapping[str, Any] | None = None  # GetFunctionUrlConfig of the alias (or function)
    url_statements: frozenset[str] = frozenset()  # URL_STATEMENTS in its resource policy

    @property
    def alias_version(self) -> str | None:
        return self.alias.version if self.alias else None


@dataclass(frozen=True)
class Plan:
    function: str
    steps: tuple[Step, ...]
    exists: bool
    layers: Mapping[str, str | Published]  # component -> ARN reused or Published
    code_changed: bool
    version: str | None  # the version when nothing is published
    alias: str | None
    desired: Desired | None = field(default=None, compare=False, repr=False)  # to re-plan
    after: tuple[str, ...] = ()  # what follows the steps (a rollout's start), for describe
    function_url: str | None = None  # the URL as it is now (None: none, or it is deleted)


REQUIRED_TO_CREATE = ("Role", "Handler", "Runtime")
SPEC_KEYS = {"Role": "role", "Handler": "handler", "Runtime": "runtime", "MemorySize": "memory",
             "Timeout": "timeout", "Environment": "environment", "Description": "description",
             "EphemeralStorage": "ephemeral_storage", "TracingConfig": "tracing",
             "LoggingConfig": "logging", "KMSKeyArn": "kms_key",
             "DeadLetterConfig": "dead_letter", "VpcConfig": "vpc", "SnapStart": "snap_start"}


_STAMP = re.compile(r"^lambda3 ([0-9a-f]{7,40})(?: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ))?")


def artifact_key(sha256_hex: str) -> str:
    return f"lambda3/artifacts/{sha256_hex}.zip"


def version_description(commit: str | None, committed_at: int | None,
                        description: str | None = None) -> str:
    """`lambda3 <sha> <commit time>`, then `: <the build file's description>` if it has one;
    Lambda keeps 256 characters."""
    text = "lambda3" + (f" {commit[:12]}" if commit else "")
    if commit and committed_at is not None:
        text += " " + _iso(committed_at)
    return (f"{text}: {description}" if description else text)[:256]


def parse_stamp(description: str | None) -> Stamp | None:
    found = _STAMP.match(description or "")
    if not found:
        return None
    when = found.group(2)
    at = (int(datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
              .timestamp()) if when else None)
    return Stamp(found.group(1), at)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_plan(desired: Desired, state: State) -> Plan:
    _check_not_older(desired, state)
    steps: list[Step] = []
    refs = {layer.code.component: _layer_ref(layer, state, steps) for layer in desired.layers}
    steps[:0] = _uploads(desired, state, steps)
    final_layers = _final_layers(desired, state, refs)
    _check_limits(desired, state, final_layers)
    if state.function is None:
        steps += _create_steps(desired, final_layers)
        code_changed = True
    else:
        code_changed = _update_steps(desired, state, final_layers, steps)
    version = _version_and_alias(desired, state, steps)
    alias_moves = any(isinstance(step, SetAlias) for step in steps)
    _check_alias_settings(desired, state, alias_moves)
    steps += _unversioned_steps(desired, state, alias_moves)
    url = state.url if state.function is not None else None
    removed = desired.function_url is not None and desired.function_url.remove
    return Plan(desired.function, tuple(steps), state.function is not None, refs, code_changed,
                version, desired.alias, desired,
                function_url=url.get("FunctionUrl") if url and not removed else None)


def _check_alias_settings(desired: Desired, state: State, alias_moves: bool) -> None:
    """Provisioned concurrency lives on an alias: this deploy must name one that exists or
    that it creates."""
    if not desired.provisioned_concurrency:
        return
    if desired.alias and (state.alias is not None or alias_moves):
        return
    why = ("names no alias" if not desired.alias else
           f"does not create alias {desired.alias} (nothing is published)")
    raise RequestError(
        f"provisioned_concurrency of {desired.function} is set on the alias the deploy moves, "
        f"and this deploy {why}",
        hint="deploy with an alias (lambda3 deploy -a ALIAS, the action's alias input)")


def _check_not_older(desired: Desired, state: State) -> None:
    """The alias never moves to a build whose commit is older than the one it points at."""
    built, alias = state.alias_build, state.alias
    if desired.allow_older or not (desired.alias and desired.publish and alias and built):
        return
    if built.committed_at is None or desired.committed_at is None:
        return  # no commit time on one side: nothing to compare
    if desired.committed_at >= built.committed_at or (desired.commit or "").startswith(
            built.commit):
        return
    raise OlderBuildError(
        f"alias {desired.alias} of {desired.function} points at version {alias.version}, built "
        f"from {built.commit[:12]} committed {_iso(built.committed_at)}; this build of "
        f"{(desired.commit or '?')[:12]} committed {_iso(desired.committed_at)} is older: the "
        f"alias is not moved backwards; pass --allow-older (request field allow_older) to "
        f"deploy it anyway"
    )


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
    """Ours replaced in place, new ones of ours appended in order; the layers from outside:
    kept as they are when the build file names none, else exactly those it names (a
    version of the same layer replaced in place, the others appended)."""
    by_name = {layer.layer_name: refs[layer.code.component] for layer in desired.layers}
    outside = {unversioned(arn): arn for arn in desired.outside_layers or ()}
    result: list[str | Published] = []
    placed = set()
    for arn in (state.function.layers if state.function else ()):
        name = layer_name_of(arn)
        if name in by_name:
            result.append(by_name[name])
            placed.add(name)
        elif desired.outside_layers is None:
            result.append(arn)
        elif unversioned(arn) in outside:  # the version the build file names, in place
            result.append(outside[unversioned(arn)])
            placed.add(unversioned(arn))
    result += [ref for name, ref in by_name.items() if name not in placed]
    result += [arn for key, arn in outside.items() if key not in placed]
    return tuple(result)


def unversioned(layer_version_arn: str) -> str:
    """arn:...:layer:NAME:3 -> arn:...:layer:NAME"""
    return layer_version_arn.rsplit(":", 1)[0]


def _check_limits(desired: Desired, state: State,
                  final_layers: Sequence[str | Published]) -> None:
    if len(final_layers) > limits.MAX_LAYERS:
        shown = [r if isinstance(r, str) else f"(new) {r.component}" for r in final_layers]
        raise LimitError(
            f"{desired.function} would have {len(final_layers)} layers ({', '.join(shown)}); "
            f"Lambda allows at most {limits.MAX_LAYERS}: remove a layer from the function or "
            f"merge layers in the build file"
        )
    sized = [limits.Sized(layer.code.component, layer.code.size, layer.code.unzipped_size)
             for layer in desired.layers]
    sized += _kept_layers(desired, state, final_layers)
    code = desired.code
    function = limits.Sized("function", code.size, code.unzipped_size) if code else None
    if function is None and state.function is not None:
        kept = state.function.config.get("CodeSize", 0)
        function = limits.Sized("function (as deployed, zipped size)", kept, kept)
    problems = limits.check_total(function, sized)
    if problems:
        raise LimitError("; ".join(problems))


def _kept_layers(desired: Desired, state: State,
                 final_layers: Sequence[str | Published]) -> list[limits.Sized]:
    """The layers the function keeps that were not built now (foreign ones, ours left out of
    this build), at their zipped size: GetLayerVersion tells no unzipped size, so this is the
    least they take."""
    built = {layer.layer_name for layer in desired.layers}
    kept = []
    for ref in final_layers:
        found = state.layer_versions.get(ref) if isinstance(ref, str) else None
        if found is not None and found.name not in built:
            kept.append(limits.Sized(f"{found.name}:{found.version} (zipped size)",
                                     found.size, found.size))
    return kept


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
                             if _current_setting(current.config, k, v) != v)
    previous = tuple((k, _current_setting(current.config, k, v)) for k, v in changed_settings)
    new_layers = layers if layers != current.layers else None
    revision = current.revision_id
    if changed_settings or new_layers is not None:
        steps.append(UpdateFunctionConfiguration(desired.function, changed_settings, new_layers,
                                                 revision, previous))
    arch = desired.architecture
    arch_change = arch if arch and arch not in current.config.get("Architectures",
                                                                     ["x86_64"]) else None
    code = desired.code
    if code is not None and (code.code_sha256 != current.code_sha256 or arch_change):
        steps.append(UpdateFunctionCode(desired.function, code, arch_change, revision))
        return True
    return False


def _unversioned_steps(desired: Desired, state: State, alias_moves: bool) -> list[Step]:
    """Tags, reserved concurrency, recursion, and the alias's provisioned concurrency and
    function URL: not part of a version, so they come after the version and the alias and
    never decide whether a version is published."""
    steps: list[Step] = _tags_and_concurrency(desired, state)
    exists = state.function is not None
    loop = state.recursion if exists else "Terminate"
    if desired.recursion is not None and desired.recursion != loop:
        steps.append(SetRecursion(desired.function, desired.recursion, loop))
    steps += _provisioned_steps(desired, state, alias_moves)
    url = _url_step(desired, state)
    return steps + ([url] if url else [])


def _tags_and_concurrency(desired: Desired, state: State) -> list[Step]:
    steps: list[Step] = []
    current = state.tags if state.function is not None else {}
    if desired.tags is not None:
        to_set = tuple((k, v) for k, v in desired.tags if v is not None and current.get(k) != v)
        to_remove = tuple(k for k, v in desired.tags if v is None and k in current)
        if to_set or to_remove:
            steps.append(TagFunction(desired.function, to_set, to_remove,
                                     state.function.arn if state.function else None))
    reserved = desired.reserved_concurrency
    have = state.reserved_concurrency if state.function is not None else None
    if reserved is not None and reserved != have:
        steps.append(SetReservedConcurrency(desired.function, reserved, have))
    return steps


def _provisioned_steps(desired: Desired, state: State, alias_moves: bool) -> list[Step]:
    wanted = desired.provisioned_concurrency
    if wanted is None or not desired.alias:
        return []
    have = state.provisioned if state.function is not None else None
    if wanted != (have or 0):
        return [SetProvisionedConcurrency(desired.function, desired.alias, wanted, have)]
    if wanted and alias_moves:  # Lambda allocates it anew for the version the alias is on
        return [SetProvisionedConcurrency(desired.function, desired.alias, wanted, have,
                                          put=False)]
    return []


def _url_step(desired: Desired, state: State) -> SetFunctionUrl | None:
    spec = desired.function_url
    if spec is None:
        return None
    current = state.url if state.function is not None else None
    ours = tuple(sorted(state.url_statements)) if state.function is not None else ()
    where = (desired.function, desired.alias)
    if spec.remove:
        if current is None and not ours:
            return None
        return SetFunctionUrl(*where, (), exists=current is not None, remove=True,
                              remove_statements=ours)
    wanted = {key: value for key, value in (
        ("AuthType", spec.auth), ("InvokeMode", spec.invoke_mode),
        ("Cors", None if spec.cors is None else _cors(spec.cors))) if value is not None}
    if current is None:
        config, previous = tuple(wanted.items()), ()
        auth = wanted.get("AuthType", "AWS_IAM")
    else:
        config = tuple((k, v) for k, v in wanted.items() if _url_value(current, k) != v)
        previous = tuple((k, _url_value(current, k)) for k, _ in config)
        auth = wanted.get("AuthType") or current.get("AuthType")
    add = tuple(sid for sid in URL_STATEMENTS if sid not in ours) if auth == "NONE" else ()
    remove = ours if auth != "NONE" else ()
    if current is not None and not (config or add or remove):
        return None
    return SetFunctionUrl(*where, config, exists=current is not None, add_statements=add,
                          remove_statements=remove, previous=previous)


def _cors(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in pairs}


def _url_value(config: Mapping[str, Any], key: str) -> Any:
    if key == "Cors":
        return _cors(tuple((config.get("Cors") or {}).items()))
    if key == "InvokeMode":
        return config.get("InvokeMode") or "BUFFERED"
    return config.get(key)


def _current_setting(config: Mapping[str, Any], key: str, wanted: Any = None) -> Any:
    """A function's (or version's) `key` in the form of the desired settings; for a mapping
    of sub-keys (LoggingConfig), only the sub-keys `wanted` names."""
    if key == "Environment":
        return (config.get("Environment") or {}).get("Variables", {})
    if key == "SnapStart":
        return (config.get("SnapStart") or {}).get("ApplyOn", "None")
    if key == "EphemeralStorage":
        return (config.get("EphemeralStorage") or {}).get("Size", 512)
    if key == "TracingConfig":
        return (config.get("TracingConfig") or {}).get("Mode", "PassThrough")
    if key == "DeadLetterConfig":
        return (config.get("DeadLetterConfig") or {}).get("TargetArn")
    if key == "KMSKeyArn":
        return config.get("KMSKeyArn") or None
    if key == "VpcConfig":
        vpc = config.get("VpcConfig") or {}
        return {"SubnetIds": sorted(vpc.get("SubnetIds") or []),
                "SecurityGroupIds": sorted(vpc.get("SecurityGroupIds") or [])}
    if key == "LoggingConfig":
        found = config.get("LoggingConfig") or {}
        return {sub: found.get(sub) for sub in wanted or found}
    return config.get(key)


_CHANGES_FUNCTION = (CreateFunction, UpdateFunctionConfiguration, UpdateFunctionCode)


def _version_and_alias(desired: Desired, state: State, steps: list[Step]) -> str | None:
    if not desired.publish:
        return None
    changes = any(isinstance(step, _CHANGES_FUNCTION) for step in steps)
    latest = state.latest_version
    published = (not changes and latest is not None
                 and _is_published(desired, state.function, latest))
    version = latest["Version"] if published else None
    if version is None:
        steps.append(_publish_step(desired, state))
    alias = state.alias
    if desired.alias and desired.move_alias and (version is None or alias is None
                                                 or alias.version != version):
        steps.append(SetAlias(desired.function, desired.alias, version, exists=alias is not None,
                              revision_id=alias.revision_id if alias else None))
    return version


def _is_published(desired: Desired, function: FunctionState, latest: Mapping[str, Any]) -> bool:
    """Whether the latest published version already is $LATEST as the build file wants it:
    the same code, layers and every setting the build file manages (its Description is the
    version's own, see `version_description`)."""
    same_code = latest.get("CodeSha256") == function.code_sha256
    same_layers = tuple(x["Arn"] for x in latest.get("Layers") or []) == function.layers
    arch = desired.architecture
    same_arch = not arch or arch in (latest.get("Architectures") or ["x86_64"])
    same_settings = all(_current_setting(latest, key, value) == value
                        for key, value in desired.settings if key != "Description")
    return same_code and same_layers and same_arch and same_settings


def _publish_step(desired: Desired, state: State) -> PublishVersion:
    function = state.function
    sha = desired.code.code_sha256 if desired.code else function.code_sha256
    settings = dict(desired.settings)
    snap_start = settings.get("SnapStart") or (
        _current_setting(function.config, "SnapStart") if function else "None")
    description = version_description(desired.commit, desired.committed_at,
                                      settings.get("Description"))
    return PublishVersion(desired.function, sha, description,
                          function.revision_id if function else None,
                          wait_active=snap_start == "PublishedVersions")


# -- rendering -----------------------------------------------------------------------------
def step_to_json(step: Step) -> dict[str, Any]:
    data = asdict(step)
    data.pop("previous", None)  # shown in the step's text; environment values stay out
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
    return step.describe()


def describe(plan: Plan) -> list[str]:
    if not plan.steps and not plan.after:
        return [f"{plan.function}: nothing to do, everything is up to date"]
    return [describe_step(step) for step in plan.steps] + list(plan.after)
