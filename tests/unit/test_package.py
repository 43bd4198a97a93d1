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


# -- bounds ----------------------------------------------------------------------------


def test_a_large_file_is_streamed_to_the_same_bytes_zipfile_writes(tmp_path):
    import random

    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(1).randbytes(6 << 20) + b"a" * (3 << 20))
    stats = make_zip([Entry("big.bin", big)], tmp_path / "ours.zip")
    info = zipfile.ZipInfo("big.bin", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type, info.create_system = zipfile.ZIP_DEFLATED, 3
    info.external_attr = (0o100644) << 16
    with zipfile.ZipFile(tmp_path / "theirs.zip", "w", compresslevel=6) as archive:
        archive.writestr(info, big.read_bytes())
    assert (tmp_path / "ours.zip").read_bytes() == (tmp_path / "theirs.zip").read_bytes()
    assert stats.unzipped_size == 9 << 20


def test_a_set_over_the_unzipped_limit_is_refused_before_reading(tmp_path):
    from builder.errors import LimitError

    sparse = tmp_path / "huge.bin"
    with open(sparse, "wb") as handle:
        handle.truncate(3 << 30)  # 3 GB, no blocks: reading it whole would need 3 GB
    (tmp_path / "small.py").write_text("x = 1\n")
    entries = [Entry("data/huge.bin", sparse), Entry("small.py", tmp_path / "small.py")]
    with pytest.raises(LimitError) as failure:
        make_zip(entries, tmp_path / "o.zip")
    assert "3072.0 MB unzipped" in str(failure.value)
    assert "biggest: data/huge.bin 3072.0 MB" in str(failure.value)
    assert not (tmp_path / "o.zip").exists()


@pytest.mark.parametrize(("raw", "shown"), [
    (b"pkg/bad\xff.py", "pkg/bad\\xff.py"), (b"a" * 256 + b".py", "a" * 256 + ".py"),
])
def test_names_lambda_cannot_store_are_package_errors(tmp_path, raw, shown):
    (tmp_path / "f").write_text("")
    with pytest.raises(PackageError) as failure:
        make_zip([Entry(os.fsdecode(raw), tmp_path / "f")], tmp_path / "o.zip")
    assert shown in str(failure.value)


def test_too_little_free_space_is_refused_with_both_figures(tmp_path):
    from builder.package import ensure_free_space

    with pytest.raises(PackageError) as failure:
        ensure_free_space(tmp_path, 1 << 60, "writing function.zip")
    assert "not enough disk space for writing function.zip" in str(failure.value)
    assert "MB needed" in str(failure.value) and "MB free" in str(failure.value)


def test_running_out_of_space_while_writing_is_a_package_error(tree, tmp_path):
    (tmp_path / "full.zip").symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(PackageError, match="not enough disk space for writing full.zip"):
        make_zip(walk_entries(tree), tmp_path / "full.zip")


def test_a_large_zip_logs_its_progress_by_quarters(tmp_path, caplog):
    import logging

    from builder.package import Entry, _ZipProgress, make_zip

    caplog.set_level(logging.INFO, logger="builder.package")
    files = []
    for i in range(4):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(bytes([i]) * (9 << 20))
        files.append(Entry(f"f{i}.bin", path))
    make_zip(files, tmp_path / "big.zip")
    lines = [r.getMessage() for r in caplog.records if "zipping big.zip" in r.getMessage()]
    assert [line.split(": ")[1].split("%")[0] for line in lines] == ["25", "50", "75", "100"]
    caplog.clear()
    small = tmp_path / "s.txt"
    small.write_text("x")
    make_zip([Entry("s.txt", small)], tmp_path / "small.zip")
    assert not [r for r in caplog.records if "zipping" in r.getMessage()]
    assert _ZipProgress("x", _ZipProgress.PROGRESS_BYTES - 1).next_quarter == 5
