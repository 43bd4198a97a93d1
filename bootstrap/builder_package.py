"""The builder's code zip: the `builder` package as it is installed here, plus the pinned
toolchain list as `builder/toolchain.txt`.

The list travels inside the code (rather than in the bootstrap event) so that the deployed
builder describes itself: its CodeSha256 covers the toolchain it is meant to have, a changed
pin is a code update like any other, and a self-install re-run by hand (`{"action":
"bootstrap"}`) installs the same set as bootstrap did. The zip is reproducible, so an
unchanged builder has an unchanged CodeSha256 and bootstrap leaves the function alone.
"""
from __future__ import annotations

from pathlib import Path

import builder
from builder.package import Entry, ZipStats, make_zip, walk_entries

BUILDER_DIR = Path(builder.__file__).resolve().parent
TOOLCHAIN_FILE = Path(__file__).resolve().with_name("toolchain.txt")
TOOLCHAIN_ARCNAME = "builder/toolchain.txt"


def _skip(arcname: str) -> bool:
    """Editor and OS leftovers never belong in the code; a stray toolchain.txt would clash
    with the one generated from bootstrap/toolchain.txt."""
    name = arcname.rsplit("/", 1)[-1]
    return (arcname == TOOLCHAIN_ARCNAME or name.startswith(".") or name.endswith("~")
            or name.endswith((".swp", ".orig", ".rej")))


def builder_entries(builder_dir: Path = BUILDER_DIR,
                    toolchain: Path = TOOLCHAIN_FILE) -> list[Entry]:
    entries = walk_entries(builder_dir, "builder", skip=_skip)
    entries.append(Entry(TOOLCHAIN_ARCNAME, toolchain))
    return entries


def build_builder_zip(dest: Path, *, builder_dir: Path = BUILDER_DIR,
                      toolchain: Path = TOOLCHAIN_FILE) -> ZipStats:
    """Write the builder's code zip to `dest`; the same sources give the same bytes."""
    return make_zip(builder_entries(builder_dir, toolchain), dest)


def toolchain_pins(toolchain: Path = TOOLCHAIN_FILE) -> dict[str, str]:
    """name -> pinned version of every `name==version` line (markers ignored)."""
    pins = {}
    for raw in toolchain.read_text().splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = (part.strip() for part in line.split("==", 1))
            pins[name] = version
    return pins
