"""The wire shapes these APIs share: the parsed request, the answer and Lambda's errors.

An error is JSON with the ``x-amzn-ErrorType`` header, as Lambda (and moto's Lambda) sends
it, so botocore raises a ClientError with that Code. Its body is the one Lambda sends for
that error: ``{"Type": "User", "Message": ...}`` for ResourceNotFoundException,
``{"Type": "User", "message": ...}`` for the other service errors and ``{"message": ...}``
for a ValidationException.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

_STATUS = {
    "ResourceNotFoundException": 404,
    "ProvisionedConcurrencyConfigNotFoundException": 404,
    "InvalidParameterValueException": 400,
    "InvalidRequestContentException": 400,
    "ValidationException": 400,
    "ResourceConflictException": 409,
    "PreconditionFailedException": 412,
}


class ApiError(Exception):
    """A Lambda error answer: its type (the ClientError Code) and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS[self.code]

    def body(self) -> dict[str, str]:
        if self.code == "ValidationException":
            return {"message": self.message}
        key = "Message" if self.code == "ResourceNotFoundException" else "message"
        return {"Type": "User", key: self.message}


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterValueException", message)


def conflict(message: str) -> ApiError:
    return ApiError("ResourceConflictException", message)


def enum_error(value: Any, member: str, allowed: str) -> ApiError:
    """Lambda's enum validation error, e.g. ``at 'recursiveLoop' ... [Terminate, Allow]``."""
    return ApiError("ValidationException", (
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{allowed}]"))


def pattern_error(value: Any, member: str, pattern: str) -> ApiError:
    return ApiError("ValidationException", (
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {pattern}"))


@dataclass(frozen=True)
class Request:
    """One call: who and where it is for, the function and qualifier it names, its input."""

    account: str
    region: str
    function: str  # the bare function name
    qualifier: str | None  # from the function reference or the Qualifier parameter
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    statement: str = ""  # RemovePermission's statement id, from the path


@dataclass(frozen=True)
class Answer:
    """A successful answer: the status and the JSON body (None: no body)."""

    status: int
    body: dict[str, Any] | None = None

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


def lambda_date(moment: datetime | None = None) -> str:
    """A timestamp as Lambda writes LastModified: ``2024-05-01T12:00:00.000+0000``."""
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def page(items: list[dict], query: dict[str, str], key: str) -> dict[str, Any]:
    """One page of a List call: ``Marker`` is where the page starts, ``MaxItems`` its size
    (at most 50, Lambda's limit); ``NextMarker`` is given while more follow."""
    start = int(query["Marker"]) if query.get("Marker", "").isdigit() else 0
    size = min(max(int(query["MaxItems"]), 1), 50) if query.get("MaxItems", "").isdigit() else 50
    found: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        found["NextMarker"] = str(start + size)
    return found
