"""Pruning what no import needs from an installed tree (the `--target` directory).

Removed by default, each only where it is safe (see docs/install.md):
- `__pycache__/` everywhere; a `X.pyc`/`X.pyo` only beside its `X.py` (a sourceless
  distribution imports its `.pyc` files directly);
- `py.typed`, and `X.pyi` stubs that describe code which is there (`X.py`, `X/__init__.py`,
  an extension `X.*.so`, or a compiled parent package); stub-only trees such as a bundled
  typeshed are data and stay;
- C/C++/Cython sources and headers, unless the package's Python code names the file;
- `tests/`, `test/`, `docs/`, `doc/`, `examples/` directories inside a package, and
  `conftest.py`, unless other code imports them or names them in a string;
- never anything in `*.dist-info/` (metadata and entry points are read at runtime) and never
  an extension module (`*.so`). Each dist-info `RECORD` is rewritten to list only what remains.

`keep` globs override every removal; `exclude` globs add removals. The walk is sorted, so
the same tree always loses the same files.
"""
from __future__ import annotations

import csv
import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.paths import matches

_TEST_DIRS = frozenset({"tests", "test"})
_DOC_TEST_DIRS = _TEST_DIRS | {"docs", "doc", "examples"}
_SOURCE_SUFFIXES = frozenset({".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".pyx", ".pxd",
                              ".pxi"})
_METADATA_SUFFIXES = (".dist-info", ".egg-info")
# A source file named in a Python string: "foo.h", 'src/foo.c', "#include \"foo.h\"".
_NAMED_SOURCE = re.compile(r"""["'/\\]([\w.+-]+\.(?:c|cc|cpp|cxx|h|hh|hpp|pyx|pxd|pxi))["']""")
_WORDS = "|".join(sorted(_DOC_TEST_DIRS))
# pkg.sub.tests, "tests", 'docs/x', f"{name}.tests", from .tests import x, from . import docs
_DOTTED = re.compile(r"\.(" + _WORDS + r")\b")
_DOTTED_PREFIX = re.compile(r"[\w.]*$")
_LITERAL_NAME = re.compile(r"""(["'./\\])(""" + _WORDS + r""")(["'/\\])""")
# A bare "examples" string counts only on a line that builds a path or imports by name.
_PATH_CONTEXT = re.compile(r"__file__|__path__|join\(|Path\(|import_module|__import__|resource"
                           r"|files\(|listdir|glob|walk\(|open\(|exists|isdir|/\s*[\"']")
_IMPORT_CONTEXT = re.compile(r"import_module|__import__|find_spec")
_RELATIVE_IMPORT = re.compile(r"from\s+\.+([\w.]*)\s+import\s+(\([^)]*\)|[^\n]*)")


@dataclass(frozen=True)
class StripResult:
    removed_files: int
    removed_bytes: int


def strip_tree(root: Path, *, keep: Sequence[str] = (), exclude: Sequence[str] = ()) -> StripResult:
    """Remove what no import needs from `root`; `keep` wins over everything."""
    root = Path(root)
    files = _list_files(root)
    default = _default_removals(root, files)
    chosen = sorted(p for p in files
                    if (p in default or matches(p, exclude)) and not matches(p, keep))
    removed_bytes = 0
    for rel in chosen:
        path = root / rel
        removed_bytes += path.lstat().st_size
        path.unlink()
    _prune_empty_dirs(root, chosen)
    rewrite_records(root)
    return StripResult(len(chosen), removed_bytes)


def _list_files(root: Path) -> list[str]:
    """Every file and symlink under root as a sorted posix relative path (links not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if d not in links)
        found.extend(prefix + name for name in filenames + links)
    return sorted(found)


def _is_metadata(rel: str) -> bool:
    return rel.split("/", 1)[0].endswith(_METADATA_SUFFIXES)


def _is_extension(name: str) -> bool:
    return name.endswith((".so", ".pyd")) or ".so." in name


def _default_removals(root: Path, files: list[str]) -> set[str]:
    tree = _Tree(files)
    facts = _Facts(root)
    dirs = _unreferenced_doc_test_dirs(tree, facts)
    named = facts.named_sources(p for p in tree.python_files if not _under(p, dirs))
    removals = set()
    for rel in files:
        if _is_metadata(rel) or _is_extension(posixpath.basename(rel)):
            continue
        if _under(rel, dirs) or _is_removable_file(rel, tree, named):
            removals.add(rel)
    return removals


def _is_removable_file(rel: str, tree: _Tree, named: dict[str, set[str]]) -> bool:
    parent, name = posixpath.split(rel)
    stem, suffix = posixpath.splitext(name)
    if "__pycache__" in rel.split("/") or name == "py.typed":
        return True
    if suffix in (".pyc", ".pyo"):
        return tree.has_file(posixpath.join(parent, stem + ".py"))
    if suffix == ".pyi":
        return _stub_has_code(posixpath.join(parent, stem), tree)
    if name == "conftest.py":
        return "/" in rel
    if suffix in _SOURCE_SUFFIXES:
        return name not in named.get(rel.split("/", 1)[0], set())
    return False


def _stub_has_code(module: str, tree: _Tree) -> bool:
    """Whether the module a `.pyi` describes exists as code (so the stub is only for typing)."""
    if posixpath.basename(module) == "__init__":
        module = posixpath.dirname(module)
    if tree.has_file(module + ".py") or tree.has_file(module + "/__init__.py"):
        return True
    while module:
        if tree.has_extension(module):
            return True
        module = posixpath.dirname(module)
    return False


def _unreferenced_doc_test_dirs(tree: _Tree, facts: _Facts) -> set[str]:
    """Doc/test directories inside packages that no remaining Python code refers to."""
    removable = {d for d in tree.dirs
                 if posixpath.basename(d) in _DOC_TEST_DIRS and "/" in d and not _is_metadata(d)}
    removable = {d for d in removable if not _under(d, removable - {d})}
    referrers = {d: facts.referrers(d, tree.python_files) for d in sorted(removable)}
    while True:  # a directory kept because it is referenced may itself refer to another one
        still = {d for d in removable
                 if all(_under(f, removable) for f in referrers[d])}
        if still == removable:
            return removable
        removable = still


def _under(rel: str, dirs: set[str]) -> bool:
    parts = rel.split("/")
    return any("/".join(parts[:i]) in dirs for i in range(1, len(parts)))


class _Tree:
    """Lookups over the file list: files, directories, extension modules."""

    def __init__(self, files: list[str]) -> None:
        self.files = set(files)
        self.dirs = sorted({"/".join(p.split("/")[:i]) for p in files
                            for i in range(1, p.count("/") + 1)})
        self.python_files = [p for p in files if p.endswith(".py")
                             and not p.endswith("/conftest.py") and not _is_metadata(p)]
        self._extensions = {posixpath.join(posixpath.dirname(p),
                                           posixpath.basename(p).split(".", 1)[0])
                            for p in files if _is_extension(posixpath.basename(p))}

    def has_file(self, rel: str) -> bool:
        return rel in self.files

    def has_extension(self, module: str) -> bool:
        """An extension module `module.*.so` exists."""
        return module in self._extensions


class _Facts:
    """What each Python file names, read once: dotted names (`pkg.sub.tests`), names in
    relative imports or string literals (`from . import docs`, `"examples"`), and C/Cython
    file names in strings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {}

    def of(self, rel: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        if rel not in self._cache:
            try:
                text = (self.root / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            dotted = {_DOTTED_PREFIX.search(text, max(0, m.start() - 200), m.start()).group()
                      + m.group() for m in _DOTTED.finditer(text)}
            local = _literal_names(text)
            for module, names in _RELATIVE_IMPORT.findall(text):
                local.update(re.findall(r"\w+", module + " " + names))
            sources = frozenset(_NAMED_SOURCE.findall(text))
            self._cache[rel] = (frozenset(dotted), frozenset(local), sources)
        return self._cache[rel]

    def referrers(self, directory: str, files: list[str]) -> list[str]:
        """Files outside `directory` that import it or name it as a path."""
        dotted = directory.replace("/", ".")
        top, name = directory.split("/", 1)[0] + "/", posixpath.basename(directory)
        return [rel for rel in files if not rel.startswith(directory + "/") and (
            dotted in self.of(rel)[0] or (rel.startswith(top) and name in self.of(rel)[1]))]

    def named_sources(self, files: Iterable[str]) -> dict[str, set[str]]:
        """Per top-level package: C/Cython file names its Python code mentions."""
        named: dict[str, set[str]] = {}
        for rel in files:
            named.setdefault(rel.split("/", 1)[0], set()).update(self.of(rel)[2])
        return named


def _literal_names(text: str) -> set[str]:
    """Doc/test directory names a string uses as a path part or module name: "docs/x",
    f"{pkg}.tests", os.path.join(here, "examples"). Not URLs, not a name in a list."""
    found = set()
    for match in _LITERAL_NAME.finditer(text):
        pre, name, post = match.groups()
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        line = text[start:end if end >= 0 else len(text)]
        if "://" in line or (pre in "./\\" and post in "/\\"):
            continue
        if name in _TEST_DIRS and pre != "." and not _IMPORT_CONTEXT.search(line):
            continue  # test code is imported, not read: "tests" as a path is a comparison
        if pre in "'\"" and post in "'\"" and not _PATH_CONTEXT.search(line):
            continue
        found.add(name)
    return found


def _prune_empty_dirs(root: Path, removed: list[str]) -> None:
    """Remove directories our removals emptied, deepest first."""
    parents = {posixpath.dirname(p) for p in removed} - {""}
    for rel in list(parents):
        while "/" in rel:
            rel = posixpath.dirname(rel)
            parents.add(rel)
    for rel in sorted(parents, key=lambda d: (-d.count("/"), d)):
        path = root / rel
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()


def rewrite_records(root: Path) -> None:
    """Drop RECORD rows for files that are gone, leaving every other line byte for byte."""
    root = Path(root)
    for record in sorted(root.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _record_target_exists(root, line)]
        if len(kept) != len(lines):
            tmp = record.with_name("RECORD.tmp")
            tmp.write_text("".join(kept), encoding="utf-8")
            os.replace(tmp, record)  # a new inode: never edit a file hardlinked from a cache


def _record_target_exists(root: Path, line: str) -> bool:
    row = next(csv.reader([line]), [])
    return not row or not row[0] or os.path.lexists(root / row[0])
