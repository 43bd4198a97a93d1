"""What a person sees while a build runs: the builder's steps as they start and end, and its
log lines in a readable form.

In-process builds (`lambda3 build`, `deploy --local-builder`) log through `logging`;
`builder.timing.Timings.step` logs `step NAME ...` when a step starts and `step NAME done in
N s` when it ends. `console()` shows those on a terminal as one line per step (the line is
finished in place with the step's time), and as plain lines otherwise; with `--json` it
shows no step lines at all. `capture()` copies every log line, in full, to a file (`-l`).
The remote builder's lines arrive in CloudWatch's form; `readable()` keeps level and message.
"""
from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

STEP_LOGGER = "builder.timing"
_CLOUDWATCH = re.compile(r"^\[(?P<level>[A-Z]+)\]\t\S+Z?\t[0-9a-fA-F-]{36}\t(?P<message>.*)$",
                         re.DOTALL)
FULL_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def readable(line: str) -> str:
    """`[INFO]\\t2026-01-02T03:04:05.678Z\\t<request id>\\tmessage` -> `INFO message`."""
    found = _CLOUDWATCH.match(line)
    if not found:
        return line
    return f"{found['level']} {found['message']}"


def _step_event(record: logging.LogRecord) -> tuple[str, str, str] | None:
    """(name, "start" | "end", text) for a step record of `builder.timing`, else None."""
    if record.name != STEP_LOGGER or not record.getMessage().startswith("step "):
        return None
    text = record.getMessage()[len("step "):]
    name, _, rest = text.partition(" ")
    return name, ("start" if rest == "..." else "end"), rest


class ConsoleHandler(logging.Handler):
    """Log lines for people: a step's start line is finished in place on a terminal."""

    def __init__(self, stream: TextIO, *, tty: bool, steps: bool) -> None:
        super().__init__(logging.INFO)
        self.stream, self.tty, self.steps = stream, tty, steps
        self.open_step: str | None = None  # a step line written without its end yet

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = _step_event(record)
            if event is None:
                self._line(self.format(record))
            elif self.steps:
                self._step(*event)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass
        except Exception:  # noqa: BLE001 - logging must never break the build
            self.handleError(record)

    def _line(self, text: str) -> None:
        if self.open_step is not None:
            self.stream.write("\n")
            self.open_step = None
        self.stream.write(text + "\n")

    def _step(self, name: str, kind: str, rest: str) -> None:
        if not self.tty:
            self._line(f"step {name} {rest}")
        elif kind == "start":
            self._line_open(f"{name} ...")
            self.open_step = name
        elif self.open_step == name:
            self.stream.write(f"\r\033[K{name} {rest}\n")
            self.open_step = None
        else:
            self._line(f"{name} {rest}")

    def _line_open(self, text: str) -> None:
        if self.open_step is not None:
            self.stream.write("\n")
        self.stream.write(text)


@contextmanager
def console(*, json_mode: bool = False, stream: TextIO | None = None) -> Iterator[None]:
    """Show INFO log lines on stderr for the duration, steps as described above."""
    stream = stream or sys.stderr
    handler = ConsoleHandler(stream, tty=_isatty(stream), steps=not json_mode)
    handler.setFormatter(logging.Formatter("%(message)s"))
    with _attached(handler):
        yield


@contextmanager
def capture(path: str | None) -> Iterator[None]:
    """Every log line, with its time, level and logger, written to `path` (None: nothing)."""
    if not path:
        yield
        return
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FULL_FORMAT))
    with _attached(handler):
        yield
    handler.close()


@contextmanager
def _attached(handler: logging.Handler) -> Iterator[None]:
    from builder.redact import REDACTOR, RedactingFilter

    handler.addFilter(RedactingFilter(REDACTOR))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
