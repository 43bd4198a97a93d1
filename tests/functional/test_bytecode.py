"""Shipped bytecode: reproducible, named for where it runs, and used without the source."""
from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

from builder.bytecode import compile_bytecode
from builder.package import make_zip, walk_entries

SOURCES = {
    "pkg/__init__.py": "from pkg.values import ANSWER\nKINDS = frozenset({'a', 'b', 'c', 'd'})\n",
    "pkg/values.py": "ANSWER = 42\n",
    "pkg/broken.py": "def nope(:\n",
}


def _tree(root: Path) -> Path:
    for rel, text in SOURCES.items():
        path = root / "python" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "python"


def test_the_same_sources_give_the_same_zip_wherever_they_are_built(tmp_path):
    shas = []
    for name in ("one", "another/deeper"):
        tree = _tree(tmp_path / name)
        assert compile_bytecode(tree, "/opt/python", env=dict(os.environ)) == 2
        stats = make_zip(walk_entries(tree, "python", bytecode=True), tmp_path / f"{len(shas)}.zip")
        shas.append(stats.code_sha256)
    assert shas[0] == shas[1]
    names = [e.arcname for e in walk_entries(tree, "python", bytecode=True)]
    tag = sys.implementation.cache_tag
    assert f"python/pkg/__pycache__/values.{tag}.pyc" in names
    assert not any("broken" in n and n.endswith(".pyc") for n in names)  # stays source only
    assert not any(n.endswith(".pyc") for n in
                   (e.arcname for e in walk_entries(tree, "python")))  # the default drops them


def test_code_is_named_for_the_layer_and_used_without_reading_the_source(tmp_path):
    tree = _tree(tmp_path)
    compile_bytecode(tree, "/opt/python", env=dict(os.environ))
    pyc = next((tree / "pkg" / "__pycache__").glob("values.*.pyc"))
    code = marshal.loads(pyc.read_bytes()[16:])
    assert code.co_filename == "/opt/python/pkg/values.py"
    (tree / "pkg" / "values.py").write_text("ANSWER = 0\n")  # an unchecked hash is not checked
    answer = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c",
         f"import sys; sys.path.insert(0, {str(tree)!r}); import pkg; print(pkg.ANSWER)"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert answer == "42"
