"""strip_tree on synthetic installed trees: what goes, what stays and why."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from builder.strip import matches, rewrite_records, strip_tree

SO = "cpython-311-x86_64-linux-gnu.so"

TREE = {
    # a package with typing stubs, caches, tests, docs and C sources
    "pkg/__init__.py": "from .core import value\n",
    "pkg/core.py": "import os\nHEADER = 'pkg.h'\nvalue = 1\n",
    "pkg/core.pyi": "value: int\n",
    "pkg/py.typed": "",
    "pkg/__pycache__/core.cpython-311.pyc": "junk",
    "pkg/compiled.py": "X = 1\n",
    "pkg/compiled.pyc": "junk",
    "pkg/sourceless.pyc": "the only copy of this module",
    f"pkg/_ext.{SO}": "ELF",
    "pkg/_ext.pyi": "def f() -> int: ...\n",
    "pkg/_rust.abi3.so": "ELF",
    "pkg/_rust/x509.pyi": "class Certificate: ...\n",
    "pkg/typeshed/stdlib/os.pyi": "def getcwd() -> str: ...\n",
    "pkg/conftest.py": "import pytest\n",
    "pkg/tests/__init__.py": "",
    "pkg/tests/test_core.py": "from pkg.core import value\n",
    f"pkg/tests/_helper.{SO}": "ELF",
    "pkg/docs/index.rst": "docs\n",
    "pkg/src/fast.c": "int main;\n",
    "pkg/src/fast.pyx": "def f(): pass\n",
    "pkg/include/pkg.h": "#define X 1\n",
    "pkg/include/other.h": "#define Y 1\n",
    # a package that imports its test helpers and reads its examples at runtime
    "lib/__init__.py": ("import os\nfrom lib.test.support import helper\n"
                        "EXAMPLES = os.path.join(os.path.dirname(__file__), 'examples')\n"
                        "SKIP = {'tests', 'docs'}\n"),
    "lib/test/__init__.py": "",
    "lib/test/support.py": "def helper(): pass\n",
    "lib/examples/demo.json": "{}\n",
    "lib/testing/__init__.py": "def assert_ok(): pass\n",
    "lib/doc/guide.txt": "see https://example.org/lib/docs/\n",
    "lib/sub/__init__.py": "from .tests import fixtures\n",
    "lib/sub/tests/__init__.py": "",
    "lib/sub/tests/fixtures.py": "X = 1\n",
    "lib/sub/tests/test_more.py": "from lib.docs import nothing\n",
    # a top-level module and a stray top-level tests package stay as they are
    "single.py": "Y = 2\n",
    "tests/test_top.py": "",
}
DIST_INFO = "pkg-1.0.dist-info"
REMOVED = {
    "pkg/core.pyi", "pkg/py.typed", "pkg/__pycache__/core.cpython-311.pyc", "pkg/compiled.pyc",
    "pkg/_ext.pyi", "pkg/_rust/x509.pyi", "pkg/conftest.py", "pkg/tests/__init__.py",
    "pkg/tests/test_core.py", "pkg/docs/index.rst", "pkg/src/fast.c", "pkg/src/fast.pyx",
    "pkg/include/other.h", "lib/doc/guide.txt",
}


def make_tree(root: Path, files: dict[str, str] = TREE) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    dist_info = root / DIST_INFO
    (dist_info / "licenses").mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[console_scripts]\npkg = pkg:main\n")
    (dist_info / "top_level.txt").write_text("pkg\n")
    (dist_info / "licenses" / "LICENSE").write_text("MIT\n")
    (dist_info / "tests").mkdir()
    (dist_info / "tests" / "kept.txt").write_text("metadata is never stripped\n")
    rows = [f"{rel},sha256=x,{len(text)}" for rel, text in sorted(files.items())]
    (dist_info / "RECORD").write_text("\n".join(rows + [f"{DIST_INFO}/RECORD,,"]) + "\n")
    return root


def listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "site")


def test_removes_what_no_import_needs_and_keeps_the_rest(tree):
    before = listing(tree)
    size = sum((tree / rel).stat().st_size for rel in REMOVED)
    result = strip_tree(tree)
    assert before - listing(tree) == REMOVED
    assert result.removed_files == len(REMOVED)
    assert result.removed_bytes == size
    # emptied directories go too; directories with something left stay
    assert not (tree / "pkg" / "__pycache__").exists()
    assert not (tree / "pkg" / "docs").exists()
    assert not (tree / "pkg" / "src").exists()
    assert (tree / "pkg" / "tests").is_dir()  # it still holds an extension module


def test_extension_modules_are_never_touched(tree):
    before = {p: (p.stat().st_ino, p.read_bytes()) for p in tree.rglob("*.so")}
    strip_tree(tree)
    assert {p: (p.stat().st_ino, p.read_bytes()) for p in tree.rglob("*.so")} == before


def test_code_that_imports_or_reads_a_directory_keeps_it(tree):
    strip_tree(tree)
    assert (tree / "lib/test/support.py").exists()      # imported by dotted name
    assert (tree / "lib/sub/tests/fixtures.py").exists()  # imported relatively
    assert (tree / "lib/examples/demo.json").exists()   # joined onto __file__
    assert (tree / "lib/testing/__init__.py").exists()  # `testing` is public API (numpy...)
    assert (tree / "pkg/include/pkg.h").exists()        # named in a string
    assert (tree / "pkg/typeshed/stdlib/os.pyi").exists()  # stub-only tree: data
    assert (tree / "pkg/sourceless.pyc").exists()       # no .py beside it


def test_a_kept_directory_is_evidence_for_what_it_refers_to(tmp_path):
    files = dict(TREE)
    files["lib/sub/tests/fixtures.py"] = "from lib.doc import guide\n"
    root = make_tree(tmp_path / "site", files)
    strip_tree(root)
    assert (root / "lib/doc/guide.txt").exists()


def test_test_directories_are_not_kept_by_a_path_comparison(tmp_path):
    files = dict(TREE)
    files["pkg/util.py"] = ("import os\nTESTS = os.path.join(os.path.dirname(__file__), 'tests')\n"
                            "def outside(f): return not f.startswith(TESTS)\n")
    root = make_tree(tmp_path / "site", files)
    strip_tree(root)
    assert not (root / "pkg/tests/test_core.py").exists()


def test_dist_info_is_kept_and_record_lists_only_what_remains(tree):
    strip_tree(tree)
    dist_info = tree / DIST_INFO
    for name in ("METADATA", "entry_points.txt", "top_level.txt", "licenses/LICENSE",
                 "tests/kept.txt"):
        assert (dist_info / name).exists(), name
    rows = [line.split(",")[0] for line in (dist_info / "RECORD").read_text().splitlines()]
    assert not REMOVED & set(rows)
    assert "pkg/core.py" in rows and f"{DIST_INFO}/RECORD" in rows
    assert all((tree / row).exists() for row in rows)


def test_record_is_replaced_not_edited_in_place(tree, tmp_path):
    """An installer may hardlink files from its cache: editing one in place corrupts it."""
    record = tree / DIST_INFO / "RECORD"
    cached = tmp_path / "cache-RECORD"
    shutil.copyfile(record, cached)
    record.unlink()
    os.link(cached, record)
    original = cached.read_bytes()
    strip_tree(tree)
    assert cached.read_bytes() == original
    assert record.read_bytes() != original


def test_keep_globs_override_every_removal(tree):
    result = strip_tree(tree, keep=["pkg/tests/**", "*.pyi", "pkg/docs"])
    left = listing(tree)
    assert {"pkg/tests/test_core.py", "pkg/core.pyi", "pkg/_rust/x509.pyi",
            "pkg/docs/index.rst"} <= left
    assert "pkg/py.typed" not in left
    assert result.removed_files == len(REMOVED) - 6


def test_exclude_globs_add_removals_and_keep_still_wins(tree):
    strip_tree(tree, exclude=["lib/examples", "*.txt", "single.py"], keep=["top_level.txt"])
    left = listing(tree)
    assert "lib/examples/demo.json" not in left and not (tree / "lib/examples").exists()
    assert f"{DIST_INFO}/entry_points.txt" not in left
    assert "single.py" not in left
    assert f"{DIST_INFO}/top_level.txt" in left


def test_the_same_tree_always_loses_the_same_files(tmp_path):
    first, second = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    assert strip_tree(first) == strip_tree(second)
    assert listing(first) == listing(second)
    record = f"{DIST_INFO}/RECORD"
    assert (first / record).read_bytes() == (second / record).read_bytes()
    assert strip_tree(first).removed_files == 0


def test_symlinks_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "tests").mkdir(parents=True)
    (outside / "tests" / "precious.py").write_text("keep me\n")
    root = make_tree(tmp_path / "site")
    (root / "pkg" / "linked").symlink_to(outside, target_is_directory=True)
    strip_tree(root)
    assert (outside / "tests" / "precious.py").exists()


def test_rewrite_records_drops_rows_of_missing_files(tree):
    (tree / "pkg" / "core.pyi").unlink()
    rewrite_records(tree)
    assert "pkg/core.pyi," not in (tree / DIST_INFO / "RECORD").read_text()


@pytest.mark.parametrize(("path", "patterns", "expected"), [
    ("pkg/tests/test_a.py", ["tests"], True),
    ("pkg/tests/test_a.py", ["pkg/tests"], True),
    ("pkg/tests/test_a.py", ["pkg/tests/**"], True),
    ("pkg/tests/test_a.py", ["other/tests"], False),
    ("pkg/tests/test_a.py", ["tests/*"], False),         # anchored at the root
    ("pkg/sub/mod.pyi", ["*.pyi"], True),
    ("pkg/sub/mod.pyi", ["pkg/*.pyi"], False),          # * stays within a name
    ("pkg/sub/mod.pyi", ["pkg/**/*.pyi"], True),
    ("pkg/mod.pyi", ["pkg/**/*.pyi"], True),            # ** may be empty
    ("botocore/data/ec2/2016-11-15/service-2.json", ["botocore/data/ec2"], True),
    ("botocore/data/ec2x/service-2.json", ["botocore/data/ec2"], False),
    ("pkg/mod_a.py", ["mod_?.py"], True),
    ("pkg/mod_b.py", ["mod_[!b].py"], False),
    ("pkg/mod.py", ["/pkg/"], True),
    ("pkg/mod.py", [], False),
])
def test_matches(path, patterns, expected):
    assert matches(path, patterns) is expected
