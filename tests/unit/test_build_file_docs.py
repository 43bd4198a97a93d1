"""docs/build-file.md documents every key the JSON Schema knows, and only those."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Tables of docs/build-file.md whose first column is not a build-file key.
NOT_KEYS = ("## Globs", "### Runtime deprecation")


def schema_keys() -> set[str]:
    """Every property name anywhere in the schema."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "properties" and isinstance(value, dict):
                    found.update(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads((ROOT / "builder" / "build.schema.json").read_text()))
    return found


def documented_keys() -> set[str]:
    text = (ROOT / "docs" / "build-file.md").read_text()
    keys: set[str] = set()
    for section in re.split(r"\n(?=#{2,3} )", text):
        if section.startswith(NOT_KEYS):
            continue
        keys.update(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    return keys


def mentioned_names() -> set[str]:
    """Every name inside a code span: sub-keys are documented in their parent's row
    (`{format, application_level, ...}`)."""
    text = (ROOT / "docs" / "build-file.md").read_text()
    return {word for line in text.splitlines() if not line.startswith("```")
            for span in re.findall(r"`([^`]+)`", line.replace("``", ""))
            for word in re.findall(r"[a-z_]+", span)}


def test_every_schema_key_is_documented():
    assert sorted(schema_keys() - documented_keys() - mentioned_names()) == []


def test_every_documented_key_is_in_the_schema():
    assert sorted(documented_keys() - schema_keys()) == []
