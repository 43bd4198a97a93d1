"""builder.package: large files deflated on the pool give the very bytes of a zip whose
writer deflates them itself, on any number of threads."""
from __future__ import annotations

import random
import zipfile

from builder.package import SMALL_FILE, make_zip, walk_entries


def tree(root, seed=1):
    rng = random.Random(seed)
    (root / "pkg").mkdir(parents=True)
    for index, size in enumerate((SMALL_FILE + 1, 2 * SMALL_FILE + 7, 3 * SMALL_FILE)):
        # half random, half repetitive: deflate does real work and the sizes differ
        data = rng.randbytes(size // 2) + bytes(range(256)) * (size // 512 + 1)
        (root / "pkg" / f"_ext{index}.cpython-311-x86_64-linux-gnu.so").write_bytes(data[:size])
    for index in range(50):
        (root / "pkg" / f"mod{index}.py").write_text(f"VALUE = {index}\n" * 100)
    return root


def test_large_files_on_the_pool_give_the_same_bytes_as_on_the_writer(tmp_path):
    root = tree(tmp_path / "site")
    one = make_zip(walk_entries(root, "python"), tmp_path / "one.zip", threads=1)
    four = make_zip(walk_entries(root, "python"), tmp_path / "four.zip", threads=4)
    writer = make_zip(walk_entries(root, "python"), tmp_path / "writer.zip", large_on_pool=False)
    assert one == four == writer
    assert (tmp_path / "four.zip").read_bytes() == (tmp_path / "writer.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "four.zip") as archive:
        assert archive.testzip() is None
        name = "python/pkg/_ext1.cpython-311-x86_64-linux-gnu.so"
        assert archive.read(name) == (root / "pkg" / name.split("/", 2)[2]).read_bytes()

