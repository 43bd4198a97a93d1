"""GitHub Actions workflow commands and environment files, the way the actions toolkit writes them.

Commands go to a text stream (the runner reads the step's stdout); outputs and the step summary
go to the files named by `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY`. Every writer takes the
stream or the path as a parameter so that tests can hand in their own.
"""
from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TextIO

from builder.errors import Lambda3Error


class ToolkitError(Lambda3Error):
    step = "action"


def escape_data(value: str) -> str:
    """Escape a command's message (the part after the final `::`), and break up `##[`
    (the old command syntax, which the runner looks for anywhere in a line)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A") \
        .replace("##[", "##%5B")


def inert(line: str) -> str:
    """A log line the runner shows as it is, whatever text it holds: line breaks escaped
    (%0D, %0A) so none can start a line of its own, a leading `::` (the runner trims
    whitespace first) and `##[` (the old command syntax, matched anywhere in a line) broken."""
    text = line.replace("\r", "%0D").replace("\n", "%0A").replace("##[", "##%5B")
    stripped = text.lstrip()
    if stripped.startswith("::"):
        text = text[:len(text) - len(stripped)] + "%3A" + stripped[1:]
    return text


def escape_property(value: str) -> str:
    """Escape a command property value (`file=...`, `title=...`)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def format_command(name: str, message: str = "",
                   properties: Mapping[str, object | None] | None = None) -> str:
    """`::name key=value,key=value::message`, leaving out properties that are None or empty."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in (properties or {}).items()
        if value is not None and value != ""
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def _emit(line: str, stream: TextIO | None) -> None:
    out = stream or sys.stdout
    out.write(line + "\n")
    out.flush()


def add_mask(value: str | None, *, stream: TextIO | None = None) -> None:
    """Ask the runner to mask a secret in the log, line by line for a multi-line value.

    The runner masks log lines one at a time, so a multi-line secret registered as a whole
    would never match: each of its lines is registered on its own.
    """
    if not value:
        return
    for line in value.splitlines() or [value]:
        if line.strip():
            _emit(format_command("add-mask", line), stream)


def error(message: str, *, file: str | None = None, line: int | None = None,
          title: str | None = None, stream: TextIO | None = None) -> None:
    """An error annotation; with `file` (and `line`) it is shown on that line of the diff."""
    properties = {"title": title, "file": file, "line": line if file else None}
    _emit(format_command("error", message, properties), stream)


def warning(message: str, *, title: str | None = None, stream: TextIO | None = None) -> None:
    _emit(format_command("warning", message, {"title": title}), stream)


@contextlib.contextmanager
def group(title: str, *, stream: TextIO | None = None) -> Iterator[None]:
    """A collapsible group of log lines."""
    _emit(format_command("group", title), stream)
    try:
        yield
    finally:
        _emit(format_command("endgroup"), stream)


@contextlib.contextmanager
def stop_commands(*, stream: TextIO | None = None,
                  new_token: Callable[[], str] = lambda: uuid.uuid4().hex) -> Iterator[None]:
    """Stop the runner from acting on workflow commands in the lines written inside.

    Used around text we do not control (the builder's log): a line starting with `::` there
    must not become an output, a mask or an annotation.
    """
    token = new_token()
    _emit(f"::stop-commands::{token}", stream)
    try:
        yield
    finally:
        _emit(f"::{token}::", stream)


def set_output(name: str, value: str, *, path: str | Path,
               new_delimiter: Callable[[], str] | None = None) -> None:
    """Append `name<<DELIMITER` / value / `DELIMITER` to the `$GITHUB_OUTPUT` file."""
    delimiter = (new_delimiter or _random_delimiter)()
    if delimiter in name or delimiter in value:
        raise ToolkitError(
            f"the output {name!r} contains its own delimiter {delimiter!r}",
            hint="this should not happen with a random delimiter; run the step again",
        )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(markdown: str, *, path: str | Path) -> None:
    """Append markdown to the `$GITHUB_STEP_SUMMARY` file."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")


def _random_delimiter() -> str:
    return f"ghadelimiter_{uuid.uuid4()}"
