"""docs/ARCHITECTURE.md's module map names every module of the tree, and only those."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("builder", "bootstrap", "lambda3")


def mapped_modules() -> set[str]:
    """Paths named in the map's first column; a bare `name.py` is in the folder of the
    path named before it in the same cell."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    table = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    found = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        folder = ""
        for token in re.findall(r"`([^`]+)`", row.split(" | ", 1)[0]):
            if "/" in token:
                folder = token.rsplit("/", 1)[0] if not token.endswith("/") else token[:-1]
                found.add(token.rstrip("/"))
            elif token.endswith((".py", ".json")):
                found.add(f"{folder}/{token}")
    return found


def tree_modules() -> set[str]:
    modules = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.name not in ("__init__.py", "__main__.py"):
                modules.add(str(path.relative_to(ROOT)))
    return modules


def covered(module: str, mapped: set[str]) -> bool:
    return module in mapped or any(module.startswith(entry + "/") for entry in mapped)


def test_every_module_is_in_the_map():
    mapped = mapped_modules()
    missing = sorted(m for m in tree_modules() if not covered(m, mapped))
    assert missing == []


def test_the_map_names_only_what_exists():
    gone = sorted(entry for entry in mapped_modules() if not (ROOT / entry).exists())
    assert gone == []
