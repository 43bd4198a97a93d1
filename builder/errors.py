"""One exception base for everything the builder reports to a user.

Each error names the step that failed (fetch, spec, install, strip, package, limits,
plan, apply, ...), says what happened in one line and, where it helps, how to fix it.
`to_dict()` is the `error` object of a failed result.
"""
from __future__ import annotations

from typing import Any


class Lambda3Error(Exception):
    """A failure the user can act on. Never carries a secret in its message."""

    step = "build"
    error_type = "Lambda3Error"

    def __init__(self, message: str, *, hint: str | None = None, step: str | None = None,
                 file: str | None = None, line: int | None = None, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if step:
            self.step = step
        self.file = file
        self.line = line
        self.key = key

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        text = where + self.message
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "type": type(self).__name__,
            "message": str(self),
            "file": self.file,
            "line": self.line,
            "key": self.key,
        }


class SourceError(Lambda3Error):
    step = "fetch"


class SpecError(Lambda3Error):
    step = "spec"


class InstallError(Lambda3Error):
    step = "install"


class PackageError(Lambda3Error):
    step = "package"


class LimitError(Lambda3Error):
    step = "limits"


class RequestError(Lambda3Error):
    step = "request"


class TargetNotAllowed(Lambda3Error):
    step = "request"


class AwsError(Lambda3Error):
    """An AWS call failed; `code` is the AWS error code when there is one."""

    step = "apply"

    def __init__(self, message: str, *, code: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.code = code
