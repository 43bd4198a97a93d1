"""The seed layer: just the uv installer, for the builder's platform, built on the client.

A Lambda runtime may have neither uv nor pip importable (pip in the runtime is undocumented).
Then the builder cannot install its own toolchain, so bootstrap gives it uv first: the local
uv downloads the pinned uv wheel for the TARGET platform (not this machine's) into
`python/` and zips it reproducibly, `python/bin/uv` kept executable (uv's Python package
finds its binary there: `<target>/uv` -> `<target>/bin/uv`). Once the builder has installed
its toolchain (which includes uv) it detaches the seed again.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from builder.errors import InstallError
from builder.install import Runner, run_command, scrubbed_env, uv_platform
from builder.package import ZipStats, make_zip, walk_entries
from builder.process import ProcessError
from builder.runtimes import Target

_SEED_FILES = re.compile(r"^python/(uv/|uv-[^/]+\.dist-info/|bin/uv$)")


def seed_command(uv: str, target: Target, stage: Path, uv_version: str) -> list[str]:
    return [uv, "pip", "install", "--target", str(stage), "--python-platform",
            uv_platform(target), "--python-version", target.python_version,
            "--only-binary", ":all:", "--no-deps", "--link-mode", "copy", "--no-config",
            f"uv=={uv_version}"]


def build_seed_layer(target: Target, dest: Path, *, uv_version: str, workdir: Path,
                     runner: Runner | None = None, uv: str | None = None) -> ZipStats:
    """Install uv for `target` under workdir and zip it (python/ layout) to `dest`."""
    stage = workdir / "seed-stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    site = stage / "python"
    command = seed_command(uv or local_uv(), target, site, uv_version)
    done = (runner or run_command)(command, scrubbed_env(), workdir)
    if done.returncode != 0:
        raise ProcessError(done.args, done.stderr or done.stdout or "", done.returncode,
                           what="uv", step="seed")
    entries = walk_entries(site, "python", skip=lambda arcname: not _SEED_FILES.match(arcname))
    if not any(entry.arcname == "python/bin/uv" for entry in entries):
        raise InstallError(f"the uv wheel for {target.describe()} has no bin/uv",
                           hint=f"check that uv=={uv_version} has a wheel for that platform")
    return make_zip(entries, dest)


def local_uv() -> str:
    """The uv binary lambda3 itself depends on (its Python package knows where it is)."""
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found:
            return found
        raise InstallError("uv is not installed here", hint="pip install uv") from None
    return find_uv_bin()
