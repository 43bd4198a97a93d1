"""Installer failures in one message format, whatever the installer and the target.

The first line says what failed, for which package, where the user asked for it (their
requirements file and line, never lambda3's temporary copy) and how to fix it; below it,
indented, the end of what the package's build or the installer said. The installer's
command line is logged, not shown.
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

from builder.errors import InstallError
from builder.runtimes import Target

Where = tuple[str | None, int | None]  # (file shown, line)

_DETAIL_LINES = 12
_BLOCK = re.compile(r"^\s*\[(stdout|stderr)\]\s*$")
_UV_NOISE = re.compile(r"^\s*(hint:|help:|Using CPython|Resolved|Prepared|Building|Built|"
                       r"Downloading|Downloaded)")


class InstallFailure(InstallError):
    """An install that failed: one line (what, which package, where, the fix), then the
    installer's or the package's own last words, indented."""

    def __init__(self, message: str, *, detail: str = "", **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.detail = detail.strip("\n")

    def __str__(self) -> str:
        head = super().__str__()
        return f"{head}\n{textwrap.indent(self.detail, '    ')}" if self.detail else head


def needs_compiling(names: Iterable[str], target: Target, where: Where, detail: str, *,
                    local: bool = False, asked: Where | None = None) -> InstallFailure:
    """A package with compiled code and no wheel the target loads."""
    names = sorted(names)
    major, minor = target.manylinux
    platform = f"manylinux_{major}_{minor}_{target.machine}"
    if asked:
        hint = (f"drop --no-binary {names[0]} ({asked[0]}:{asked[1]}) to take its wheel, or "
                "build inside Lambda")
    elif local:
        hint = f"ship it as a wheel built for {platform}, or build inside Lambda"
    else:
        hint = "pin a version with a wheel or build inside Lambda"
    return InstallFailure(
        f"package {', '.join(names)} needs compiling for the target (no wheel for {platform} "
        f"/ Python {target.python_version})", file=where[0], line=where[1], hint=hint,
        detail=detail)


def build_failed(name: str, python: str, where: Where, output: str) -> InstallFailure:
    """A source build that failed for a reason of its own (not a missing compiler)."""
    detail = package_output(output)
    last = next((line.strip() for line in reversed(detail.splitlines()) if line.strip()),
                "no output")
    return InstallFailure(
        f"package {name} failed to build from source with Python {python}: {last}",
        file=where[0], line=where[1], detail=detail,
        hint="fix the package's build, or pin a version that has a wheel for the target")


def installer_failed(tool: str, output: str, where: Where, hint: str | None
                     ) -> InstallFailure:
    """Anything else the installer refused: its own error line, then its output's tail."""
    return InstallFailure(f"{tool} could not install the requirements: {summary(output)}",
                          file=where[0], line=where[1], detail=tail(output),
                          hint=hint or "fix the requirement the message names")


def summary(output: str) -> str:
    """uv's `error:` line with its first `cause:`, or pip's `ERROR:` line, as one line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.lower().startswith("error:"):
            text = line.split(":", 1)[1].strip()
            cause = next((c for c in lines[index + 1:index + 3] if c.startswith("cause:")), "")
            return f"{text}: {cause.removeprefix('cause:').strip()}" if cause else text
    return lines[-1] if lines else "no output"


def package_output(output: str, lines: int = _DETAIL_LINES) -> str:
    """What the package's build backend itself printed (the `[stderr]`/`[stdout]` blocks
    of uv's report, dedented), its last `lines`; else the tail of `output`."""
    own, inside = [], False
    for line in output.splitlines():
        if _BLOCK.match(line):
            inside = True
            continue
        if inside and line.strip() and not line.startswith((" ", "\t")):
            inside = False
        if inside:
            own.append(line)
    text = [line for line in textwrap.dedent("\n".join(own)).splitlines() if line.strip()]
    return "\n".join(text[-lines:]) if text else tail(output, lines)


def tail(output: str, lines: int = _DETAIL_LINES) -> str:
    """The last `lines` lines of `output` without uv's progress lines and hints."""
    kept = [line.rstrip() for line in output.strip("\n").splitlines()
            if line.strip() and not _UV_NOISE.match(line)]
    return "\n".join(kept[-lines:])
