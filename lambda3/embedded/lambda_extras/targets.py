"""Which function, alias or version a request names, read from moto, and state kept per one.

A `Target` holds moto's own objects for what it names: the function's ``$LATEST`` and, for a
qualifier, the alias or the published version. `Records` keeps a value per target and hands
it back only while moto still holds those very objects, so a deleted (or deleted and
re-created) function, alias or version has none: Lambda deletes an alias's URL, policy and
provisioned concurrency with it, and a function's with the function.
"""
from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

VERSION = re.compile(r"^[0-9]+$")


class Missing(LookupError):
    """moto has no such function, alias or version: `what` says which was not found."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what  # "function", "alias" or "version"


@dataclass(frozen=True)
class Target:
    """A function, or one of its aliases or published versions, as moto holds it now."""

    account: str
    region: str
    function: str
    qualifier: str | None
    objects: tuple  # moto's LambdaFunction ($LATEST), then the LambdaAlias or version
    version: str | None = None  # the version an alias points at, or the version itself

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return self.account, self.region, self.function, self.qualifier

    @property
    def is_alias(self) -> bool:
        return self.qualifier is not None and not VERSION.match(self.qualifier)

    @property
    def latest(self) -> Any:
        return self.objects[0]

    @property
    def function_arn(self) -> str:
        return function_arn(self.account, self.region, self.function)

    @property
    def arn(self) -> str:
        return function_arn(self.account, self.region, self.function, self.qualifier)


def function_arn(account: str, region: str, function: str, qualifier: str | None = None) -> str:
    from moto.utilities.utils import get_partition

    arn = f"arn:{get_partition(region)}:lambda:{region}:{account}:function:{function}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _backend(account: str, region: str) -> Any:
    from moto.awslambda.utils import get_backend

    return get_backend(account, region)  # moto's simple (no Docker) backend when configured


def find(account: str, region: str, function: str, qualifier: str | None = None) -> Target:
    """The target moto holds for `function` and `qualifier` (a digit string is a version,
    anything else an alias name); `Missing` says what is not there."""
    from moto.awslambda.exceptions import UnknownAliasException, UnknownFunctionException

    backend = _backend(account, region)
    try:
        latest = backend.get_function(function)
    except UnknownFunctionException:
        raise Missing("function") from None
    where = (account, region, function, qualifier)
    if qualifier is None:
        return Target(*where, objects=(latest,))
    if VERSION.match(qualifier):
        try:
            found = backend.get_function(function, qualifier)
        except UnknownFunctionException:
            raise Missing("version") from None
        if str(found.version) != qualifier:  # moto also looks the qualifier up as an alias
            raise Missing("version")
        return Target(*where, objects=(latest, found), version=qualifier)
    try:
        alias = backend.get_alias(qualifier, function)
    except (UnknownAliasException, UnknownFunctionException):
        raise Missing("alias") from None
    return Target(*where, objects=(latest, alias), version=str(alias.function_version))


def aliases_of(target: Target) -> list[tuple[str, str]]:
    """(alias name, the version it points at) of every alias of the target's function."""
    backend = _backend(target.account, target.region)
    return [(a.name, str(a.function_version)) for a in backend.list_aliases(target.function)]


class Records:
    """One value per target, valid while moto holds the target's objects (not thread-safe:
    the caller serialises)."""

    def __init__(self) -> None:
        self._items: dict[tuple, tuple[tuple[weakref.ref, ...], Any]] = {}

    def get(self, target: Target) -> Any | None:
        found = self._items.get(target.key)
        if found is None:
            return None
        owners, value = found
        if len(owners) == len(target.objects) and all(
                ref() is obj for ref, obj in zip(owners, target.objects, strict=True)):
            return value
        del self._items[target.key]  # made for a function, alias or version since deleted
        return None

    def put(self, target: Target, value: Any) -> None:
        self._items[target.key] = (tuple(weakref.ref(o) for o in target.objects), value)

    def pop(self, target: Target) -> Any | None:
        value = self.get(target)
        self._items.pop(target.key, None)
        return value

    def of_function(self, target: Target,
                    resolve: Callable[[str | None], Target]) -> Iterator[tuple[Target, Any]]:
        """Every live (target, value) of the target's function; `resolve` finds a qualifier's
        target now (raising `Missing` when it is gone)."""
        prefix = target.key[:3]
        for key in sorted((k for k in self._items if k[:3] == prefix),
                          key=lambda k: k[3] or ""):
            try:
                current = resolve(key[3])
            except Missing:
                self._items.pop(key, None)
                continue
            value = self.get(current)
            if value is not None:
                yield current, value

    def clear(self) -> None:
        self._items.clear()
