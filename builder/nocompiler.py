"""Building sdists for another platform without a compiler, and knowing who wanted one.

A wheel compiled on this machine is tagged `linux_x86_64` and linked against this
machine's glibc: a cross-platform target never ships it. So cross-platform source builds
run with every C, C++, Fortran and Rust compiler replaced by a script that fails at once
and notes who called it (the build's folder and arguments). A package whose C code is
optional (markupsafe 1.1.1, wrapt, PyYAML) then builds pure Python, as it does where no
compiler exists; one that needs its C code fails in seconds instead of minutes, and the
notes tell that failure from a build error of the package's own. The switches some
packages read to skip their extensions are set too.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_TOOLS = ("cc", "gcc", "c++", "g++", "clang", "clang++", "cpp", "gfortran", "f77", "f95",
          "cargo", "rustc", "nvcc")
_VARIABLES = ("CC", "CXX", "CPP", "LDSHARED", "LDCXXSHARED", "FC", "F77", "F90", "CARGO", "RUSTC")
# Switches packages read to build without their C extensions.
PURE_PYTHON_SWITCHES = {
    "AIOHTTP_NO_EXTENSIONS": "1", "FROZENLIST_NO_EXTENSIONS": "1",
    "MULTIDICT_NO_EXTENSIONS": "1", "PROPCACHE_NO_EXTENSIONS": "1",
    "YARL_NO_EXTENSIONS": "1", "WRAPT_INSTALL_EXTENSIONS": "false",
    "DISABLE_SQLALCHEMY_CEXT": "1", "MSGPACK_PUREPYTHON": "1", "DISABLE_SPEEDUPS": "1",
}
_SCRIPT = """#!/bin/sh
printf '%s\\t%s\\t%s\\n' "$(basename "$0")" "$PWD" "$*" >> {log}
echo "lambda3: no compiler in a cross-platform build (code compiled here would not load)" >&2
exit 1
"""


class NoCompiler:
    """A folder of failing compilers under `work`, and the log of their calls."""

    def __init__(self, work: Path) -> None:
        self.bin = work / "no-compiler"
        self.log = work / "compiler-calls.log"
        self.bin.mkdir(exist_ok=True)
        script = self.bin / "no-compiler"
        script.write_text(_SCRIPT.format(log=_quoted(self.log)), encoding="utf-8")
        script.chmod(0o755)
        for tool in _TOOLS:
            link = self.bin / tool
            if not link.exists():
                link.symlink_to(script.name)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` with the failing compilers first on PATH and named by every variable
        build tools read, plus the pure-Python switches."""
        script = str(self.bin / "no-compiler")
        env = {**base, **PURE_PYTHON_SWITCHES, **dict.fromkeys(_VARIABLES, script)}
        env["PATH"] = os.pathsep.join([str(self.bin), base.get("PATH", os.defpath)])
        return env

    def callers(self, names: dict[str, Path | None]) -> set[str]:
        """Which of `names` (normalised name -> local folder, if any) ran a compiler: the
        folder a build ran in names the package (uv's `.../markupsafe/1.1.1/...` or
        `markupsafe-1.1.1`, or the local folder)."""
        try:
            calls = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return set()
        found = set()
        for call in calls:
            parts = call.split("\t")
            folder = Path(parts[1]) if len(parts) > 1 else Path()
            for name, local in names.items():
                if (local and folder.is_relative_to(local)) or _names_package(folder, name):
                    found.add(name)
        return found


def _names_package(folder: Path, name: str) -> bool:
    for part in folder.parts:
        normal = re.sub(r"[-_.]+", "-", part).lower()
        rest = normal[len(name) + 1:] if normal.startswith(f"{name}-") else ""
        if normal == name or rest[:1].isdigit():
            return True
    return False


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"
