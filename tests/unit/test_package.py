"""Reproducible zips: same files, same bytes; nothing from the host leaks in."""
from __future__ import annotations

import os
import zipfile

import pytest

from builder.errors import PackageError
from builder.package import Entry, code_sha256_of, make_zip, walk_entries, zip_stats


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "src"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pkg" / "mod.py").write_text("def f():\n    return 2\n" * 50)
    (root / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    (root / "pkg" / "stale.pyc").write_bytes(b"junk")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o750)
    os.chmod(root / "pkg" / "mod.py", 0o600)
    return root


def test_same_files_give_identical_bytes_even_after_touching_mtimes(tree, tmp_path):
    first = make_zip(walk_entries(tree), tmp_path / "a.zip")
    for path in tree.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    second = make_zip(walk_entries(tree), tmp_path / "b.zip", threads=1)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert first == second
    assert first.code_sha256 == code_sha256_of((tmp_path / "a.zip").read_bytes())


def test_entries_sorted_dates_fixed_modes_normalised_caches_left_out(tree, tmp_path):
    make_zip(walk_entries(tree, "python"), tmp_path / "a.zip")
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
    names = [i.filename for i in infos]
    assert names == sorted(names) == ["python/pkg/__init__.py", "python/pkg/mod.py",
                                      "python/run.sh"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes == {"python/pkg/__init__.py": 0o644, "python/pkg/mod.py": 0o644,
                     "python/run.sh": 0o755}
    assert all(i.extra == b"" for i in infos)


def test_input_order_does_not_matter(tree, tmp_path):
    entries = walk_entries(tree)
    make_zip(entries, tmp_path / "a.zip")
    make_zip(list(reversed(entries)), tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_content_change_changes_the_hash(tree, tmp_path):
    first = make_zip(walk_entries(tree), tmp_path / "a.zip")
    (tree / "pkg" / "__init__.py").write_text("VALUE = 2\n")
    second = make_zip(walk_entries(tree), tmp_path / "b.zip")
    assert first.code_sha256 != second.code_sha256


def test_stats_count_files_and_unzipped_bytes(tree, tmp_path):
    stats = make_zip(walk_entries(tree), tmp_path / "a.zip")
    expected = sum((tree / p).stat().st_size for p in ("pkg/__init__.py", "pkg/mod.py", "run.sh"))
    assert (stats.files, stats.unzipped_size) == (3, expected)
    assert zip_stats(tmp_path / "a.zip") == stats


def test_two_sources_for_one_name_is_an_error(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    with pytest.raises(PackageError, match="two files would be stored as 'x'"):
        make_zip([Entry("x", tmp_path / "a"), Entry("x", tmp_path / "b")], tmp_path / "o.zip")


def test_zip_extracts_to_the_same_content(tree, tmp_path):
    make_zip(walk_entries(tree), tmp_path / "a.zip")
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        archive.extractall(tmp_path / "out")
    extracted = (tmp_path / "out" / "pkg" / "mod.py").read_text()
    assert extracted == (tree / "pkg" / "mod.py").read_text()


def test_the_deflate_level_is_part_of_the_bytes_and_only_of_them(tree, tmp_path):
    default = make_zip(walk_entries(tree), tmp_path / "six.zip")
    assert make_zip(walk_entries(tree), tmp_path / "again.zip", level=6) == default
    fastest = make_zip(walk_entries(tree), tmp_path / "one.zip", level=1)
    assert fastest.code_sha256 != default.code_sha256
    assert fastest.unzipped_size == default.unzipped_size and fastest.files == default.files
    with zipfile.ZipFile(tmp_path / "six.zip") as six, zipfile.ZipFile(tmp_path / "one.zip") as one:
        assert [(i.filename, six.read(i)) for i in six.infolist()] == \
            [(i.filename, one.read(i)) for i in one.infolist()]
