"""Compiling a tree of Python sources to bytecode that can ship in a zip.

Lambda's code and layers are read-only, so Python cannot cache what it compiles there:
without shipped bytecode every cold start compiles every module it imports again. The
.pyc files written here are the ones such a start would use:

- for this interpreter only (`cpython-3XY` in the name), so only a tree built by the
  target runtime itself should be compiled (the builder's toolchain, installed natively);
- `unchecked-hash`: the zip fixes every timestamp to 1980, so timestamp-based .pyc files
  would be stale at once; an unchecked hash is used as is, without reading the source;
- with the file names the code will have where it runs (`/opt/python/...` for a layer), so
  tracebacks show real paths and the bytes do not depend on the build directory;
- in one child process, files in sorted order, with a fixed hash seed: the same sources
  give the same bytes, so the zip stays reproducible.
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from builder.process import run

log = logging.getLogger(__name__)


def compile_bytecode(tree: Path, installed_at: str, *, env: Mapping[str, str] | None = None
                     ) -> int:
    """Compile every .py below `tree` as if `tree` were at `installed_at`; return the number
    of .pyc files now there. A module that does not compile is left as source. The child
    (builder.process) gets `env` (default: this environment) without its secrets."""
    argv = [sys.executable, "-m", "compileall", "-q", "--invalidation-mode",
            "unchecked-hash", "-s", str(tree), "-p", installed_at, str(tree)]
    base = os.environ if env is None else env
    proc = run(argv, env={**base, "PYTHONHASHSEED": "0"}, step="bytecode")
    if proc.returncode != 0:
        failed = [line for line in proc.stdout.splitlines() if line.startswith("***")]
        log.warning("bytecode: %d module(s) did not compile and stay source only: %s",
                    len(failed), "; ".join(failed[:3]) or proc.stderr.strip()[-300:])
    return sum(1 for _ in Path(tree).rglob("*.pyc"))
