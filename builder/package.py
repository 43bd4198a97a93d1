"""Reproducible zips and the numbers Lambda reports about them.

The same files give byte-identical zips on every run: entries sorted, timestamps fixed,
permissions normalised (0644, or 0755 for executables), no host uid/gid or extra fields.
So the base64 sha256 that Lambda calls CodeSha256 identifies content, and comparing it
with what AWS holds tells whether anything needs publishing.
"""
from __future__ import annotations

import base64
import hashlib
import os
import stat
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.errors import PackageError

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
_SKIP_DIRS = {"__pycache__", ".git"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Entry:
    """One file going into a zip: its name inside the zip and where it is read from."""

    arcname: str
    path: Path
    executable: bool = False


@dataclass(frozen=True)
class ZipStats:
    code_sha256: str  # base64 of the sha256 of the zip's bytes, as Lambda reports it
    sha256_hex: str
    size: int
    unzipped_size: int
    files: int


def code_sha256_of(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def file_code_sha256(path: Path) -> tuple[str, str]:
    """(base64, hex) sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii"), digest.hexdigest()


def walk_entries(base: Path, prefix: str = "", *, skip=None,
                 bytecode: bool = False) -> list[Entry]:
    """Every regular file below `base` (symlinks followed) as entries named prefix/relative.

    `skip(arcname)` may reject entries; .git is always left out, and so are __pycache__ and
    *.pyc unless `bytecode` (for a tree compiled on purpose, see `compile_bytecode`).
    """
    skip_dirs = {".git"} if bytecode else _SKIP_DIRS
    skip_suffixes = () if bytecode else _SKIP_SUFFIXES
    if base.is_file():
        name = _join(prefix, base.name) if prefix else base.name
        return [] if skip and skip(name) else [entry_for(name, base)]
    entries = []
    for directory, dirnames, filenames in os.walk(base, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        rel_dir = Path(directory).relative_to(base).as_posix()
        for filename in sorted(filenames):
            if skip_suffixes and filename.endswith(skip_suffixes):
                continue
            rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
            arcname = _join(prefix, rel)
            if skip and skip(arcname):
                continue
            path = Path(directory, filename)
            if path.is_file():
                entries.append(entry_for(arcname, path))
    return entries


def _join(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def entry_for(arcname: str, path: Path) -> Entry:
    mode = path.stat().st_mode
    return Entry(arcname, path, bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)))


def _zipinfo(entry: Entry, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(entry.arcname, date_time=FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so that the mode bits below are honoured
    mode = 0o755 if entry.executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.file_size = size
    return info


def _compress(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def make_zip(entries: Sequence[Entry], dest: Path, *, threads: int | None = None,
             level: int = COMPRESS_LEVEL) -> ZipStats:
    """Write `entries` to `dest` reproducibly; compression runs on several threads
    (zlib releases the GIL) while the archive is written in sorted order. The deflate
    `level` is part of the bytes: lambda3 always uses COMPRESS_LEVEL, so that the same
    content gives the same CodeSha256 (other levels are for measuring)."""
    ordered = _sorted_unique(entries)
    threads = threads or zip_threads()
    dest.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        compressed_entries = pool.map(lambda entry: _read_and_compress(entry, level), ordered)
        for entry, (data, compressed) in zip(ordered, compressed_entries, strict=True):
            unzipped += len(data)
            _write_precompressed(archive, _zipinfo(entry, len(data)), data, compressed)
    code_sha, hex_sha = file_code_sha256(dest)
    return ZipStats(code_sha, hex_sha, dest.stat().st_size, unzipped, len(ordered))


def zip_threads() -> int:
    """LAMBDA3_ZIP_THREADS, else one per CPU (at most 8)."""
    configured = os.environ.get("LAMBDA3_ZIP_THREADS", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else min(
        8, os.cpu_count() or 1)


def _sorted_unique(entries: Iterable[Entry]) -> list[Entry]:
    by_name: dict[str, Entry] = {}
    for entry in entries:
        previous = by_name.get(entry.arcname)
        if previous is not None and previous.path != entry.path:
            raise PackageError(
                f"two files would be stored as {entry.arcname!r}: {previous.path} and {entry.path}"
            )
        by_name[entry.arcname] = entry
    return [by_name[name] for name in sorted(by_name)]


def _read_and_compress(entry: Entry, level: int) -> tuple[bytes, bytes]:
    data = entry.path.read_bytes()
    return data, _compress(data, level)


def _write_precompressed(archive: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes,
                         compressed: bytes) -> None:
    """Store already-deflated bytes: same bytes zipfile itself would write at this level."""
    info.CRC = zlib.crc32(data)
    info.compress_size = len(compressed)
    info.header_offset = archive.fp.tell()
    archive.fp.write(info.FileHeader(zip64=None))
    archive.fp.write(compressed)
    archive.start_dir = archive.fp.tell()
    archive.filelist.append(info)
    archive.NameToInfo[info.filename] = info
    archive._didModify = True  # noqa: SLF001 - zipfile has no public API for precompressed data


def zip_stats(path: Path) -> ZipStats:
    """Stats of an existing zip (used for cached artifacts)."""
    code_sha, hex_sha = file_code_sha256(path)
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
    return ZipStats(code_sha, hex_sha, path.stat().st_size, sum(i.file_size for i in infos),
                    len(infos))
