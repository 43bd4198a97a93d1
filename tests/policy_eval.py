"""A small IAM policy evaluator, enough for the documents bootstrap writes.

It knows: Allow and Deny statements; Action / NotAction and Resource / NotResource with
`*` and `?` wildcards (actions case-insensitive, resources case-sensitive); the condition
operators StringEquals, StringNotEquals, StringLike, ArnLike and Bool (every key of a block
must match, a key missing from the request fails it; Bool reads true and "true" alike);
Principal in trust policies. An explicit deny in any document wins; otherwise some Allow is
needed. With a session policy the request must be allowed by the identity policies and by
the session policy, as IAM evaluates the credentials of an AssumeRole with `Policy`.

Not modelled (the documents do not use them): permission boundaries, SCPs, resource-based
policies, `...IfExists` operators, policy variables.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit deny", "implicit deny"
Context = Mapping[str, str | bool | Sequence[str]]


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return bool(_pattern(pattern, ignore_case).match(value))


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, bool)) else list(value or [])


def _boolean(value: Any) -> str:
    return str(value).lower()


def _any_match(patterns: Any, value: str, *, ignore_case: bool = False) -> bool:
    return any(matches(p, value, ignore_case=ignore_case) for p in _listed(patterns))


def _action_applies(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not _any_match(statement["NotAction"], action, ignore_case=True)
    return _any_match(statement.get("Action"), action, ignore_case=True)


def _resource_applies(statement: Mapping[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return not _any_match(statement["NotResource"], resource)
    return _any_match(statement.get("Resource"), resource)


_OPERATORS = {
    "StringEquals": lambda want, have: want == have,
    "StringNotEquals": lambda want, have: want != have,
    "StringLike": lambda want, have: matches(want, have),
    "ArnLike": lambda want, have: matches(want, have),
    "Bool": lambda want, have: _boolean(want) == _boolean(have),
}


def _conditions_hold(statement: Mapping[str, Any], context: Context) -> bool:
    for operator, block in (statement.get("Condition") or {}).items():
        if operator not in _OPERATORS:
            raise ValueError(f"condition operator {operator} is not modelled")
        test = _OPERATORS[operator]
        for key, wanted in block.items():
            found = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if found is None:
                return False
            values = _listed(found)
            if operator == "StringNotEquals":
                if not all(test(w, v) for w in _listed(wanted) for v in values):
                    return False
            elif not any(test(w, v) for w in _listed(wanted) for v in values):
                return False
    return True


def _statements(documents: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for document in documents:
        found = document["Statement"]
        yield from ([found] if isinstance(found, Mapping) else found)


def decide(documents: Iterable[Mapping[str, Any]], action: str, resource: str,
           context: Context | None = None) -> str:
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for one request under identity policies."""
    context = context or {}
    allowed = False
    for statement in _statements(documents):
        if not (_action_applies(statement, action) and _resource_applies(statement, resource)
                and _conditions_hold(statement, context)):
            continue
        if statement["Effect"] == "Deny":
            return EXPLICIT_DENY
        allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


def allowed(documents: Iterable[Mapping[str, Any]], action: str, resource: str,
            context: Context | None = None, *,
            session: Mapping[str, Any] | None = None) -> bool:
    """Whether credentials with these identity policies (and, for an assumed-role session,
    this session policy) may make the request."""
    documents = list(documents)
    if decide(documents, action, resource, context) != ALLOW:
        return False
    return session is None or decide([session], action, resource, context) == ALLOW


def trusts(trust_policy: Mapping[str, Any], principal: Mapping[str, str],
           action: str = "sts:AssumeRole", context: Context | None = None) -> bool:
    """Whether a role's trust policy lets `principal` ({"AWS": role ARN}, {"Service": ...},
    {"Federated": ...}) make `action` on it."""
    context = context or {}
    result = False
    for statement in _statements([trust_policy]):
        if not (_action_applies(statement, action) and _conditions_hold(statement, context)):
            continue
        named = statement.get("Principal") or {}
        if named != "*" and not any(_any_match(named.get(kind), value)
                                    for kind, value in principal.items()):
            continue
        if statement["Effect"] == "Deny":
            return False
        result = True
    return result
