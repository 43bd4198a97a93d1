"""One exception base for everything the builder reports to a user.

Each error names the step that failed (fetch, spec, install, strip, package, limits,
plan, apply, ...), says what happened in one line and, where it helps, how to fix it.
The step running when an error leaves it is stamped on the error (`Timings.step`), so
the same AWS error says `plan` while reading state and `apply` while changing it.
`builder.contract.Failure.of(error)` is the `error` object of a failed result.
"""
from __future__ import annotations

from typing import Any


class Lambda3Error(Exception):
    """A failure the user can act on. Never carries a secret in its message."""

    step = "build"
    keeps_step = False  # True: the class names the kind of failure, whatever step ran

    def __init__(self, message: str, *, hint: str | None = None, step: str | None = None,
                 file: str | None = None, line: int | None = None, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.stamped = bool(step)  # a step given here is kept; else the running step's
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

    def stamp(self, step: str) -> None:
        """Put the pipeline step that was running on this error, once (innermost wins)."""
        if not (self.stamped or self.keeps_step):
            self.step, self.stamped = step, True

    def to_dict(self) -> dict[str, Any]:
        """The error as the result's `error` object (`builder.contract.Failure`)."""
        from builder.contract import Failure, _jsonable

        return _jsonable(Failure.of(self))


class SourceError(Lambda3Error):
    step = "fetch"


class SpecError(Lambda3Error):
    keeps_step = True
    step = "spec"


class InstallError(Lambda3Error):
    step = "install"


class PackageError(Lambda3Error):
    step = "package"


class LimitError(Lambda3Error):
    keeps_step = True
    step = "limits"


class RequestError(Lambda3Error):
    keeps_step = True
    step = "request"


class TargetNotAllowed(Lambda3Error):
    keeps_step = True
    step = "request"


class AwsError(Lambda3Error):
    """An AWS call failed; `code` is the AWS error code when there is one."""

    step = "apply"

    def __init__(self, message: str, *, code: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.code = code
