"""The builder's event, typed and validated once; secrets are kept out of repr."""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.errors import RequestError, TargetNotAllowed

ACTIONS = ("build", "plan", "ping", "bootstrap")
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ALIAS = re.compile(r"^(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class BuildRequest:
    action: str
    repository: str | None = None
    ref: str | None = None
    function: str | None = None
    build_file: str | None = None
    components: tuple[str, ...] = ()
    alias: str | None = None
    publish: bool = True
    refresh: bool = False
    bucket: str | None = None
    log_marker: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def deploys(self) -> bool:
        return self.action == "build"


def parse_request(event: Mapping[str, Any]) -> BuildRequest:
    if not isinstance(event, Mapping):
        raise RequestError("the event must be a JSON object")
    action = event.get("action", "build")
    if action not in ACTIONS:
        raise RequestError(f"unknown action {action!r}; allowed: {', '.join(ACTIONS)}")
    request = BuildRequest(
        action=action,
        repository=_text(event, "repository"),
        ref=_text(event, "ref"),
        function=_text(event, "function"),
        build_file=_text(event, "build_file"),
        components=_components(event.get("components")),
        alias=_text(event, "alias"),
        publish=_flag(event, "publish", True),
        refresh=_flag(event, "refresh", False),
        bucket=_text(event, "bucket"),
        log_marker=_text(event, "log_marker"),
        token=_text(event, "token"),
    )
    if action in ("build", "plan"):
        _check_deploy_fields(request)
    return request


def _check_deploy_fields(request: BuildRequest) -> None:
    if not request.repository:
        raise RequestError("'repository' is required (an https git URL)")
    if not request.function or not _FUNCTION_NAME.match(request.function):
        raise RequestError(
            f"'function' must be a Lambda function name (letters, digits, - and _; at most 64), "
            f"got {request.function!r}"
        )
    if request.alias and not _ALIAS.match(request.alias):
        raise RequestError(f"'alias' {request.alias!r} is not a valid alias name")
    if request.alias and not request.publish:
        raise RequestError("an alias needs a published version: drop 'alias' or set 'publish'")


def _text(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RequestError(f"'{key}' must be a string, got {type(value).__name__}")
    return value


def _flag(event: Mapping[str, Any], key: str, default: bool) -> bool:
    value = event.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise RequestError(f"'{key}' must be true or false, got {value!r}")
    return value


def _components(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value.strip())
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise RequestError("'components' must be a list of component names")
    return tuple(v for v in value if v)


def check_allowed(function: str, patterns: Sequence[str]) -> None:
    """The builder deploys only to functions its allow-list names, whatever IAM says."""
    if not patterns:
        return
    if not any(fnmatch.fnmatchcase(function, pattern) for pattern in patterns):
        raise TargetNotAllowed(
            f"function {function!r} is not in this builder's allow-list "
            f"({', '.join(patterns)}); re-run `lambda3 bootstrap --allow PATTERN` to extend it"
        )


def allow_patterns(value: str | None) -> list[str]:
    return [p for p in re.split(r"[\s,]+", value or "") if p]
