"""Path safety for the build file's paths: nothing a build packages may lie outside the repository.

`normalise_path` refuses, lexically, absolute paths, `..` escapes, backslashes, NUL and
`.git`. `resolve_in_repo` then follows the path on disk and refuses any symlink on the way
that points outside the repository; `iter_files` walks what it found under the same rule,
and `collect_files` lists what goes into one component's zip. `matches` tests a path
against the build file's globs in time linear in the path's length, whatever the pattern
(a backtracking regex is exponential in the number of wildcards); a walk visits at most
MAX_ENTRIES files and folders (symlinks inside the repository can repeat a tree).
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from builder.errors import SpecError
from builder.schema import format_path

if TYPE_CHECKING:
    from builder.spec import FunctionSpec, LayerSpec, Spec

_GLOB_CHARS = re.compile(r"[*?\[]")
MAX_ENTRIES = 200_000  # files and folders one component's walk may visit


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


def iter_files(repo_root: Path, base: Path, *, file: str, key: str, line: int | None = None,
               max_entries: int = MAX_ENTRIES) -> Iterator[tuple[str, Path]]:
    """Every file under `base` (a folder or file in the repository, as resolve_in_repo
    returns) as (path relative to `base`, real path), in name order; a file as ("", path).

    Symlinks inside are followed when they stay in the repository and refused (SpecError
    naming the link) when they point outside, loop or dangle. `.git` folders are skipped.
    Visiting more than `max_entries` files and folders is a SpecError.
    """
    root = Path(repo_root).resolve()
    base = Path(base).resolve()
    if not base.is_relative_to(root):
        raise SpecError(f"{key}: {str(base)!r} is outside the repository", file=file, key=key,
                        line=line)
    if base.is_file():
        yield "", base
        return
    walk = _Walk(root, file, key, line, max_entries)
    yield from walk.directory(base, base.relative_to(root).as_posix(), "", frozenset({base}))


@dataclass
class _Walk:
    root: Path
    file: str
    key: str
    line: int | None
    limit: int
    visited: int = 0

    def directory(self, path: Path, shown: str, rel: str, ancestors: frozenset
                  ) -> Iterator[tuple[str, Path]]:
        with os.scandir(path) as scan:  # what is left of the bound, plus one, plus .git
            entries = sorted(islice(scan, self.limit - self.visited + 2),
                             key=lambda entry: entry.name)
        for entry in entries:
            if entry.name == ".git":
                continue
            self.visited += 1
            if self.visited > self.limit:
                raise self.error(f"more than {self.limit} files and folders under "
                                 f"{shown!r} (symlinks repeating a tree?)")
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


def collect_files(repo_root: Path, spec: Spec, component: str, *,
                  max_entries: int = MAX_ENTRIES) -> list[tuple[str, Path]]:
    """What goes into the zip of `component` ("function" or a custom layer's key):
    sorted (path in the zip, real path) pairs, `dest_dir` applied, `exclude` left out
    (matched by `matches`, as every glob of the build file is)."""
    if component == "function":
        part: FunctionSpec | LayerSpec = spec.function
        prefix, at = "", tuple(getattr(spec, "function_at", ("function",)))
    else:
        part = spec.layer(component)
        prefix, at = part.dest_dir, ("layers", component)
    found: dict[str, Path] = {}
    total = 0
    for index, entry in enumerate(part.files):
        key = format_path((*at, "files", index))
        line = spec.line_of(key)
        real = resolve_in_repo(repo_root, join_path(part.source_dir, entry), file=spec.file,
                               key=key, line=line)
        for rel, path in iter_files(repo_root, real, file=spec.file, key=key, line=line,
                                    max_entries=max_entries):
            total += 1
            if total > max_entries:
                raise SpecError(f"{key}: the component lists more than {max_entries} files",
                                file=spec.file, key=key, line=line)
            name = join_path(prefix, join_path(entry, rel))
            if not matches(name, part.exclude):
                found.setdefault(name, path)
    return sorted(found.items())


def join_path(base: str, rel: str) -> str:
    """`rel` under `base`, both relative posix paths where "" and "." mean the base itself."""
    if not rel or rel == ".":
        return base
    return rel if base in ("", ".") else f"{base}/{rel}"



# -- globs -------------------------------------------------------------------------------


def matches(path: str, patterns: Sequence[str]) -> bool:
    """True if `path` (posix, relative) or one of its parent directories matches a glob.

    A pattern without `/` matches a single name at any depth (`*.pyi`, `tests`); one with
    `/` is anchored at the root (`pandas/tests/**`, `botocore/data/ec2`). `*` and `?` stay
    within a name, `**` spans directories, `[...]` is a character class (`[!...]` negated).
    """
    parts = path.strip("/").split("/")
    for pattern in patterns:
        pattern = pattern.strip("/")
        if not pattern:
            continue
        glob = compile_glob(pattern)
        if "/" in pattern:
            if glob.matches_a_prefix(parts):
                return True
        elif any(glob.fullmatch(part) for part in parts):
            return True
    return False


@lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Glob | _RegexGlob:
    """The glob `pattern` compiled (re.error for a bad character class): as a regex when it
    has one wildcard at most (no backtracking to speak of, and faster), else as a `Glob`."""
    glob = Glob(pattern)
    wildcards = sum(kind in ("star", "any") for kind, _ in glob.tokens)
    return _RegexGlob(glob.tokens) if wildcards <= 1 else glob


class _RegexGlob:
    """A glob with at most one wildcard, matched by a regex."""

    _PARTS = {"one": "[^/]", "star": "[^/]*", "any": ".*"}

    def __init__(self, tokens: list[tuple[str, object]]) -> None:
        out, index = [], 0
        while index < len(tokens):
            kind, value = tokens[index]
            if kind == "optional":
                out.append("(?:.*/)?")
                index += 3
                continue
            if kind == "literal":
                out.append(re.escape(str(value)))
            elif kind == "class":
                out.append(value.pattern)  # type: ignore[union-attr]
            else:
                out.append(self._PARTS[kind])
            index += 1
        self.regex = re.compile("".join(out))
        self._prefix = re.compile(f"(?:{self.regex.pattern})(?=/|\\Z)")  # ends at a "/"

    def fullmatch(self, text: str) -> bool:
        return self.regex.fullmatch(text) is not None

    def matches_a_prefix(self, parts: Sequence[str]) -> bool:
        return self._prefix.match("/".join(parts)) is not None


class Glob:
    """A glob as a set of positions in its tokens (bit i: "token i is next"), advanced one
    character at a time: linear in the text, no backtracking.

    Tokens: a literal, `?` or a class consume one character; `*` (not `/`) and `**` (not a
    newline, as regex `.`) consume any number; `**/` is "nothing, or `**` then `/`".
    """

    def __init__(self, pattern: str) -> None:
        self.tokens = _glob_tokens(pattern)
        self.accept = 1 << len(self.tokens)
        self._skip1 = self._skip3 = 0
        for index, (kind, _) in enumerate(self.tokens):
            if kind in ("star", "any", "optional"):
                self._skip1 |= 1 << index
            if kind == "optional":
                self._skip3 |= 1 << index
        self._steps: dict[str, tuple[int, int]] = {}
        self._start = self._closure(1)

    def fullmatch(self, text: str) -> bool:
        state = self._start
        for char in text:
            state = self._step(state, char)
            if not state:
                return False
        return bool(state & self.accept)

    def matches_a_prefix(self, parts: Sequence[str]) -> bool:
        """True if "/".join(parts[:k]) matches for some k >= 1, in one pass."""
        state = self._start
        for index, part in enumerate(parts):
            if index:
                state = self._step(state, "/")
            for char in part:
                state = self._step(state, char)
                if not state:
                    return False
            if state & self.accept:
                return True
        return False

    def _step(self, state: int, char: str) -> int:
        step = self._steps.get(char)
        if step is None:
            step = self._steps[char] = self._masks(char)
        advance, stay = step
        return self._closure(((state & advance) << 1) | (state & stay))

    def _closure(self, state: int) -> int:
        while True:
            wider = state | ((state & self._skip1) << 1) | ((state & self._skip3) << 3)
            if wider == state:
                return state
            state = wider

    def _masks(self, char: str) -> tuple[int, int]:
        advance = stay = 0
        for index, (kind, value) in enumerate(self.tokens):
            if kind == "literal" and char == value or kind == "one" and char != "/" or (
                    kind == "class" and value.fullmatch(char)):
                advance |= 1 << index
            elif kind == "star" and char != "/" or kind == "any" and char != "\n":
                stay |= 1 << index
        return advance, stay


def _glob_tokens(pattern: str) -> list[tuple[str, object]]:
    tokens: list[tuple[str, object]] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            tokens += [("optional", None), ("any", None), ("literal", "/")]
            i += 3
            continue
        if pattern.startswith("**", i):
            tokens.append(("any", None))
            i += 2
            continue
        char = pattern[i]
        end = pattern.find("]", i + 2) if char == "[" else -1
        if char == "*":
            tokens.append(("star", None))
        elif char == "?":
            tokens.append(("one", None))
        elif end > 0:
            body = pattern[i + 1:end]
            body = "^" + body[1:] if body.startswith("!") else body
            tokens.append(("class", re.compile(f"[{body}]")))
            i = end
        else:
            tokens.append(("literal", char))
        i += 1
    return tokens
