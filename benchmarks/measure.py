"""Looking at a build result the same way whichever tool made it.

A result is a set of directories as Lambda would lay them out: the task root (the function's
code) and the layer directories that end up on sys.path (`/opt/python`). From them:
sizes and file counts, the top-level modules each installed distribution provides, whether
every one of them imports in a fresh interpreter that sees only the result (plus the SDK
the runtime provides), and whether every wheel's tags are loadable on the target.
"""
from __future__ import annotations

import csv
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from builder.runtimes import PROVIDED_PACKAGES, Target

try:
    from builder.wheels import incompatible_distributions
except ImportError:  # before builder.wheels existed
    from builder.install import incompatible_distributions

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_MODULES = {"bin", "__pycache__", "tests", "test"}


@dataclass
class Layout:
    """Where a result's files are: the function's directory and the layer directories on
    sys.path, in Lambda's order; `roots` are everything that counts towards its size."""

    task: Path
    site_dirs: list[Path]
    roots: list[Path] = field(default_factory=list)

    @property
    def sys_path(self) -> list[Path]:
        return [self.task, *self.site_dirs]


def tree_stats(roots: list[Path]) -> tuple[int, int]:
    """(files, bytes) of every regular file below `roots`."""
    files = size = 0
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = Path(directory, name)
                if path.is_file() and not path.is_symlink():
                    files += 1
                    size += path.stat().st_size
    return files, size


def zip_tree(root: Path, dest: Path) -> int:
    """Zip everything below `root` (deflate level 6, as zip -r does); returns the size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for directory, dirnames, names in os.walk(root):
            dirnames.sort()
            for name in sorted(names):
                path = Path(directory, name)
                if path.is_file():
                    archive.write(path, path.relative_to(root).as_posix())
    return dest.stat().st_size


def zip_with_binary(root: Path, dest: Path) -> int:
    """`cd root && zip -r -q dest .` when the zip program exists, else `zip_tree`."""
    zip_program = shutil.which("zip")
    if not zip_program:
        return zip_tree(root, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([zip_program, "-r", "-q", "-X", str(dest.resolve()), "."], cwd=root,
                   check=True)
    return dest.stat().st_size


def unzip(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(dest)
    return dest


def top_level_names(site_dir: Path) -> list[str]:
    """Importable top-level names of every distribution in `site_dir`: top_level.txt when
    the dist-info has one, else the first component of each RECORD path."""
    names: set[str] = set()
    for dist_info in sorted(site_dir.glob("*.dist-info")):
        top_level = dist_info / "top_level.txt"
        if top_level.is_file():
            candidates = top_level.read_text().split()
        else:
            candidates = _record_roots(dist_info)
        for name in candidates:
            name = name.strip().replace("/", ".")
            if _IDENTIFIER.match(name) and name not in _NOT_MODULES and \
                    _exists(site_dir, name):
                names.add(name)
    return sorted(names)


def _record_roots(dist_info: Path) -> list[str]:
    record = dist_info / "RECORD"
    if not record.is_file():
        return []
    roots = []
    with open(record, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if not row or row[0].startswith(("..", "/")):
                continue
            first = row[0].split("/", 1)[0]
            if "/" in row[0]:
                roots.append(first)
            elif first.endswith((".py", ".so")):
                roots.append(first.split(".", 1)[0])  # a module or extension at the top
    return roots


def _exists(site_dir: Path, name: str) -> bool:
    if (site_dir / name).is_dir() or (site_dir / f"{name}.py").is_file():
        return True
    return any(site_dir.glob(f"{name}.*.so")) or any(site_dir.glob(f"{name}.abi3.so"))


def distributions(site_dir: Path) -> dict[str, str]:
    """Normalised name -> version of every distribution installed in `site_dir`."""
    found = {}
    for dist_info in sorted(site_dir.glob("*.dist-info")):
        metadata = dist_info / "METADATA"
        if not metadata.is_file():
            continue
        headers = email.parser.HeaderParser().parsestr(
            metadata.read_text(encoding="utf-8", errors="replace"))
        if headers["Name"] and headers["Version"]:
            found[re.sub(r"[-_.]+", "-", headers["Name"]).lower()] = headers["Version"]
    return found


def loadable(layout: Layout, target: Target) -> dict:
    """Whether every installed wheel's tags are ones the target's Python and glibc load."""
    bad = []
    for site in layout.site_dirs + [layout.task]:
        versions = distributions(site)
        bad += [f"{name} {versions.get(name, '?')}"
                for name in incompatible_distributions(site, target)]
    return {"ok": not bad, "bad": sorted(set(bad))}


_CHECK_SCRIPT = r"""
import importlib, json, sys, traceback
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["path"]
failed = {}
for name in spec["names"]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"[:300]
handler = None
if spec["handler"]:
    module, _, function = spec["handler"].rpartition(".")
    try:
        answer = getattr(importlib.import_module(module), function)(spec["event"], None)
        handler = {"ok": isinstance(answer, dict) and answer.get("statusCode") == 200,
                   "answer": str(answer)[:300]}
    except BaseException as exc:
        handler = {"ok": False, "answer": f"{type(exc).__name__}: {exc}"[:300]}
print(json.dumps({"failed": failed, "handler": handler}))
"""


def check_imports(layout: Layout, python: str, runtime_dir: Path | None, *,
                  handler: str | None = None, event: dict | None = None,
                  timeout: float = 180) -> dict:
    """Import every top-level module of the result, then call the handler once, in
    `python -I -S` whose sys.path is only the result (and the runtime's SDK dir)."""
    names = sorted({n for site in layout.site_dirs + [layout.task]
                    for n in top_level_names(site)})
    path = [str(p) for p in layout.sys_path] + ([str(runtime_dir)] if runtime_dir else [])
    spec = {"path": path, "names": names, "handler": handler, "event": event or {}}
    proc = subprocess.run([python, "-I", "-S", "-B", "-c", _CHECK_SCRIPT, json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=layout.task, check=False)
    if proc.returncode != 0:
        return {"ok": False, "checked": len(names), "failed": {"*": proc.stderr[-500:]},
                "handler": None}
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    handler_ok = answer["handler"] is None or answer["handler"]["ok"]
    return {"ok": not answer["failed"] and handler_ok, "checked": len(names),
            "failed": answer["failed"], "handler": answer["handler"]}


def ensure_runtime_sdk(cache: Path, python: str) -> Path:
    """The SDK closure the Lambda runtime provides, at the pinned versions, installed once:
    it stands in for /var/runtime in the import checks (every tool gets the same)."""
    pins = sorted(f"{name}=={version}" for name, version in PROVIDED_PACKAGES.items())
    dest = cache / "runtime-sdk"
    stamp = dest / ".complete"
    if stamp.is_file() and stamp.read_text() == "\n".join(pins):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    proc = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--no-deps", "--no-compile", "--target", str(dest), *pins],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"installing the runtime SDK failed: {proc.stderr[-1000:]}")
    stamp.write_text("\n".join(pins))
    return dest


def find_python(version: str) -> str | None:
    """A python of `version` ("3.11"): on PATH, or this interpreter if it is one."""
    found = shutil.which(f"python{version}")
    if found:
        return found
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return sys.executable if here == version else None
