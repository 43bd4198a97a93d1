"""The directories a function's child process imports from, unpacked once and cached.

Under the invoker's state dir: the code zip unpacked into a task dir per CodeSha256
(``code/``); the layers unpacked in the function's order into one opt dir per list of layer
CodeSha256s (``opt/``), later layers overwriting earlier ones; and one runtime dir holding
only the SDK closure Lambda provides (``runtime/``), hard-linked or copied once from the
host's installed distributions. Each is built in a staging dir and renamed into place, so
a half-unpacked dir is never used.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tempfile
import threading
import zipfile
from importlib import metadata
from pathlib import Path

from builder.runtimes import PROVIDED_PACKAGES
from lambda3.embedded.moto_functions import Function


class CodeCache:
    """The task, opt and runtime dirs of functions, kept under `state_dir`."""

    def __init__(self, state_dir: Path):
        self._state = Path(state_dir)
        self._lock = threading.Lock()

    def directories(self, fn: Function) -> tuple[Path, Path, Path]:
        """(task, opt, runtime) dirs of `fn`, unpacked now if not cached; BadZipFile if a
        zip is not one."""
        task = self._unpacked("code", _cache_key(fn.code_sha, fn.code), [fn.code])
        shas = "\n".join(_cache_key(sha, blob) for sha, blob in fn.layers)
        opt_key = hashlib.sha256(shas.encode()).hexdigest()[:32]
        opt = self._unpacked("opt", opt_key, [blob for _, blob in fn.layers])
        return task, opt, self._runtime_dir()

    def _unpacked(self, kind: str, key: str, blobs: list[bytes]) -> Path:
        dest = self._state / kind / key
        with self._lock:
            if not dest.is_dir():
                dest.parent.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".partial-"))
                try:
                    for blob in blobs:
                        _unzip(blob, staging)
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                staging.rename(dest)
        return dest

    def _runtime_dir(self) -> Path:
        dest = self._state / "runtime"
        with self._lock:
            if not dest.is_dir():
                staging = Path(tempfile.mkdtemp(dir=self._state, prefix=".runtime-"))
                for name in PROVIDED_PACKAGES:
                    _copy_distribution(name, staging)
                staging.rename(dest)
        return dest


def _cache_key(sha_b64: str, blob: bytes) -> str:
    try:
        return base64.b64decode(sha_b64, validate=True).hex() or hashlib.sha256(blob).hexdigest()
    except ValueError:
        return hashlib.sha256(blob).hexdigest()


def _unzip(blob: bytes, dest: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for info in archive.infolist():
            target = archive.extract(info, dest)
            if not info.is_dir():
                os.chmod(target, 0o755 if (info.external_attr >> 16) & 0o111 else 0o644)


def _copy_distribution(name: str, dest: Path) -> None:
    """Hard-link (or copy) one installed distribution's files, dist-info included."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return
    root = os.path.realpath(dist.locate_file(""))
    for entry in dist.files or ():
        source = os.path.normpath(os.path.join(root, str(entry)))
        if not source.startswith(root + os.sep) or not os.path.isfile(source):
            continue  # scripts outside site-packages, files the RECORD lists but lacks
        target = os.path.join(dest, os.path.relpath(source, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
