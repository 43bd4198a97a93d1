#!/usr/bin/env python3
"""Set up a virtual environment for lambda3 and run the demo or the test suite.

    python3 dev.py demo     # the whole flow on an embedded AWS emulator, no account needed
    python3 dev.py test     # the whole test suite
    python3 dev.py lambda3 ARGS...   # any lambda3 command inside the environment

Needs only python3 (3.10 or later). The environment lives in .venv and is
reinstalled when pyproject.toml changes. `test` also runs the LocalStack tier when a
Python 3.12+ is on the machine (LAMBDA3_LOCALSTACK=0 skips it; see docs/testing.md).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".lambda3-installed"


def _venv_python() -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / "python"


def ensure_environment() -> Path:
    """Create .venv and install lambda3 with its dev extras, once per pyproject.toml."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    python = _venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return python
    if not python.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing lambda3 and its dev tools into .venv", flush=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(digest)
    return python


def _localstack_tier(python: Path) -> None:
    """The LocalStack tier (tests/localstack) runs when a Python 3.12+ is on this machine:
    its environment is made once; LAMBDA3_LOCALSTACK=0 skips the tier, =1 insists on it."""
    if os.environ.get("LAMBDA3_LOCALSTACK") in ("0", "1"):
        return
    script = str(ROOT / "scripts" / "localstack.py")
    found = subprocess.run([str(python), script, "python"], capture_output=True, text=True)
    if found.returncode != 0:
        print(f"dev.py: the LocalStack tier is skipped: {found.stderr.strip()}", flush=True)
        os.environ["LAMBDA3_LOCALSTACK"] = "0"
        return
    print("dev.py: preparing the LocalStack tier (.localstack-venv)", flush=True)
    subprocess.run([str(python), script, "install"], check=True)
    os.environ["LAMBDA3_LOCALSTACK"] = "1"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "lambda3"}:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    python = ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "test":
        _localstack_tier(python)
        args = [str(python), "-m", "pytest", "-n", "auto", "--dist", "loadgroup", *rest]
    elif command == "demo":
        args = [str(python), "-m", "lambda3", "demo", *rest]
    else:
        args = [str(python), "-m", "lambda3", *rest]
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
