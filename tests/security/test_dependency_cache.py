"""The dependency cache is kept per repository and keyed by every input of the install."""
from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from builder.build import BuildOptions, build

SPEC = ("function:\n  runtimes: [python3.11]\n  files: [app.py]\n"
        "layers:\n  dependencies: [requirements.txt]\n")


class Installer:
    """Answers `--version` like uv; each install writes one module per requirement name
    it reads, whose text says which install this was."""

    def __init__(self):
        self.installs = 0

    def __call__(self, argv, env, cwd):
        if argv[-1] == "--version":
            return subprocess.CompletedProcess(argv, 0, "uv 0.13.9\n", "")
        self.installs += 1
        dest = Path(argv[argv.index("--target") + 1])
        for requirements in sorted(Path(cwd).glob("requirements-*.txt")):
            for line in requirements.read_text().splitlines():
                name = re.match(r"[A-Za-z][A-Za-z0-9_]*", line)
                if name:
                    module = dest / name[0]
                    module.mkdir(exist_ok=True)
                    (module / "__init__.py").write_text(f"INSTALL = {self.installs}\n")
        return subprocess.CompletedProcess(argv, 0, "Installed 1 package\n", "")


def make_repo(root: Path, files: dict[str, str]) -> Path:
    files = {"app.py": "x = 1\n", "build.yaml": SPEC, **files}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def run(source: Path, workdir: Path, installer: Installer):
    output = build(BuildOptions(repository=str(source), workdir=workdir,
                                components=("dependencies",)), runner=installer)
    return output.artifact("dependencies")


def layer_text(artifact) -> dict[str, str]:
    with zipfile.ZipFile(artifact.zip_path) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_one_repository_never_reuses_another_repositorys_set(tmp_path):
    workdir, installer = tmp_path / "work", Installer()
    a = make_repo(tmp_path / "a", {"requirements.txt": "samepkg==1\n"})
    b = make_repo(tmp_path / "b", {"requirements.txt": "samepkg==1\n"})
    first = run(a, workdir, installer)
    second = run(b, workdir, installer)
    assert not second.reused and installer.installs == 2
    assert layer_text(second)["python/samepkg/__init__.py"] == "INSTALL = 2\n"
    again = run(a, workdir, installer)
    assert again.reused and layer_text(again) == layer_text(first)


@pytest.mark.parametrize("include", [
    "-r base.txt", "-r=base.txt", "-rbase.txt", "--requirement base.txt",
    "--requirement=base.txt", "-r \\\n  base.txt", "-r base.txt  # the shared pins",
    "-c base.txt", "--constraint=base.txt",
])
def test_an_edited_include_invalidates_the_cache(tmp_path, include):
    workdir, installer = tmp_path / "work", Installer()
    repo = make_repo(tmp_path / "repo", {"requirements.txt": f"top==1\n{include}\n",
                                         "base.txt": "basepkg==1\n"})
    run(repo, workdir, installer)
    assert run(repo, workdir, installer).reused
    (repo / "base.txt").write_text("basepkg==2\n")
    assert not run(repo, workdir, installer).reused and installer.installs == 2


@pytest.mark.parametrize(("line", "edited"), [
    ("./wheels/pkg-1.0-py3-none-any.whl", "wheels/pkg-1.0-py3-none-any.whl"),
    ("localpkg @ file:./localpkg", "localpkg/src/mod.py"),
    ("./localpkg", "localpkg/src/mod.py"),
    ("-e ./localpkg", "localpkg/src/mod.py"),
    ("--find-links ./wheels\npkg", "wheels/pkg-1.0-py3-none-any.whl"),
])
def test_an_edited_local_wheel_or_package_invalidates_the_cache(tmp_path, line, edited):
    workdir, installer = tmp_path / "work", Installer()
    repo = make_repo(tmp_path / "repo", {
        "requirements.txt": line + "\n", "wheels/pkg-1.0-py3-none-any.whl": "wheel v1",
        "localpkg/pyproject.toml": "[project]\nname = 'localpkg'\n",
        "localpkg/src/mod.py": "V = 1\n"})
    run(repo, workdir, installer)
    assert run(repo, workdir, installer).reused
    (repo / edited).write_text("changed\n")
    assert not run(repo, workdir, installer).reused


def test_a_work_dir_behind_a_symlink_is_cached_without_a_crash(tmp_path, make_repo):
    repo = make_repo({"app.py": "x = 1\n", "build.yaml": SPEC,
                      "requirements.txt": "-r base.txt\n", "base.txt": "basepkg==1\n"})
    (tmp_path / "real-work").mkdir()
    workdir, installer = tmp_path / "work", Installer()
    workdir.symlink_to(tmp_path / "real-work")
    options = BuildOptions(repository=str(repo.path), ref="main", workdir=workdir,
                           components=("dependencies",))
    assert not build(options, runner=installer).artifact("dependencies").reused
    assert build(options, runner=installer).artifact("dependencies").reused


def test_the_repository_key_has_no_credentials_and_one_spelling():
    from builder.build import repository_key

    keys = {repository_key(url) for url in [
        "https://x-access-token:ghp_SECRET@GitHub.com/acme/app.git",
        "https://github.com/acme/app", "https://github.com/acme/app.git/",
        "HTTPS://github.com/acme/app?x=1#frag"]}
    assert keys == {"https://github.com/acme/app"}
    assert repository_key("https://github.com:8443/acme/app") == "https://github.com:8443/acme/app"


def test_the_token_is_in_no_cache_path_or_file(tmp_path):
    workdir, installer = tmp_path / "work", Installer()
    repo = make_repo(tmp_path / "repo", {"requirements.txt": "samepkg==1\n"})
    token = "ghp_TOKENVALUE123"
    build(BuildOptions(repository=str(repo), workdir=workdir, token=token,
                       components=("dependencies",)), runner=installer)
    cache = workdir / "cache" / "deps"
    for path in cache.rglob("*"):
        assert token not in str(path)
        assert path.is_dir() or token.encode() not in path.read_bytes()
    assert len(list(cache.iterdir())) == 1  # one folder: this repository's


@pytest.mark.parametrize("line", ["-r /etc/passwd", "-c /etc/hostname", "-r=../../etc/passwd"])
def test_an_include_outside_the_repository_is_a_spec_error_before_any_install(tmp_path, line):
    from builder.errors import SpecError

    installer = Installer()
    repo = make_repo(tmp_path / "repo", {"requirements.txt": f"ok==1\n{line}\n"})
    with pytest.raises(SpecError) as failure:
        run(repo, tmp_path / "work", installer)
    assert (failure.value.file, failure.value.line) == ("requirements.txt", 2)
    assert installer.installs == 0
