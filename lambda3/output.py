"""Printing results for people (tables) and for programs (one JSON object)."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

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


def components_table(components: Sequence[dict]) -> str:
    rows = []
    for c in components:
        changed = c.get("changed")
        status = "" if changed is None else ("changed" if changed else "reused")
        rows.append([c["name"], c["kind"], human(c["size"]), human(c["unzipped_size"]),
                     c["files"], c["code_sha256"][:16], status])
    return table(["component", "kind", "zipped", "unzipped", "files", "sha256", ""], rows)


def timings_table(timings: dict[str, float]) -> str:
    return table(["step", "seconds"], [[k, f"{v:.2f}"] for k, v in timings.items()])


def error_line(error: dict) -> str:
    return f"lambda3: {error.get('step', 'error')}: {error.get('message')}"
