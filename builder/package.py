"""Reproducible zips and the numbers Lambda reports about them.

The same files give byte-identical zips on every run: entries sorted, timestamps fixed,
permissions normalised (0644, or 0755 for executables), no host uid/gid or extra fields.
So the base64 sha256 that Lambda calls CodeSha256 identifies content, and comparing it
with what AWS holds tells whether anything needs publishing.

Bounded: sizes are taken from the file system before anything is read, so a set over
Lambda's unzipped limit (or one the disk cannot hold) is refused up front; files are read
and compressed in chunks, never whole, and file names Lambda could not store are refused.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder import limits
from builder.errors import Lambda3Error, LimitError, PackageError

log = logging.getLogger(__name__)

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
CHUNK = 1 << 20  # bytes read and compressed at a time
SMALL_FILE = 4 << 20  # files up to this size are compressed on the thread pool, whole
SPOOL_MEMORY = 16 << 20  # a larger file's deflated bytes past this go to a temporary file
BATCH_BYTES = 64 << 20  # at most this much read ahead for the thread pool
MAX_NAME_BYTES = 255  # one path component, as Linux (and so Lambda) stores it
_ZIP_OVERHEAD = 128  # local header and central directory entry per file, roughly
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
             level: int = COMPRESS_LEVEL,
             max_unzipped: int | None = limits.UNZIPPED_LIMIT,
             large_on_pool: bool = True) -> ZipStats:
    """Write `entries` to `dest` reproducibly; files are compressed on several threads
    (zlib releases the GIL) while the archive is written in sorted order, large ones into
    bounded spools. The deflate `level` is part of the bytes: lambda3 always uses
    COMPRESS_LEVEL, so that the same content gives the same CodeSha256 (other levels, and
    `large_on_pool=False`, the writer deflating large files itself, are for measuring).
    Over `max_unzipped` bytes (from the file sizes) is a LimitError and too little free
    space a PackageError, both before anything is read."""
    ordered = _sorted_unique(entries)
    sizes = [_size_of(entry) for entry in ordered]
    if max_unzipped is not None:
        check_unzipped(ordered, sizes, max_unzipped, dest.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ensure_free_space(dest.parent, sum(sizes) + _ZIP_OVERHEAD * (len(sizes) + 1),
                      f"writing {dest.name}")
    try:
        threads = max(1, threads or zip_threads())
        unzipped = _write_zip(ordered, sizes, dest, threads, level,
                              ahead=threads if large_on_pool else 0)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(dest.parent, sum(sizes), f"writing {dest.name}") from None
        raise
    code_sha, hex_sha = file_code_sha256(dest)
    return ZipStats(code_sha, hex_sha, dest.stat().st_size, unzipped, len(ordered))


def _write_zip(ordered: list[Entry], sizes: list[int], dest: Path, threads: int,
               level: int, *, ahead: int = 1) -> int:
    """Every file is deflated on the pool, large ones (over SMALL_FILE) first and into
    spooled buffers, at most `ahead` of them ahead of the writer: the biggest file is then
    compressed while the rest are, on every core, instead of on the writer's (`ahead=0`)."""
    unzipped = 0
    sized = list(zip(ordered, sizes, strict=True))
    progress = _ZipProgress(dest.name, sum(sizes))
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            ThreadPoolExecutor(max_workers=threads) as pool:
        large = _LargeFiles(pool, [(e, n) for e, n in sized if n > SMALL_FILE], ahead,
                            level, dest.parent)
        for batch in _batches(sized, threads):
            small = {entry.arcname: pool.submit(_read_and_compress, entry, size, level)
                     for entry, size in batch if size <= SMALL_FILE}
            for entry, size in batch:
                if entry.arcname in small:
                    data, compressed = small.pop(entry.arcname).result()
                    _write_precompressed(archive, _zipinfo(entry, len(data)), data, compressed)
                else:
                    _write_spooled(archive, _zipinfo(entry, size), entry, large.take(entry))
                unzipped += size
                progress.advance(unzipped)
    return unzipped


class _ZipProgress:
    """A log line at each quarter of a large zip (PROGRESS_BYTES unzipped or more), so a
    person watching a long package step sees it move."""

    PROGRESS_BYTES = 32 * 1024 * 1024

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total = name, total
        self.next_quarter = 1 if total >= self.PROGRESS_BYTES else 5

    def advance(self, done: int) -> None:
        while self.next_quarter <= 4 and done * 4 >= self.total * self.next_quarter:
            log.info("zipping %s: %d%% of %s", self.name, self.next_quarter * 25,
                     limits.human(self.total))
            self.next_quarter += 1


class _LargeFiles:
    """Deflates the large files on the pool in archive order, `ahead` at a time."""

    def __init__(self, pool: ThreadPoolExecutor, sized: list[tuple[Entry, int]], ahead: int,
                 level: int, spool_dir: Path) -> None:
        self.pool, self.level, self.spool_dir = pool, level, spool_dir
        self.running: dict[str, Future] = {}
        self.pending, self.ahead = list(sized), ahead
        for _ in range(ahead):
            self._submit_next()

    def _submit_next(self) -> None:
        if self.pending:
            entry, size = self.pending.pop(0)
            self.running[entry.arcname] = self.pool.submit(
                _compress_to_spool, entry, size, self.level, self.spool_dir)

    def take(self, entry: Entry) -> tuple[int, int, tempfile.SpooledTemporaryFile]:
        job = self.running.pop(entry.arcname, None)
        if job is None:  # ahead=0: the writer deflates it
            entry, size = self.pending.pop(0)
            return _compress_to_spool(entry, size, self.level, self.spool_dir)
        result = job.result()
        if self.ahead:
            self._submit_next()
        return result


def _compress_to_spool(entry: Entry, size: int, level: int, spool_dir: Path
                       ) -> tuple[int, int, tempfile.SpooledTemporaryFile]:
    """(crc, compressed size, the deflated bytes in memory or, past SPOOL_MEMORY, a file
    in `spool_dir`), read and deflated chunk by chunk."""
    if size >= zipfile.ZIP64_LIMIT:
        raise PackageError(f"{_shown(entry.arcname)} is too large for a Lambda zip")
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, dir=spool_dir)
    compressor, crc, read = zlib.compressobj(level, zlib.DEFLATED, -15), 0, 0
    try:
        with open(entry.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                crc, read = zlib.crc32(chunk, crc), read + len(chunk)
                if read > size:
                    raise _changed(entry)
                spool.write(compressor.compress(chunk))
        spool.write(compressor.flush())
        if read != size:
            raise _changed(entry)
    except BaseException:
        spool.close()
        raise
    return crc, spool.tell(), spool


def _write_spooled(archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: Entry,
                   spooled: tuple[int, int, tempfile.SpooledTemporaryFile]) -> None:
    """Store a large file deflated on the pool: the same bytes as `_write_precompressed`
    gives for the file read whole (deflate's output does not depend on the chunking)."""
    crc, compressed_size, spool = spooled
    with spool:
        info.CRC, info.compress_size = crc, compressed_size
        info.header_offset = archive.fp.tell()
        archive.fp.write(info.FileHeader(zip64=False))
        spool.seek(0)
        shutil.copyfileobj(spool, archive.fp, CHUNK)
    archive.start_dir = archive.fp.tell()
    archive.filelist.append(info)
    archive.NameToInfo[info.filename] = info
    archive._didModify = True  # noqa: SLF001 - see _write_precompressed


def _batches(sized: list[tuple[Entry, int]], threads: int
             ) -> Iterator[list[tuple[Entry, int]]]:
    """Runs of entries whose small files together stay under BATCH_BYTES."""
    batch: list[tuple[Entry, int]] = []
    pending = 0
    for entry, size in sized:
        batch.append((entry, size))
        pending += size if size <= SMALL_FILE else 0
        if pending >= BATCH_BYTES or len(batch) >= 64 * threads:
            yield batch
            batch, pending = [], 0
    if batch:
        yield batch


def _size_of(entry: Entry) -> int:
    try:
        return os.stat(entry.path).st_size
    except OSError as exc:
        raise PackageError(f"{_shown(entry.arcname)}: cannot be read ({exc.strerror})") from None


def check_unzipped(entries: Sequence[Entry], sizes: Sequence[int], limit: int,
                   what: str) -> None:
    """LimitError when the files add up to more than `limit`, naming the biggest."""
    total = sum(sizes)
    if total <= limit:
        return
    biggest = sorted(zip(sizes, (e.arcname for e in entries), strict=True), reverse=True)[:3]
    named = ", ".join(f"{_shown(name)} {limits.human(size)}" for size, name in biggest)
    raise LimitError(f"{what}: the files add up to {limits.human(total)} unzipped, over "
                     f"Lambda's {limits.human(limit)} limit (biggest: {named})",
                     hint="leave large files out with `exclude` or move them to S3 or EFS")


def ensure_free_space(directory: Path, needed: int, what: str,
                      error: type[Lambda3Error] = PackageError) -> None:
    """`error` with both figures when `directory`'s file system has less than `needed`."""
    free = _free(directory)
    if free < needed:
        raise no_space(directory, needed, what, error, free=free)


def _free(directory: Path) -> int:
    """Free bytes on the file system `directory` is (or will be made) on."""
    existing = Path(directory).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def no_space(directory: Path, needed: int, what: str,
             error: type[Lambda3Error] = PackageError, *, free: int | None = None
             ) -> Lambda3Error:
    free = _free(directory) if free is None else free
    return error(f"not enough disk space for {what}: about {limits.human(needed)} needed, "
                 f"{limits.human(free)} free in the work dir",
                 hint="free space in the work dir, or give the builder more ephemeral "
                      "storage (Lambda: EphemeralStorage, up to 10,240 MB)")


def zip_threads() -> int:
    """LAMBDA3_ZIP_THREADS, else one per CPU (at most 8)."""
    configured = os.environ.get("LAMBDA3_ZIP_THREADS", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else min(
        8, os.cpu_count() or 1)


def _sorted_unique(entries: Iterable[Entry]) -> list[Entry]:
    by_name: dict[str, Entry] = {}
    for entry in entries:
        _check_name(entry.arcname)
        previous = by_name.get(entry.arcname)
        if previous is not None and previous.path != entry.path:
            raise PackageError(
                f"two files would be stored as {entry.arcname!r}: {previous.path} and {entry.path}"
            )
        by_name[entry.arcname] = entry
    return [by_name[name] for name in sorted(by_name)]


def _check_name(arcname: str) -> None:
    """PackageError for a name a zip (UTF-8) or Lambda's file system cannot hold."""
    try:
        encoded = arcname.encode("utf-8")
    except UnicodeEncodeError:
        raise PackageError(f"file name '{_shown(arcname)}' is not valid UTF-8",
                           hint="rename the file, or leave it out with `exclude`") from None
    if any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise PackageError(f"file name '{_shown(arcname)}' has a part longer than "
                           f"{MAX_NAME_BYTES} bytes", hint="shorten it")


def _shown(name: str) -> str:
    """A file name as text, undecodable bytes as \\x escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _read_and_compress(entry: Entry, size: int, level: int) -> tuple[bytes, bytes]:
    with open(entry.path, "rb") as handle:
        data = handle.read(size + 1)
    if len(data) != size:
        raise _changed(entry)
    return data, _compress(data, level)


def _changed(entry: Entry) -> PackageError:
    return PackageError(f"{_shown(entry.arcname)} changed size while it was being zipped")


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
