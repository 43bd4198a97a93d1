"""Printing results for people (tables) and for programs (one JSON object)."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from builder.contract import ComponentResult, Failure
from builder.limits import human


def print_json(data: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)


def components_table(components: Sequence[ComponentResult]) -> str:
    rows = []
    for c in components:
        status = "" if c.changed is None else ("changed" if c.changed else "reused")
        rows.append([c.name, c.kind, human(c.size), human(c.unzipped_size),
                     c.files, c.code_sha256[:16], status])
    headers = ["component", "kind", "zipped", "unzipped", "files", "sha256"]
    if any(row[-1] for row in rows):
        headers.append("status")
    else:
        rows = [row[:-1] for row in rows]
    return table(headers, rows)


def timings_table(timings: dict[str, float]) -> str:
    return table(["step", "seconds"], [[k, f"{v:.2f}"] for k, v in timings.items()])


def error_line(error: Failure | None, command: str = "deploy") -> str:
    error = error or Failure()
    return f"lambda3 {command}: {error.step}: {error.message}"
