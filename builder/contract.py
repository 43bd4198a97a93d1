"""The builder's API: one typed, versioned request and result.

Every client (the action, the CLI, bootstrap, benchmarks, the demo) builds a `BuildRequest`
and calls `to_event()`; the builder reads it with `BuildRequest.from_event()`. The builder
answers with `BuildResult.to_json()`; clients read it with `BuildResult.from_json()`.
No client builds an event dict or reads a result key by string.

Version rule
------------
`CONTRACT` is the version this code speaks; `MIN_CONTRACT` the oldest it still speaks.
A change that only adds optional fields keeps the version (readers ignore fields they do
not know, and a missing field takes its default); anything else bumps it, and so does a
request field an older builder must not ignore (`SINCE` names each one and its version). A
request carries the lowest version that holds what it asks (`needed_contract`): a request
that uses no newer field still reaches an older builder, one that does is refused by it. A
request without `contract` is version 1 (clients from before the contract was versioned,
whose fields version 2 kept). The builder refuses, before
anything is fetched or built, a request newer than it speaks (update the builder:
`lambda3 bootstrap`) or older than it still speaks (update the client, or pin the action
to a matching release), with one line naming both versions. An answer is in the version of
the request it answers (`contract`), so a client pinned long ago reads a newer builder's
answers, and carries the builder's own versions (`builder`: contract, lambda3, toolchain);
a client refuses an answer in a version it does not speak.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from builder.errors import Lambda3Error, RequestError

CONTRACT = 3
MIN_CONTRACT = 1
BASE_CONTRACT = 2  # the version that holds every request field not in SINCE
# Request fields an older builder would ignore, wrongly: the version that knows each.
SINCE = {"preview": 3}
MAX_PREVIEW = 10 ** 9  # a pull request number
LAMBDA3_VERSION = "0.3.0"  # pyproject.toml has the same (tests/unit/test_contract.py)

ACTIONS = ("build", "plan", "ping", "bootstrap")
# Longest accepted value of each text field: a request is small, and a huge one must be
# refused at once rather than scanned, redacted or echoed.
MAX_LENGTH = {"repository": 2048, "ref": 1024, "function": 64, "build_file": 1024,
              "alias": 128, "bucket": 63, "log_marker": 64, "token": 8192,
              "component": 128, "rollout": 64}
MAX_COMPONENTS = 64
MAX_FUNCTIONS = 64  # function keys one request may name
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ALIAS = re.compile(r"(?![0-9]+\Z)[A-Za-z0-9_-]{1,128}")
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class ContractError(Lambda3Error):
    """The client and the builder speak contract versions the other does not."""

    step = "contract"
    keeps_step = True


def check_contract(client: int, *, builder: int = CONTRACT,
                   builder_min: int = MIN_CONTRACT) -> None:
    """The builder's side of the version rule."""
    if client > builder:
        raise ContractError(
            f"this builder speaks contract version {builder} and the client speaks "
            f"{client}: the builder is older than the client",
            hint="run `lambda3 bootstrap` to update the builder, or pin the action to a "
                 f"release that speaks contract {builder}")
    if client < builder_min:
        raise ContractError(
            f"this builder speaks contract versions {builder_min}-{builder} and the client "
            f"speaks {client}: the client is older than the builder supports",
            hint="update lambda3 (pip install -U lambda3) or pin the action to a newer "
                 "release")


# -- the request ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildRequest:
    action: str = "build"
    repository: str | None = None
    ref: str | None = None
    function: str | None = None
    build_file: str | None = None
    components: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()  # keys of the build file's `functions:`; empty: all
    alias: str | None = None
    publish: bool = True
    refresh: bool = False
    allow_older: bool = False
    bucket: str | None = None
    rollout: str | None = None  # a strategy (builder.rollout); none: the build file's
    log_marker: str | None = None
    token: str | None = field(default=None, repr=False)
    # private index credentials, (host, "user:password"): builder.indexes, secret
    index_credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # a pull request's preview: every function deployed as `<name>-pr-<N>`, tagged with it
    preview: int | None = None
    contract: int | None = None  # as read from an event; None: the needed version, sent

    @property
    def deploys(self) -> bool:
        return self.action == "build"

    def needed_contract(self) -> int:
        """The lowest contract version that holds this request."""
        return max([BASE_CONTRACT] + [version for name, version in SINCE.items()
                                      if getattr(self, name) is not None])

    def with_marker(self, marker: str) -> BuildRequest:
        return replace(self, log_marker=marker)

    def to_event(self) -> dict[str, Any]:
        """Every field, by its contract name (None where unset)."""
        event = {f.name: getattr(self, f.name) for f in fields(self)}
        event["components"] = list(self.components)
        event["functions"] = list(self.functions)
        event["index_credentials"] = dict(self.index_credentials) or None
        event["contract"] = self.contract or self.needed_contract()
        return event

    @classmethod
    def from_event(cls, event: Any, *,
                   speaks: tuple[int, int] = (MIN_CONTRACT, CONTRACT)) -> BuildRequest:
        """The event, checked: types, lengths, names, and the contract version against the
        range (oldest, newest) the reader speaks."""
        if not isinstance(event, Mapping):
            raise RequestError("the event must be a JSON object")
        version = _version(event.get("contract", 1))
        check_contract(version, builder=speaks[1], builder_min=speaks[0])
        action = event.get("action", "build")
        if action not in ACTIONS:
            raise RequestError(f"unknown action {_shown(action)}; allowed: {', '.join(ACTIONS)}")
        lenient = version == 1  # version 1 clients sent components and flags as text too
        request = cls(
            action=action, contract=version,
            repository=_text(event, "repository"), ref=_text(event, "ref"),
            function=_text(event, "function"), build_file=_text(event, "build_file"),
            components=_components(event.get("components"), lenient),
            functions=_function_keys(event.get("functions")),
            index_credentials=_index_credentials(event.get("index_credentials")),
            alias=_text(event, "alias"),
            publish=_flag(event, "publish", True, lenient),
            refresh=_flag(event, "refresh", False, lenient),
            allow_older=_flag(event, "allow_older", False, lenient),
            bucket=_text(event, "bucket"), log_marker=_text(event, "log_marker"),
            token=_text(event, "token"), rollout=_text(event, "rollout"),
            preview=_preview(event.get("preview"), version),
        )
        if action in ("build", "plan"):
            _check_deploy_fields(request)
        return request


def _preview(value: Any, version: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_PREVIEW:
        raise RequestError(f"'preview' must be a pull request number, got {_shown(value)}")
    if version < SINCE["preview"]:
        raise RequestError(f"'preview' needs contract version {SINCE['preview']}; the request "
                           f"says {version}")
    return value


def _index_credentials(value: Any) -> tuple[tuple[str, str], ...]:
    from builder.indexes import parse_credentials

    return tuple((host, f"{user}:{password}") for host, user, password
                 in parse_credentials(value))


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(f"'contract' must be a positive whole number, got {_shown(value)}")
    return value


def _check_deploy_fields(request: BuildRequest) -> None:
    if not request.repository:
        raise RequestError("'repository' is required (an https git URL)")
    if not request.function or not _FUNCTION_NAME.fullmatch(request.function):
        raise RequestError(
            "'function' must be a Lambda function name (letters, digits, - and _; at most "
            f"64), got {_shown(request.function)}")
    if request.alias and not _ALIAS.fullmatch(request.alias):
        raise RequestError(f"'alias' {_shown(request.alias)} is not a valid alias name "
                           "(letters, digits, - and _, not only digits; at most 128)")
    if request.alias and not request.publish:
        raise RequestError("an alias needs a published version: drop 'alias' or set 'publish'")


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


def _text(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RequestError(f"'{key}' must be a string, got {type(value).__name__}")
    if len(value) > MAX_LENGTH[key]:
        raise RequestError(f"'{key}' is {len(value)} characters long; at most "
                           f"{MAX_LENGTH[key]} are allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise RequestError(f"'{key}' contains a control character (a newline?)")
    return value


def _flag(event: Mapping[str, Any], key: str, default: bool, lenient: bool) -> bool:
    value = event.get(key, default)
    if lenient and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise RequestError(f"'{key}' must be true or false, got {_shown(value)}")
    return value


def _components(value: Any, lenient: bool) -> tuple[str, ...]:
    if value is None or value == "" or value == []:
        return ()
    if lenient and isinstance(value, str):
        value = re.split(r"[\s,]+", value.strip())
    if (not isinstance(value, Sequence) or isinstance(value, str)
            or not all(isinstance(v, str) for v in value)):
        raise RequestError("'components' must be a list of component names")
    if len(value) > MAX_COMPONENTS:
        raise RequestError(f"'components' names {len(value)} components; at most "
                           f"{MAX_COMPONENTS} are allowed")
    names = tuple(v for v in value if v)
    for name in names:
        if not _COMPONENT.fullmatch(name):
            raise RequestError(f"'components' has {_shown(name)}: component names are "
                               "letters, digits, '.', '-' and '_'")
    return names


def _function_keys(value: Any) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    if (not isinstance(value, Sequence) or isinstance(value, str)
            or not all(isinstance(v, str) for v in value)):
        raise RequestError("'functions' must be a list of the build file's function keys")
    if len(value) > MAX_FUNCTIONS:
        raise RequestError(f"'functions' names {len(value)} functions; at most "
                           f"{MAX_FUNCTIONS} are allowed")
    for key in value:
        if not _FUNCTION_NAME.fullmatch(key):
            raise RequestError(f"'functions' has {_shown(key)}: function keys are letters, "
                               "digits, '-' and '_' (at most 64)")
    return tuple(dict.fromkeys(value))


# -- the result ----------------------------------------------------------------------------
def _from_mapping(cls, data: Any, **nested: Any):
    """A dataclass from a JSON object: unknown keys are ignored, missing ones default."""
    if not isinstance(data, Mapping):
        return None
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    for key, convert in nested.items():
        if key in values:
            values[key] = convert(values[key])
    return cls(**values)


def _tuple_of(cls):
    def convert(items: Any) -> tuple:
        return tuple(x for x in (_from_mapping(cls, item) for item in items or ()) if x)
    return convert


@dataclass(frozen=True)
class Failure:
    """Why a request failed: the step, one line, and where (file, line, key) when known."""

    step: str = "unknown"
    type: str = "Lambda3Error"
    message: str = "the builder failed without a message"
    file: str | None = None
    line: int | None = None
    key: str | None = None
    hint: str | None = None
    code: str | None = None

    @classmethod
    def of(cls, error: Lambda3Error) -> Failure:
        return cls(step=error.step, type=type(error).__name__, message=str(error),
                   file=error.file, line=error.line, key=error.key, hint=error.hint,
                   code=getattr(error, "code", None))


@dataclass(frozen=True)
class BuilderInfo:
    """Who answered: the contract version, lambda3's version and the toolchain's."""

    contract: int = 1
    version: str | None = None
    python: str | None = None
    machine: str | None = None
    runtime: str | None = None
    executable: str | None = None
    installers: Mapping[str, str | None] = field(default_factory=dict)
    toolchain: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerResult:
    component: str = ""
    name: str = ""
    arn: str | None = None
    version: int | None = None
    changed: bool = False
    size: int = 0
    code_sha256: str | None = None


@dataclass(frozen=True)
class ComponentResult:
    name: str = ""
    kind: str = ""
    code_sha256: str = ""
    size: int = 0
    unzipped_size: int = 0
    files: int = 0
    changed: bool | None = None
    arn: str | None = None
    reused: bool = False


@dataclass(frozen=True)
class ToolchainResult:
    """The answer to `action: bootstrap`: the builder's own toolchain layer."""

    layer_arn: str = ""
    code_sha256: str = ""
    size: int = 0
    published: bool = False
    attached: bool = False
    packages: tuple[str, ...] = ()
    target: str | None = None

    @property
    def changed(self) -> bool:
        return self.published or self.attached


@dataclass(frozen=True)
class RolloutResult:
    """A rollout the builder started (its first step); the client drives the rest.
    `checks` are the pre-traffic checks to run first, `post_checks` those run once all the
    traffic is on the new version: each {"file", "event", "expect"}."""

    strategy: str = "all-at-once"
    phase: str = ""
    old_version: str | None = None
    new_version: str | None = None
    weight: float = 0.0
    alarms: tuple[str, ...] = ()
    max_error_rate: float | None = None
    checks: tuple[Mapping[str, Any], ...] = ()
    post_checks: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class FunctionResult:
    """One function of a build file's `functions:` (or the one of `function:`, key
    `function`): its own plan, version and alias. `deployed`: its plan was applied; a
    function neither deployed nor failed was not reached (or this was a plan)."""

    key: str = ""
    name: str = ""
    arn: str | None = None
    version: str | None = None
    alias: str | None = None
    code_sha256: str | None = None
    target: str | None = None
    deployed: bool = False
    layers: tuple[LayerResult, ...] = ()
    components: tuple[ComponentResult, ...] = ()
    plan: tuple[Mapping[str, Any], ...] = ()
    plan_text: tuple[str, ...] = ()
    rollout: RolloutResult | None = None
    error: Failure | None = None
    function_url: str | None = None  # the function URL the build file manages


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    action: str = "build"
    contract: int = CONTRACT
    builder: BuilderInfo | None = None
    commit: str | None = None
    function: str | None = None
    function_arn: str | None = None
    version: str | None = None
    alias: str | None = None
    code_sha256: str | None = None
    target: str | None = None
    layers: tuple[LayerResult, ...] = ()
    components: tuple[ComponentResult, ...] = ()
    plan: tuple[Mapping[str, Any], ...] = ()
    plan_text: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    toolchain: ToolchainResult | None = None
    error: Failure | None = None
    rollout: RolloutResult | None = None
    prune_keep: int | None = None  # the build file's prune.keep: the client prunes after
    functions: tuple[FunctionResult, ...] = ()  # every function built, in build-file order
    function_url: str | None = None  # the function URL the build file manages

    @classmethod
    def failed(cls, error: Lambda3Error, *, action: str = "build") -> BuildResult:
        return cls(ok=False, action=action, error=Failure.of(error))

    def each_function(self) -> tuple[BuildResult, ...]:
        """This result as one single-function result per deployed function (itself when it
        is about one function), for what a client does per function afterwards: drive the
        rollout the builder started, prune."""
        if len(self.functions) <= 1:
            return (self,)
        return tuple(replace(
            self, function=f.name, function_arn=f.arn, version=f.version, alias=f.alias,
            code_sha256=f.code_sha256, target=f.target, layers=f.layers,
            components=f.components, plan=f.plan, plan_text=f.plan_text, rollout=f.rollout,
            function_url=f.function_url, functions=(f,)) for f in self.functions if f.deployed)

    @property
    def changed_layers(self) -> tuple[str, ...]:
        layers = self.layers or tuple(x for f in self.functions for x in f.layers)
        return tuple(dict.fromkeys(layer.name for layer in layers if layer.changed))

    def to_json(self) -> dict[str, Any]:
        data = _jsonable(self)
        data["changed_layers"] = list(self.changed_layers)
        return data

    @classmethod
    def from_json(cls, data: Any, *,
                  speaks: tuple[int, int] = (MIN_CONTRACT, CONTRACT)) -> BuildResult:
        """A result as a client reads it; a `ContractError` for an answer in a contract
        version this client does not speak, a `RequestError` for one that is no result."""
        if not isinstance(data, Mapping) or not isinstance(data.get("ok"), bool):
            raise RequestError("the answer is not a lambda3 result")
        version = data.get("contract", 1)
        if not isinstance(version, int) or not speaks[0] <= version <= speaks[1]:
            raise ContractError(
                f"the builder answered in contract version {version!r}; this client speaks "
                f"{speaks[0]}-{speaks[1]}",
                hint="run `lambda3 bootstrap` to update the builder, or use a lambda3 (or "
                     "action) release that speaks the builder's version")
        try:
            result = cls._read({**data, "contract": version})
        except (TypeError, ValueError) as error:
            raise RequestError(f"the answer is not a lambda3 result ({error})") from None
        if not result.ok and result.error is None:
            result = replace(result, error=Failure())
        return result

    @classmethod
    def _read(cls, data: Mapping[str, Any]) -> BuildResult:
        return _from_mapping(
            cls, data, builder=lambda v: _from_mapping(BuilderInfo, v),
            layers=_tuple_of(LayerResult), components=_tuple_of(ComponentResult),
            plan=lambda v: tuple(v or ()), plan_text=lambda v: tuple(v or ()),
            warnings=lambda v: tuple(v or ()), timings=lambda v: dict(v or {}),
            toolchain=lambda v: _from_mapping(ToolchainResult, v, packages=tuple),
            rollout=_rollout,
            error=_failure, functions=_tuple_of_functions)


def _failure(value: Any) -> Failure | None:
    return None if value is None else _from_mapping(Failure, value) or Failure()


def _rollout(value: Any) -> RolloutResult | None:
    return _from_mapping(RolloutResult, value, alarms=tuple, checks=lambda c: tuple(c or ()),
                          post_checks=lambda c: tuple(c or ()))


def _tuple_of_functions(items: Any) -> tuple[FunctionResult, ...]:
    read = (_from_mapping(FunctionResult, item, layers=_tuple_of(LayerResult),
                          components=_tuple_of(ComponentResult),
                          plan=lambda v: tuple(v or ()), plan_text=lambda v: tuple(v or ()),
                          rollout=_rollout, error=_failure) for item in items or ())
    return tuple(x for x in read if x)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
