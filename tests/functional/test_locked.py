"""pyproject.toml projects: the dependencies layer holds exactly what the lock says.

Real installs from PyPI. Fixtures pin old releases (six 1.15.0, idna 2.10, certifi 2020.12.5,
attrs 21.4.0, iniconfig 1.1.1) so that "the newest" would differ from "the locked".
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builder.build import BuildOptions, build
from builder.errors import InstallError, SpecError
from builder.lockfiles import Selection, export, find_project
from builder.tomlread import _Reader

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))
POETRY_PROJECT = ROOT / "tests" / "data" / "poetry_project"
BUILD = """\
function:
  runtime: {runtime}
  architecture: {arch}
  files: [app.py]
layers:
  dependencies:
{deps}
"""
IMPORTS = r"""
import importlib, importlib.metadata, json, sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    importlib.import_module(name)
found = importlib.metadata.distributions(path=[sys.argv[1]])
print(json.dumps({d.metadata["Name"].lower(): d.version for d in found}))
"""
BUILD_BACKEND = '[build-system]\nrequires = ["uv_build>=0.8,<0.10"]\nbuild-backend = "uv_build"\n'


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def member(name: str, dependencies: list[str], extra: str = "") -> dict[str, str]:
    deps = ", ".join(json.dumps(d) for d in dependencies)
    sources = ("[tool.uv.sources]\nshared = { workspace = true }\n"
               if "shared" in dependencies else "")
    return {
        f"packages/{name}/pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
            f"dependencies = [{deps}]\n{extra}{sources}{BUILD_BACKEND}"),
        f"packages/{name}/src/{name}/__init__.py": f"NAME = {name!r}\n",
    }


def uv_workspace(root: Path) -> Path:
    """Two members (api, worker) and a shared library, locked with `uv lock`."""
    write(root, {
        "pyproject.toml": '[tool.uv.workspace]\nmembers = ["packages/*"]\n',
        "app.py": "def handler(event, context):\n    return 1\n",
        **member("shared", ["six==1.15.0"]),
        **member("api", ["shared", "idna<3"],
                 '[project.optional-dependencies]\nfast = ["attrs==21.4.0"]\n'
                 '[dependency-groups]\ndev = ["iniconfig==1.1.1"]\n'),
        **member("worker", ["shared", "certifi==2020.12.5", "charset-normalizer==3.3.2"]),
    })
    subprocess.run([UV, "lock", "--no-config"], cwd=root, check=True, capture_output=True,
                   timeout=300)
    return root


def commit(root: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    if not (root / ".git").exists():
        subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=root, check=True)


def build_layer(repo: Path, work: Path, deps: str, runtime="python3.12", arch="x86_64"):
    write(repo, {"build.yaml": BUILD.format(runtime=runtime, arch=arch, deps=deps)})
    return build(BuildOptions(repository=str(repo), workdir=work, components=("dependencies",)))


def unpack(output, dest: Path) -> Path:
    with zipfile.ZipFile(output.artifact("dependencies").zip_path) as archive:
        archive.extractall(dest)
    return dest / "python"


def python(version: str) -> str:
    """An interpreter of `version` (3.11, 3.12) on this machine, or the test is skipped."""
    pyenv = Path.home() / ".pyenv" / "versions"
    for candidate in (shutil.which(f"python{version}"),
                      *sorted(pyenv.glob(f"{version}.*/bin/python"))):
        if candidate and subprocess.run([str(candidate), "-c", "import sys; print(sys.version)"],
                                        capture_output=True, text=True
                                        ).stdout.startswith(version + "."):
            return str(candidate)
    pytest.skip(f"no Python {version} here to import the layer with")


def installed(site: Path, *modules: str, runtime: str = "python3.11") -> dict[str, str]:
    """Distributions and versions, read in a fresh interpreter of the runtime's Python after
    importing `modules`."""
    done = subprocess.run([python(runtime.removeprefix("python")), "-I", "-S", "-B", "-c",
                           IMPORTS, str(site), *modules],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wheel_tags(site: Path, name: str) -> list[str]:
    wheel = next(site.glob(f"{name}-*.dist-info")) / "WHEEL"
    return [line.split(": ", 1)[1] for line in wheel.read_text().splitlines()
            if line.startswith("Tag: ")]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return uv_workspace(tmp_path_factory.mktemp("ws") / "repo")


# -- uv.lock -----------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("runtime", ["python3.11", "python3.12"])
def test_a_uv_workspace_member_installs_exactly_its_locked_set(workspace, tmp_path, runtime):
    output = build_layer(workspace, tmp_path / "work", "    [packages/api/pyproject.toml]",
                         runtime=runtime)
    site = unpack(output, tmp_path / "layer")
    assert installed(site, "api", "shared", "six", "idna", runtime=runtime) == {
        "api": "0.1.0", "shared": "0.1.0", "six": "1.15.0", "idna": "2.10"}
    for name in ("api", "shared"):  # regular installs with their dist-info, not editable
        dist_info = next(site.glob(f"{name}-0.1.0.dist-info"))
        assert not (dist_info / "direct_url.json").exists()
        assert not list(site.glob("*.pth")) and (site / name / "__init__.py").is_file()
    assert dict(map(tuple, output.install["packages"])) == {
        "api": "0.1.0", "idna": "2.10", "shared": "0.1.0", "six": "1.15.0"}
    assert not any("not locked" in w for w in output.warnings)


@pytest.mark.network
def test_groups_and_extras_only_when_listed(workspace, tmp_path):
    output = build_layer(workspace, tmp_path / "work",
                         "    requirements: [packages/api]\n    groups: [dev]\n"
                         "    extras: [fast]")
    names = installed(unpack(output, tmp_path / "layer"), "attr", "iniconfig")
    assert names["attrs"] == "21.4.0" and names["iniconfig"] == "1.1.1"


@pytest.mark.network
def test_the_other_member_gets_its_own_closure_with_arm64_wheels(workspace, tmp_path):
    output = build_layer(workspace, tmp_path / "work", "    [packages/worker]", arch="arm64")
    site = unpack(output, tmp_path / "layer")
    names = {name for name, _ in map(tuple, output.install["packages"])}
    assert names == {"worker", "shared", "six", "certifi", "charset-normalizer"}
    tags = wheel_tags(site, "charset_normalizer")
    assert tags and all(t.endswith("aarch64") for t in tags), tags


@pytest.mark.network
def test_a_changed_lock_changes_the_set_and_an_unchanged_one_is_reused(tmp_path):
    repo = uv_workspace(tmp_path / "repo")
    work = tmp_path / "work"
    first = build_layer(repo, work, "    [packages/worker]")
    assert not first.artifact("dependencies").reused
    assert build_layer(repo, work, "    [packages/worker]").artifact("dependencies").reused
    write(repo, {"packages/shared/pyproject.toml": (repo / "packages/shared/pyproject.toml")
                 .read_text().replace("six==1.15.0", "six==1.16.0")})
    subprocess.run([UV, "lock", "--no-config"], cwd=repo, check=True, capture_output=True)
    again = build_layer(repo, work, "    [packages/worker]")
    assert not again.artifact("dependencies").reused
    assert dict(map(tuple, again.install["packages"]))["six"] == "1.16.0"


@pytest.mark.network
def test_a_uv_lock_that_no_longer_matches_pyproject_toml_is_refused(tmp_path):
    repo = write(tmp_path / "repo", {
        "app.py": "x = 1\n",
        "pyproject.toml": '[project]\nname = "app"\nversion = "0.1.0"\n'
                          'requires-python = ">=3.10"\ndependencies = ["six==1.15.0"]\n'})
    subprocess.run([UV, "lock", "--no-config"], cwd=repo, check=True, capture_output=True,
                   timeout=300)
    assert build_layer(repo, tmp_path / "w1", "    [pyproject.toml]").install["packages"]
    write(repo, {"pyproject.toml": (repo / "pyproject.toml").read_text().replace(
        '"six==1.15.0"', '"six==1.15.0", "idna<3"')})
    with pytest.raises(InstallError, match=r"^pyproject.toml: uv.lock is out of date: it no "
                                           r"longer matches pyproject.toml") as caught:
        build_layer(repo, tmp_path / "w2", "    [pyproject.toml]")
    assert caught.value.hint == "run `uv lock` and commit uv.lock"


def fake_uv(*answers):
    """A runner answering each uv call in turn with (returncode, stdout, stderr)."""
    calls = []

    def run(argv, env, cwd):
        calls.append(argv)
        code, out, err = answers[len(calls) - 1]
        return subprocess.CompletedProcess(argv, code, out, err)

    run.calls = calls
    return run


def test_a_lock_uv_cannot_check_is_exported_as_it_is_with_a_warning(tmp_path):
    write(tmp_path, {"pyproject.toml": '[project]\nname = "app"\nversion = "0.1.0"\n',
                     "uv.lock": "version = 1\n"})
    project = find_project(tmp_path, tmp_path)
    runner = fake_uv((2, "", "error: Failed to build `app @ file:///x`\n  hook failed"),
                     (0, "six==1.15.0 \\\n    --hash=sha256:abc\n", ""))
    exported = export(project, Selection(), tmp_path / "work", tmp_path, runner=runner)
    assert "--locked" in runner.calls[0] and "--frozen" not in runner.calls[0]
    assert {"--frozen", "--offline"} <= set(runner.calls[1])
    assert exported.path.read_text() == "six==1.15.0 --hash=sha256:abc\n"
    assert exported.warnings == ("pyproject.toml: uv could not check that uv.lock matches it "
                                 "(hook failed); the lock was exported as it is",)
    stale = fake_uv((2, "", "error: The lockfile at `uv.lock` needs to be updated, but "
                            "`--locked` was provided."))
    with pytest.raises(InstallError, match="uv.lock is out of date"):
        export(project, Selection(), tmp_path / "work", tmp_path, runner=stale)
    assert len(stale.calls) == 1

# -- poetry.lock and pylock.toml ---------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("runtime,arch", [("python3.11", "x86_64"), ("python3.12", "x86_64"),
                                          ("python3.12", "arm64")])
def test_a_poetry_project_installs_its_locked_main_group(tmp_path, runtime, arch):
    repo = tmp_path / "repo"
    shutil.copytree(POETRY_PROJECT, repo)
    write(repo, {"app.py": "x = 1\n"})
    output = build_layer(repo, tmp_path / "work", "    [pyproject.toml]", runtime=runtime,
                         arch=arch)
    site = unpack(output, tmp_path / "layer")
    found = installed(site, "poetry_app", "charset_normalizer", runtime=runtime) \
        if arch == "x86_64" else dict(map(tuple, output.install["packages"]))
    assert found == {"poetry-app": "0.1.0", "six": "1.15.0", "idna": "2.10",
                     "charset-normalizer": "3.3.2"}
    machine = "aarch64" if arch == "arm64" else "x86_64"
    assert all(t.endswith(machine) for t in wheel_tags(site, "charset_normalizer"))


@pytest.mark.network
def test_a_poetry_project_with_its_dev_group_and_extra(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(POETRY_PROJECT, repo)
    write(repo, {"app.py": "x = 1\n"})
    output = build_layer(repo, tmp_path / "work",
                         "    requirements: [.]\n    groups: [dev]\n    extras: [fast]")
    names = installed(unpack(output, tmp_path / "layer"), "attr", "iniconfig")
    assert (names["attrs"], names["iniconfig"]) == ("21.4.0", "1.1.1")


def pylock_project(root: Path, workspace: Path) -> Path:
    """A project of its own with a pylock.toml exported by uv from the workspace's worker."""
    done = subprocess.run([UV, "export", "--frozen", "--no-config", "--format", "pylock.toml",
                           "--no-emit-workspace", "--no-dev",
                           "--project", str(workspace / "packages/worker")],
                          capture_output=True, text=True, check=True)
    return write(root, {"pyproject.toml": '[project]\nname = "plain"\nversion = "1"\n'
                        'dependencies = ["six", "certifi", "charset-normalizer"]\n',
                        "pylock.toml": done.stdout, "app.py": "x = 1\n"})


@pytest.mark.network
@pytest.mark.parametrize("runtime,arch", [("python3.11", "x86_64"), ("python3.12", "x86_64"),
                                          ("python3.12", "arm64")])
def test_a_pylock_toml_installs_exactly_its_packages(workspace, tmp_path, runtime, arch):
    repo = pylock_project(tmp_path / "repo", workspace)
    output = build_layer(repo, tmp_path / "work", "    [pyproject.toml]", runtime=runtime,
                         arch=arch)
    site = unpack(output, tmp_path / "layer")
    assert dict(map(tuple, output.install["packages"])) == {
        "six": "1.15.0", "certifi": "2020.12.5", "charset-normalizer": "3.3.2"}
    machine = "aarch64" if arch == "arm64" else "x86_64"
    assert all(t.endswith(machine) for t in wheel_tags(site, "charset_normalizer"))
    if arch == "x86_64":  # this machine's CPU
        found = installed(site, "six", "certifi", "charset_normalizer", runtime=runtime)
        assert found["charset-normalizer"] == "3.3.2"


# -- hashes --------------------------------------------------------------------------------


@pytest.mark.network
def test_a_hash_mismatch_fails_naming_the_package(workspace, tmp_path):
    repo = pylock_project(tmp_path / "repo", workspace)
    lock = repo / "pylock.toml"
    blocks = lock.read_text().split("[[packages]]")
    blocks = [re.sub(r'sha256 = "[0-9a-f]{64}"', 'sha256 = "' + "0" * 64 + '"', block)
              if 'name = "six"' in block else block for block in blocks]
    lock.write_text("[[packages]]".join(blocks))
    with pytest.raises(InstallError) as failure:
        build_layer(repo, tmp_path / "work", "    [pyproject.toml]")
    assert failure.value.message.startswith("hash mismatch for six==1.15.0")


@pytest.mark.network
def test_a_requirements_file_with_hashes_requires_them_for_every_file(tmp_path):
    digest = "8b74bedcbbbaca38ff6d7491d76f2b06b3592611af620f8426e82dddb04a5ced"
    repo = write(tmp_path / "repo", {"app.py": "x = 1\n", "requirements.txt": (
        f"six==1.15.0 --hash=sha256:{digest}\nidna==2.10\n")})
    with pytest.raises(Exception) as failure:
        build_layer(repo, tmp_path / "work", "    [requirements.txt]")
    assert "idna" in str(failure.value) and "hash" in str(failure.value).lower()


# -- no lock -------------------------------------------------------------------------------


@pytest.mark.network
def test_a_project_without_a_lock_resolves_and_says_nothing_was_locked(tmp_path):
    repo = write(tmp_path / "repo", {
        "app.py": "x = 1\n",
        "pyproject.toml": '[project]\nname = "loose"\nversion = "2"\n'
                          'dependencies = ["idna"]\n' + BUILD_BACKEND,
        "src/loose/__init__.py": "import idna\n"})
    output = build_layer(repo, tmp_path / "work",
                         '    requirements: [pyproject.toml]\n    exclude_newer: "2020-06-01"')
    assert installed(unpack(output, tmp_path / "layer"), "loose") == {
        "loose": "2", "idna": "2.9"}  # idna 2.10 came out on 2020-06-27
    assert any("nothing was locked" in w for w in output.warnings)


# -- which lock wins, and what is refused ------------------------------------------------


def test_uv_lock_wins_over_poetry_lock_and_pylock_and_the_others_are_named(tmp_path):
    write(tmp_path, {"pyproject.toml": '[project]\nname = "p"\nversion = "1"\n',
                     "uv.lock": "version = 1\n", "poetry.lock": "", "pylock.toml": ""})
    project = find_project(tmp_path / "pyproject.toml", tmp_path)
    assert project.lock.name == "uv.lock"
    assert project.ignored == ("poetry.lock", "pylock.toml")
    (tmp_path / "uv.lock").unlink()
    assert find_project(tmp_path, tmp_path).lock.name == "poetry.lock"


def test_a_member_finds_the_workspace_lock(tmp_path):
    write(tmp_path, {"pyproject.toml": '[tool.uv.workspace]\nmembers = ["m"]\n',
                     "uv.lock": "version = 1\n",
                     "m/pyproject.toml": '[project]\nname = "m"\nversion = "1"\n'})
    assert find_project(tmp_path / "m", tmp_path).lock == tmp_path / "uv.lock"


def test_a_poetry_lock_without_groups_says_how_to_fix_it(tmp_path):
    write(tmp_path, {"pyproject.toml": '[tool.poetry]\nname = "p"\n',
                     "poetry.lock": '[metadata]\nlock-version = "2.0"\n'})
    with pytest.raises(SpecError) as failure:
        export(find_project(tmp_path, tmp_path), Selection(), tmp_path / "out", tmp_path)
    assert failure.value.hint == "run `poetry lock` with Poetry 2 and commit poetry.lock"


def test_a_local_package_outside_the_repository_is_refused(tmp_path):
    repo = write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "p"\nversion = "1"\n',
        "pylock.toml": 'lock-version = "1.0"\n[[packages]]\nname = "evil"\n'
                       'directory = { path = "../outside" }\n'})
    (tmp_path / "outside").mkdir()
    with pytest.raises(SpecError, match="outside the repository"):
        export(find_project(repo, repo), Selection(), tmp_path / "out", repo)


def test_groups_without_a_project_are_refused(tmp_path):
    repo = write(tmp_path / "repo", {"app.py": "x = 1\n", "requirements.txt": "six\n"})
    with pytest.raises(SpecError, match="groups and extras apply to pyproject.toml"):
        build_layer(repo, tmp_path / "work", "    requirements: [requirements.txt]\n"
                                             "    groups: [dev]")


def test_the_small_toml_reader_reads_locks_as_tomllib_does(workspace):
    tomllib = pytest.importorskip("tomllib")

    for path in [workspace / "uv.lock", POETRY_PROJECT / "poetry.lock",
                 POETRY_PROJECT / "pyproject.toml", ROOT / "pyproject.toml"]:
        text = path.read_text()
        assert _Reader(text, path.name).document() == tomllib.loads(text), path
    document = _Reader('a = """x\\\n  y"""\nb = 2024-01-02T03:04:05Z\n[t]\n"q.k" = [1, {x = 2}]\n',
                       "t").document()
    assert document == {"a": "xy", "b": "2024-01-02T03:04:05Z", "t": {"q.k": [1, {"x": 2}]}}
    with pytest.raises(SpecError) as failure:
        _Reader("a = 1\nb = [1,\n", "bad.toml").document()
    assert failure.value.file == "bad.toml" and failure.value.line == 2


# -- the cache key follows git requirements' commits --------------------------------------


class RecordingInstaller:
    """Answers `--version` like uv; each install records the requirement lines it got and
    writes nothing but a marker module."""

    def __init__(self):
        self.lines: list[list[str]] = []

    def __call__(self, argv, env, cwd):
        if argv[-1] == "--version":
            return subprocess.CompletedProcess(argv, 0, "uv 0.13.9\n", "")
        dest = Path(argv[argv.index("--target") + 1])
        files = [Path(argv[i + 1]) for i, a in enumerate(argv) if a == "-r"]
        self.lines.append([line for f in files for line in f.read_text().splitlines()])
        (dest / "marker.py").write_text(f"N = {len(self.lines)}\n")
        return subprocess.CompletedProcess(argv, 0, "Installed 1 package\n", "")


def test_a_git_requirement_on_a_branch_is_keyed_by_its_commit(make_repo, git_server, git_token,
                                                               tmp_path):
    lib = make_repo({"pyproject.toml": '[project]\nname = "lib"\nversion = "1"\n',
                     "VERSION": "one\n"}, name="lib")
    lib_url = git_server.add_repo("owner/lib", lib.path)
    app = make_repo({"app.py": "x = 1\n",
                     "requirements.txt": f"lib @ git+{lib_url}@main\n",
                     "build.yaml": BUILD.format(runtime="python3.12", arch="x86_64",
                                                deps="    [requirements.txt]")}, name="app")
    app_url = git_server.add_repo("owner/app", app.path)
    installer, work = RecordingInstaller(), tmp_path / "work"

    def once():
        output = build(BuildOptions(repository=app_url, workdir=work, token=git_token,
                                    components=("dependencies",)), runner=installer)
        return output.artifact("dependencies").reused

    def installed_version() -> str:
        line = next(x for x in installer.lines[-1] if x.startswith("lib @ "))
        return (Path(line.split("file://", 1)[1].split()[0]) / "VERSION").read_text()

    assert once() is False and installed_version() == "one\n"
    assert once() is True  # same commit on main: the set is reused
    lib.commit(files={"VERSION": "two\n"})
    assert once() is False  # the branch moved: installed again, from the new commit
    assert installed_version() == "two\n" and len(installer.lines) == 2
