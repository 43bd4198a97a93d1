"""Path safety for the build file's paths: nothing a build packages may lie outside the repository.

`normalise_path` refuses, lexically, absolute paths, `..` escapes, backslashes, NUL and
`.git`. `resolve_in_repo` then follows the path on disk and refuses any symlink on the way
that points outside the repository; `iter_files` walks what it found under the same rule,
and `collect_files` lists what goes into one component's zip.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from builder.errors import SpecError
from builder.schema import format_path

if TYPE_CHECKING:
    from builder.spec import FunctionSpec, LayerSpec, Spec

_GLOB_CHARS = re.compile(r"[*?\[]")


def normalise_path(value: str, key: str, base: str, *, file: str, line: int | None = None) -> str:
    """`value` as a normalised relative posix path ("." for the base itself), or SpecError."""
    problem = None
    if "\x00" in value:
        problem = "contains a NUL character"
    elif "\\" in value:
        problem = "contains a backslash; use forward slashes (/)"
    elif value.startswith("/"):
        problem = f"is an absolute path; paths are relative to {base}"
    norm = posixpath.normpath(value) if value else "."
    if problem is None and (norm == ".." or norm.startswith("../")):
        problem = f"points outside {base}"
    if problem is None and ".git" in PurePosixPath(norm).parts:
        problem = "is inside .git, which is never packaged"
    if problem:
        raise SpecError(f"{key}: {value!r} {problem}", file=file, key=key, line=line)
    return norm


def resolve_in_repo(repo_root: Path, relative: str, *, file: str, key: str,
                    line: int | None = None, must_exist: bool = True) -> Path:
    """The real path of `relative` inside the repository, or SpecError.

    Refuses absolute paths, `..` escapes and any symlink on the way that points outside
    the repository; with `must_exist`, a path that is not there.
    """
    norm = normalise_path(relative, key, "the repository", file=file, line=line)
    root = Path(repo_root).resolve()
    current = root
    for part in PurePosixPath(norm).parts:
        current = current / part
        if current.is_symlink():
            shown = current.relative_to(root).as_posix()
            current = _follow_link(current, root, _where(shown, relative), file, key, line)
    if must_exist and not current.exists():
        hint = "entries are paths, not glob patterns" if _GLOB_CHARS.search(relative) else None
        raise SpecError(f"{key}: {relative!r} not found", file=file, key=key, line=line, hint=hint)
    return current


def _where(shown: str, relative: str) -> str:
    norm = posixpath.normpath(relative)
    return repr(shown) if shown == norm else f"{shown!r} (in {relative!r})"


def _follow_link(link: Path, root: Path, shown: str, file: str, key: str,
                 line: int | None) -> Path:
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        target = link.resolve()  # dangling: judged by where it points
    except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13, OSError after
        raise SpecError(f"{key}: {shown} is a symlink loop", file=file, key=key,
                        line=line) from None
    if not target.is_relative_to(root):
        raise SpecError(f"{key}: {shown} is a symlink to {os.readlink(link)!r}, outside the "
                        "repository", file=file, key=key, line=line)
    return target


def iter_files(repo_root: Path, base: Path, *, file: str, key: str,
               line: int | None = None) -> Iterator[tuple[str, Path]]:
    """Every file under `base` (a folder or file in the repository, as resolve_in_repo
    returns) as (path relative to `base`, real path), in name order; a file as ("", path).

    Symlinks inside are followed when they stay in the repository and refused (SpecError
    naming the link) when they point outside, loop or dangle. `.git` folders are skipped.
    """
    root = Path(repo_root).resolve()
    base = Path(base).resolve()
    if not base.is_relative_to(root):
        raise SpecError(f"{key}: {str(base)!r} is outside the repository", file=file, key=key,
                        line=line)
    if base.is_file():
        yield "", base
        return
    walk = _Walk(root, file, key, line)
    yield from walk.directory(base, base.relative_to(root).as_posix(), "", frozenset({base}))


@dataclass
class _Walk:
    root: Path
    file: str
    key: str
    line: int | None

    def directory(self, path: Path, shown: str, rel: str, ancestors: frozenset
                  ) -> Iterator[tuple[str, Path]]:
        with os.scandir(path) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name == ".git":
                continue
            child_rel = f"{rel}/{entry.name}" if rel else entry.name
            child_shown = f"{shown}/{entry.name}" if shown != "." else entry.name
            yield from self.entry(Path(entry.path), child_shown, child_rel, ancestors)

    def entry(self, path: Path, shown: str, rel: str, ancestors: frozenset
              ) -> Iterator[tuple[str, Path]]:
        if path.is_symlink():
            path = _follow_link(path, self.root, repr(shown), self.file, self.key, self.line)
            if not path.exists():
                raise self.error(f"{shown!r} is a broken symlink")
        if path.is_dir():
            if path in ancestors:
                raise self.error(f"{shown!r} is a symlink loop")
            yield from self.directory(path, shown, rel, ancestors | {path})
        elif path.is_file():
            yield rel, path
        else:
            raise self.error(f"{shown!r} is not a regular file or folder")

    def error(self, message: str) -> SpecError:
        return SpecError(f"{self.key}: {message}", file=self.file, key=self.key, line=self.line)


def collect_files(repo_root: Path, spec: Spec, component: str) -> list[tuple[str, Path]]:
    """What goes into the zip of `component` ("function" or a custom layer's key):
    sorted (path in the zip, real path) pairs, `dest_dir` applied, `exclude` left out
    (matched as builder.strip.matches does for every glob of the build file)."""
    from builder.strip import matches

    if component == "function":
        part: FunctionSpec | LayerSpec = spec.function
        prefix, at = "", ("function",)
    else:
        part = spec.layer(component)
        prefix, at = part.dest_dir, ("layers", component)
    found: dict[str, Path] = {}
    for index, entry in enumerate(part.files):
        key = format_path((*at, "files", index))
        line = spec.line_of(key)
        real = resolve_in_repo(repo_root, join_path(part.source_dir, entry), file=spec.file,
                               key=key, line=line)
        for rel, path in iter_files(repo_root, real, file=spec.file, key=key, line=line):
            name = join_path(prefix, join_path(entry, rel))
            if not matches(name, part.exclude):
                found.setdefault(name, path)
    return sorted(found.items())


def join_path(base: str, rel: str) -> str:
    """`rel` under `base`, both relative posix paths where "" and "." mean the base itself."""
    if not rel or rel == ".":
        return base
    return rel if base in ("", ".") else f"{base}/{rel}"

