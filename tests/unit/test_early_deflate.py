"""builder.package: large files deflated on the pool, and ahead of time (EarlyDeflate),
give the very bytes of a zip written without either; a file changed since is deflated
again."""
from __future__ import annotations

import os
import random
import zipfile

from builder.package import SMALL_FILE, EarlyDeflate, make_zip, walk_entries


def tree(root, seed=1):
    rng = random.Random(seed)
    (root / "pkg").mkdir(parents=True)
    for index, size in enumerate((SMALL_FILE + 1, 2 * SMALL_FILE + 7, 3 * SMALL_FILE)):
        # half random, half repetitive: deflate does real work and the sizes differ
        data = rng.randbytes(size // 2) + bytes(range(256)) * (size // 512 + 1)
        (root / "pkg" / f"_ext{index}.cpython-311-x86_64-linux-gnu.so").write_bytes(data[:size])
    (root / "pkg" / "big.dat").write_bytes(b"x" * (SMALL_FILE + 5))  # large, not a module
    for index in range(50):
        (root / "pkg" / f"mod{index}.py").write_text(f"VALUE = {index}\n" * 100)
    return root


def test_large_files_on_the_pool_or_early_give_the_same_bytes(tmp_path):
    root = tree(tmp_path / "site")
    one = make_zip(walk_entries(root, "python"), tmp_path / "one.zip", threads=1)
    four = make_zip(walk_entries(root, "python"), tmp_path / "four.zip", threads=4)
    writer = make_zip(walk_entries(root, "python"), tmp_path / "writer.zip", large_on_pool=False)
    early = EarlyDeflate(root, tmp_path)
    try:
        ahead = make_zip(walk_entries(root, "python"), tmp_path / "early.zip", early=early)
    finally:
        early.close()
    assert one == four == writer == ahead
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "early.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "early.zip") as archive:
        assert archive.testzip() is None


def test_a_file_changed_or_removed_after_the_early_start_is_zipped_as_it_is_now(tmp_path):
    root = tree(tmp_path / "site")
    early = EarlyDeflate(root, tmp_path)
    changed = root / "pkg" / "_ext1.cpython-311-x86_64-linux-gnu.so"
    changed.write_bytes(b"new content" * (SMALL_FILE // 8))
    os.utime(changed, ns=(1, 1))
    (root / "pkg" / "_ext2.cpython-311-x86_64-linux-gnu.so").unlink()  # as strip's exclude would
    try:
        stats = make_zip(walk_entries(root, "python"), tmp_path / "early.zip", early=early)
    finally:
        early.close()
    plain = make_zip(walk_entries(root, "python"), tmp_path / "plain.zip")
    assert stats == plain
    with zipfile.ZipFile(tmp_path / "early.zip") as archive:
        assert archive.read(f"python/pkg/{changed.name}") == changed.read_bytes()
        assert "python/pkg/_ext2.cpython-311-x86_64-linux-gnu.so" not in archive.namelist()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp")]  # no spool left
