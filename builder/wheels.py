"""The installed distributions in a `--target` directory: what they are, whether the
target can load their wheels, and taking some out again.

Names and versions come from each `.dist-info` (METADATA, else the folder's name); wheel
tags from its WHEEL file, judged against the target's Python, CPU and manylinux level;
removal deletes exactly the files its RECORD lists.
"""
from __future__ import annotations

import csv
import email.parser
import re
import shutil
from pathlib import Path

from builder.requirements import normalise
from builder.runtimes import Target


def incompatible_distributions(dest: Path, target: Target) -> list[str]:
    """Installed distributions (normalised names) whose wheel tags `target` cannot load."""
    bad = []
    for wheel in sorted(Path(dest).glob("*.dist-info/WHEEL")):
        tags = [line.split(":", 1)[1].strip()
                for line in wheel.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.startswith("Tag:")]
        if tags and not any(wheel_tag_supported(tag, target) for tag in tags):
            bad.append(_name_version(wheel.parent)[0])
    return bad


def wheel_tag_supported(tag: str, target: Target, *, glibc: tuple[int, int] | None = None
                        ) -> bool:
    """Whether a wheel tag (`cp311-abi3-manylinux_2_17_x86_64`, compressed sets allowed)
    runs on the target's Python, CPU and glibc (`glibc` instead of the target's)."""
    try:
        interpreters, abis, platforms = (part.split(".") for part in tag.split("-"))
    except ValueError:
        return False
    level = glibc or target.manylinux
    return any(_python_supported(i, a, target) and _platform_supported(p, target, level)
               for i in interpreters for a in abis for p in platforms)


def _python_supported(interpreter: str, abi: str, target: Target) -> bool:
    minor = int(target.python_version.split(".")[1])
    match = re.fullmatch(r"(py|cp)3(\d*)", interpreter)
    if not match:
        return False
    kind, version = match[1], int(match[2]) if match[2] else None
    if abi == "none":
        return version == minor if kind == "cp" else version is None or version <= minor
    if abi == "abi3":
        return kind == "cp" and version is not None and version <= minor
    return kind == "cp" and version == minor and abi == f"cp3{minor}"


def _platform_supported(platform: str, target: Target, glibc: tuple[int, int]) -> bool:
    if platform == "any":
        return True
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if match:
        level, machine = (int(match[1]), int(match[2])), match[3]
    else:
        name, _, machine = platform.partition("_")
        if name not in legacy:
            return False  # linux_x86_64 (built here), musllinux, macOS, Windows
        level = legacy[name]
    return machine == target.machine and level <= glibc


def _name_version(dist_info: Path) -> tuple[str, str]:
    """(normalised name, version) of one installed distribution."""
    try:
        text = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
        headers = email.parser.HeaderParser().parsestr(text)
        if headers["Name"] and headers["Version"]:
            return normalise(headers["Name"]), headers["Version"]
    except OSError:
        pass
    name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
    return normalise(name), version


def installed_distributions(dest: Path) -> list[tuple[str, str]]:
    """(normalised name, version) of every distribution installed in `dest`, by folder."""
    return [_name_version(d) for d in sorted(dest.glob("*.dist-info"))]


def remove_distributions(dest: Path, names: set[str]) -> list[str]:
    """Remove the named distributions: exactly the files their RECORD lists."""
    removed = []
    for dist_info in sorted(dest.glob("*.dist-info")):
        name, _ = _name_version(dist_info)
        if name in names:
            _remove_recorded(dest, dist_info)
            removed.append(name)
    return sorted(removed)


def _remove_recorded(dest: Path, dist_info: Path) -> None:
    root = dest.resolve()
    record = dist_info / "RECORD"
    lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
    rows = list(csv.reader(lines))
    parents = set()
    for row in rows:
        path = (dest / row[0]).resolve() if row and row[0] else None
        if path and path.is_relative_to(root) and path != root and path.is_file():
            path.unlink()
            parents.update(p for p in path.parents if p.is_relative_to(root) and p != root)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    shutil.rmtree(dist_info, ignore_errors=True)

