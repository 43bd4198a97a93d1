"""Finding a CPython of a given version on this machine, to build sdists for a target.

A source distribution is built by running its build backend in a Python; a wheel built by
the target's own version (`python3.12` for a python3.12 runtime) is what the runtime would
build, where this machine's Python may not be. Looked for, in order: this interpreter, the
Pythons uv knows (managed ones and those on PATH; nothing is downloaded), pyenv's versions,
then `python3.X` on PATH. Each candidate is run once to confirm its version; the answer is
kept for the life of the process.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from builder.process import ProcessError, run

log = logging.getLogger(__name__)

_CHECK = "import sys, platform; print(platform.python_implementation(), *sys.version_info[:2])"
_TIMEOUT = 10.0
_found: dict[str, str | None] = {}


def find_python(version: str, uv: str | None = None) -> str | None:
    """The path of a CPython `version` ("3.12") interpreter, or None when there is none."""
    if version not in _found and f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        _found[version] = sys.executable  # this interpreter: nothing to run to know
    if version not in _found:
        _found[version] = next((path for path in _candidates(version, uv)
                                if _is_version(path, version)), None)
        log.debug("python %s for building sdists: %s", version, _found[version] or "none found")
    return _found[version]


def _candidates(version: str, uv: str | None):
    if uv:
        found = _run([uv, "python", "find", "--no-python-downloads", "--no-project",
                      "--no-config", version])
        if found:
            yield found.splitlines()[-1].strip()
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if root.is_dir():
        versions = sorted(root.glob(f"{version}.*"), key=_patch, reverse=True)
        for folder in versions:
            yield str(folder / "bin" / f"python{version}")
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield on_path


def _patch(folder: Path) -> int:
    last = folder.name.split(".")[-1]
    return int(last) if last.isdigit() else -1


def _is_version(path: str, version: str) -> bool:
    if not path or not os.access(path, os.X_OK):
        return False
    answer = _run([path, "-I", "-S", "-c", _CHECK])
    return answer == f"CPython {version.replace('.', ' ')}"


def _run(argv: list[str]) -> str | None:
    """What `argv` prints, stripped; None when it fails (a pyenv shim for a version that is
    not selected exits 127)."""
    try:
        done = run(argv, cwd=Path("/"), timeout=_TIMEOUT)
    except (OSError, ProcessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
