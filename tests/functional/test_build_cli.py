"""`lambda3 build`: the pipeline from a git ref (or a folder) to zips, through the CLI."""
from __future__ import annotations

import json
import marshal
import os
import sys
import zipfile

import pytest

from lambda3.cli import main

APP = "import greet_lib\n\ndef handler(event, context):\n    return greet_lib.hi()\n"
SPEC = """
function:
  runtimes: [python3.11]
  files: [app.py, greet_lib]
layers:
  dependencies: [requirements.txt]
  data:
    dest_dir: share
    files: [data]
"""


@pytest.fixture
def repo(make_repo):
    repo = make_repo({"app.py": APP, "greet_lib/__init__.py": "def hi():\n    return 'hi'\n",
                      "requirements.txt": "idna==3.7\n", "data/words.txt": "alpha\n",
                      "build.yaml": SPEC}, tag="v1")
    return repo


def run_build(capsys, *args):
    code = main(["build", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_build_from_the_git_server_prints_one_json_object(repo, git_server, git_token,
                                                          tmp_path, capsys, monkeypatch):
    url = git_server.add_repo("acme/app", repo.path)
    monkeypatch.setenv("MY_TOKEN", git_token)
    code, out, err = run_build(capsys, url, "--ref", "v1", "--token-env", "MY_TOKEN", "--out",
                               str(tmp_path / "dist"), "--workdir", str(tmp_path / "w"), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["commit"] == repo.commits[0]
    by_name = {c["name"]: c for c in result["components"]}
    assert set(by_name) == {"function", "dependencies", "data"}
    assert by_name["function"]["kind"] == "function" and by_name["data"]["kind"] == "layer"
    for component in result["components"]:
        assert os.path.exists(component["zip"])
        assert component["size"] == os.path.getsize(component["zip"])
        assert component["files"] > 0 and component["unzipped_size"] > 0
    assert by_name["function"]["files"] == 2
    assert git_token not in out + err


def test_same_commit_gives_the_same_sha256_even_after_touching_mtimes(repo, tmp_path, capsys):
    def build(out):
        code, stdout, err = run_build(capsys, str(repo.path), "--ref", "main", "--out",
                                      str(tmp_path / out), "--workdir", str(tmp_path / out / "w"),
                                      "--json", "--refresh")
        assert code == 0, err
        return {c["name"]: c["code_sha256"] for c in json.loads(stdout)["components"]}

    first = build("a")
    for path in repo.work.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    second = build("b")
    assert first == second


def test_components_limit_the_build(repo, tmp_path, capsys):
    code, out, err = run_build(capsys, str(repo.path), "--ref", "main", "function", "--out",
                               str(tmp_path / "dist"), "--workdir", str(tmp_path / "w"), "--json")
    assert code == 0, err
    assert [c["name"] for c in json.loads(out)["components"]] == ["function"]
    code, out, err = run_build(capsys, str(repo.path), "nope", "--ref", "main", "--out",
                               str(tmp_path / "d2"),
                               "--workdir", str(tmp_path / "w"))
    assert code == 1
    assert "unknown component 'nope'" in err and "function, dependencies, data" in err
    assert not (tmp_path / "d2").exists() or not any((tmp_path / "d2").iterdir())


@pytest.mark.parametrize("spec,expected", [
    ("function:\n  files: [/etc/passwd]\n", "absolute"),
    ("function:\n  files: [../outside.py]\n", ".."),
    ("function:\n  files: [link.py]\n", "outside"),
    ("function:\n  files: [app.py]\n  runtime: python2.7\n", "function.runtime"),
    ("function:\n  files: [app.py]\nlayers:\n  dependencies: 3\n", "layers.dependencies"),
])
def test_hostile_specs_are_refused_and_no_zip_is_written(make_repo, tmp_path, capsys, spec,
                                                         expected):
    (tmp_path / "outside.py").write_text("secret = 1\n")
    repo = make_repo({"app.py": APP, "build.yaml": spec},
                     symlinks={"link.py": str(tmp_path / "outside.py")})
    out_dir = tmp_path / "dist"
    code, out, err = run_build(capsys, str(repo.work), "--out", str(out_dir), "--workdir",
                               str(tmp_path / "w"))
    assert code == 1
    assert "build.yaml" in err and expected in err
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_plain_folder_has_no_commit_and_table_output(repo, tmp_path, capsys):
    code, out, err = run_build(capsys, str(repo.work), "--out", str(tmp_path / "dist"),
                               "--workdir", str(tmp_path / "w"))
    assert code == 0, err
    assert "component" in out and "dependencies" in out and "python3.11 x86_64" in out


BYTECODE_SPEC = """
function:
  runtime: {runtime}
  files: [app.py, greet_lib]
layers:
  dependencies:
    requirements: [requirements.txt]
    bytecode: true
"""


def _names(path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_bytecode_ships_the_dependencies_compiled_for_the_target(make_repo, tmp_path, capsys):
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    repo = make_repo({"app.py": APP, "greet_lib/__init__.py": "X = 1\n",
                      "requirements.txt": "idna==3.7\n",
                      "build.yaml": BYTECODE_SPEC.format(runtime=here)})
    shas = []
    for out in ("a", "b"):
        code, stdout, err = run_build(capsys, str(repo.path), "--ref", "main", "--out",
                                      str(tmp_path / out), "--workdir",
                                      str(tmp_path / out / "w"), "--json")
        assert code == 0, err
        by_name = {c["name"]: c for c in json.loads(stdout)["components"]}
        shas.append(by_name["dependencies"]["code_sha256"])
    assert shas[0] == shas[1]  # compiled afresh in another directory: the same bytes
    names = _names(by_name["dependencies"]["zip"])
    pyc = f"python/idna/__pycache__/core.{sys.implementation.cache_tag}.pyc"
    assert pyc in names and "python/idna/core.py" in names
    with zipfile.ZipFile(by_name["dependencies"]["zip"]) as archive:
        code_object = marshal.loads(archive.read(pyc)[16:])
    assert code_object.co_filename == "/opt/python/idna/core.py"
    assert not any(n.endswith(".pyc") for n in _names(by_name["function"]["zip"]))


def test_bytecode_for_another_python_is_skipped_with_a_warning(make_repo, tmp_path, capsys,
                                                               caplog):
    other = "python3.12" if sys.version_info[:2] != (3, 12) else "python3.13"
    repo = make_repo({"app.py": APP, "greet_lib/__init__.py": "X = 1\n",
                      "requirements.txt": "idna==3.7\n",
                      "build.yaml": BYTECODE_SPEC.format(runtime=other)})
    code, stdout, err = run_build(capsys, str(repo.path), "--ref", "main", "--out",
                                  str(tmp_path / "dist"), "--workdir", str(tmp_path / "w"),
                                  "--json")
    assert code == 0, err
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert (f"bytecode skipped: this build runs Python {here} and the target is Python "
            f"{other.removeprefix('python')}") in caplog.text
    deps = next(c for c in json.loads(stdout)["components"] if c["name"] == "dependencies")
    assert "python/idna/core.py" in _names(deps["zip"])
    assert not any(n.endswith(".pyc") for n in _names(deps["zip"]))


def test_steps_are_shown_as_they_start_and_end_and_not_with_json(repo, tmp_path, capsys):
    args = (str(repo.work), "--out", str(tmp_path / "dist"), "--workdir", str(tmp_path / "w"))
    code, out, err = run_build(capsys, *args)
    assert code == 0, err
    lines = err.splitlines()
    for step in ("fetch", "spec", "package"):
        assert f"step {step} ..." in lines
        assert any(line.startswith(f"step {step} done in ") for line in lines)
    assert lines.index("step fetch ...") < lines.index("step spec ...")
    code, out, err = run_build(capsys, *args, "--json")
    assert code == 0 and json.loads(out)["components"]
    assert "step " not in err
