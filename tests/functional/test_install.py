"""builder.install: requirement rewriting, git requirements, the SDK closure, wheel checks
(with a fake installer), and real installs from PyPI for python3.11 x86_64 (network)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.errors import InstallError, SourceError, SpecError
from builder.install import (
    install_requirements,
    installer_version,
    run_preinstall,
    scrubbed_env,
    uv_platform,
)
from builder.process import ProcessError
from builder.runtimes import PROVIDED_PACKAGES, make_target
from builder.strip import strip_tree
from builder.wheels import incompatible_distributions, wheel_tag_supported

TOKEN = "ghs_s3cr3tT0kenValue"
PY311 = make_target("python3.11", "x86_64")
PY312_ARM = make_target("python3.12", "arm64")


# -- the environment children get ------------------------------------------------------


def test_scrubbed_env_drops_credentials_and_keeps_what_installers_need():
    base = {
        "PATH": "/usr/bin", "HOME": "/home/u", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost",
        "PIP_INDEX_URL": "https://user:pw@pypi.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://extra.example/simple",
        "UV_INDEX_URL": "https://user:pw@uv.example/simple", "UV_CACHE_DIR": "/c",
        "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CA_BUNDLE": "/etc/ssl/ca.pem",
    }
    secrets = {
        "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
        "AWS_SECURITY_TOKEN": "t", "AWS_PROFILE": "p", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "u",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t", "AWS_WEB_IDENTITY_TOKEN_FILE": "/f",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "AWS_SHARED_CREDENTIALS_FILE": "/f",
        "GITHUB_TOKEN": "g", "GH_TOKEN": "g", "LAMBDA3_TOKEN": "l",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "u", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t",
        "ACTIONS_RUNTIME_TOKEN": "t", "MY_SECRET": "s", "DB_PASSWORD": "p",
        "GOOGLE_APPLICATION_CREDENTIALS": "/f", "UV_INDEX_PRIVATE_PASSWORD": "p",
        "Some_Api_Key": "k",
    }
    env = scrubbed_env({**base, **secrets})
    assert env == base


def test_scrubbed_env_defaults_to_a_copy_of_os_environ(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example/simple")
    env = scrubbed_env()
    assert "GITHUB_TOKEN" not in env
    assert env["PIP_INDEX_URL"] == "https://pypi.example/simple"
    env["X"] = "1"
    assert "X" not in scrubbed_env()


# -- wheel tags ------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "target", "expected"), [
    ("py3-none-any", PY311, True),
    ("py2.py3-none-any", PY311, True),
    ("cp311-cp311-manylinux_2_17_x86_64", PY311, True),
    ("cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64", PY311, True),
    ("cp311-cp311-manylinux_2_26_x86_64", PY311, True),
    ("cp311-cp311-manylinux_2_28_x86_64", PY311, False),   # glibc too new for AL2
    ("cp311-cp311-manylinux1_x86_64", PY311, True),
    ("cp311-cp311-linux_x86_64", PY311, False),            # built here from an sdist
    ("cp311-cp311-musllinux_1_2_x86_64", PY311, False),
    ("cp311-cp311-manylinux_2_17_aarch64", PY311, False),  # wrong CPU
    ("cp312-cp312-manylinux_2_17_x86_64", PY311, False),   # another Python
    ("cp39-abi3-manylinux_2_17_x86_64", PY311, True),
    ("cp312-abi3-manylinux_2_17_x86_64", PY311, False),
    ("py3-none-manylinux_2_17_x86_64", PY311, True),
    ("cp312-cp312-manylinux_2_34_aarch64", PY312_ARM, True),
    ("cp312-cp312-manylinux_2_35_aarch64", PY312_ARM, False),
    ("pp310-pypy310_pp73-manylinux_2_17_x86_64", PY311, False),
    ("garbage", PY311, False),
])
def test_wheel_tag_supported(tag, target, expected):
    assert wheel_tag_supported(tag, target) is expected


def test_uv_platform_is_one_uv_accepts_and_the_target_too():
    assert uv_platform(PY311) == "x86_64-manylinux_2_17"  # uv has no manylinux_2_26
    assert uv_platform(make_target("python3.10", "arm64")) == "aarch64-manylinux_2_17"
    assert uv_platform(make_target("python3.13")) == "x86_64-manylinux_2_34"


def test_incompatible_distributions_reads_each_wheel_file(tmp_path):
    Dist("good", "1.0", "cp311-cp311-manylinux_2_17_x86_64").write(tmp_path)
    Dist("pure", "1.0").write(tmp_path)
    Dist("Local_Build", "2.0", "cp311-cp311-linux_x86_64").write(tmp_path)
    Dist("too-new", "3.0", "cp311-cp311-manylinux_2_28_x86_64").write(tmp_path)
    assert incompatible_distributions(tmp_path, PY311) == ["local-build", "too-new"]


# -- a fake installer ------------------------------------------------------------------


@dataclass
class Dist:
    name: str
    version: str
    tag: str = "py3-none-any"

    def write(self, dest: Path) -> None:
        module = self.name.replace("-", "_").lower()
        files = [f"{module}/__init__.py", f"{module}/core.py"]
        for rel in files:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_text("VALUE = 1\n")
        dist_info = dest / f"{module}-{self.version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {self.version}\n")
        (dist_info / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: {self.tag}\n")
        rows = [*files, f"{dist_info.name}/METADATA", f"{dist_info.name}/WHEEL"]
        (dist_info / "RECORD").write_text("".join(f"{row},,\n" for row in rows)
                                          + f"{dist_info.name}/RECORD,,\n")


class FakeInstaller:
    """Answers `--version` like uv, and for each install call "installs" the next scripted
    attempt (a list of Dist, or (exit code, stderr)). Keeps the argv, env and every file of
    the working directory it saw."""

    def __init__(self, *attempts, version="uv 0.13.9 (1a2b3c 2026-11-01)"):
        self.attempts = list(attempts)
        self.version = version
        self.calls: list[tuple[list[str], dict[str, str], Path | None]] = []
        self.files: dict[str, str] = {}

    def __call__(self, argv, env, cwd):
        if argv[-1] == "--version":
            return subprocess.CompletedProcess(argv, 0, self.version + "\n", "")
        self.calls.append((argv, env, cwd))
        for path in Path(cwd).rglob("*"):
            if path.is_file():
                self.files[str(path)] = path.read_text()
        attempt = self.attempts.pop(0) if self.attempts else []
        if isinstance(attempt, tuple):
            return subprocess.CompletedProcess(argv, attempt[0], "", attempt[1])
        dest = Path(argv[argv.index("--target") + 1])
        for dist in attempt:
            dist.write(dest)
        (dest / ".lock").touch()
        (dest / "bin").mkdir(exist_ok=True)
        (dest / "bin" / "tool").write_text("#!/home/me/.venv/bin/python\n")
        return subprocess.CompletedProcess(argv, 0, "", "Resolved 2 packages in 3ms\n"
                                           "Installed 2 packages in 1ms\n")

    @property
    def argv(self) -> list[str]:
        return self.calls[-1][0]

    def requirement_text(self) -> str:
        """Every file the installer could read, in name order."""
        return "".join(text for _, text in sorted(self.files.items()))


@pytest.fixture(autouse=True)
def no_index_lookups(request, monkeypatch, tmp_path):
    """With the fake installer, the index is a folder with nothing in it: the wheel
    lookups of builder.wheel_index answer "cannot tell" (tests marked network use PyPI)."""
    if not request.node.get_closest_marker("network"):
        monkeypatch.setenv("UV_DEFAULT_INDEX", (tmp_path / "no-index").as_uri())


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "localpkg").mkdir()
    (root / "wheels").mkdir()
    (root / "requirements.txt").write_text(
        "requests>=2  # a comment\n"
        "-r sub/more.txt\n"
        "-c constraints.txt\n"
        "-e ./localpkg\n"
        "--find-links ./wheels\n"
        "mylib @ git+https://github.com/acme/mylib.git@v1.2\n"
        "-e git+https://github.com/acme/mono.git@main#egg=mono&subdirectory=python\n"
        "other @ git+https://gitlab.com/x/other.git@abc123 ; python_version >= '3.8'\n"
        "vendored-1.0-py3-none-any.whl\n"
        "./localpkg[extra]\n"
        "https://files.example/pkg-2.0.tar.gz\n"
        "pydantic[email]==2.* \\\n"
        "    --hash=sha256:0000\n"
    )
    (root / "sub" / "more.txt").write_text("PyYAML\n-r ../extra.txt\n")
    (root / "extra.txt").write_text("attrs\n")
    (root / "constraints.txt").write_text("boto3==1.0\n")
    return root


class FakeFetch:
    def __init__(self):
        self.calls = []

    def __call__(self, url, ref, workdir, token):
        self.calls.append((url, ref, token))
        root = workdir / "src" / "checkout"
        (root / "python").mkdir(parents=True)
        (root / "setup.py").write_text("")
        return root


def install(repo, tmp_path, runner, **kwargs):
    kwargs.setdefault("native", False)
    kwargs.setdefault("fetch_vcs", FakeFetch())
    kwargs.setdefault("installer", "uv")
    return install_requirements([repo / "requirements.txt"], tmp_path / "site", PY311,
                                cache_dir=tmp_path / "cache", repo_root=repo, runner=runner,
                                **kwargs)


def test_requirements_are_rewritten_with_absolute_paths_and_git_checkouts(repo, tmp_path):
    runner, fetch = FakeInstaller([Dist("requests", "2.0")]), FakeFetch()
    install(repo, tmp_path, runner, fetch_vcs=fetch, token=TOKEN, source_host="github.com")
    text = runner.requirement_text()
    work = runner.calls[0][2]
    assert "requests>=2\n" in text and "# a comment" not in text
    assert f"-r {work}/requirements-1.txt\n" in text
    assert "PyYAML\n" in text and "attrs\n" in text            # nested includes followed
    assert f"-c {work}/requirements-3.txt\n" in text and "boto3==1.0\n" in text
    assert f"\n{repo / 'localpkg'}\n" in text                   # -e made a regular install
    assert f"--find-links {repo / 'wheels'}\n" in text
    assert f"\n{repo / 'vendored-1.0-py3-none-any.whl'}\n" in text
    assert f"\n{repo / 'localpkg'}[extra]\n" in text
    assert "\nhttps://files.example/pkg-2.0.tar.gz\n" in text
    assert f"mylib @ file://{work}/vcs-0/src/checkout\n" in text
    assert f"mono @ file://{work}/vcs-1/src/checkout/python\n" in text
    assert f"other @ file://{work}/vcs-2/src/checkout ; python_version >= '3.8'\n" in text
    assert "pydantic[email]==2.* --hash=sha256:0000\n" in text
    assert "git+" not in text and "-e " not in text
    assert fetch.calls == [
        ("https://github.com/acme/mylib.git", "v1.2", TOKEN),
        ("https://github.com/acme/mono.git", "main", TOKEN),
        ("https://gitlab.com/x/other.git", "abc123", None),  # another host: no token
    ]


@pytest.mark.parametrize(("url", "gets_token"), [
    ("git+https://github.com/acme/x.git@v1", True),
    ("git+https://GitHub.com/acme/x.git", True),
    ("git+https://github.com:8443/acme/x.git", False),   # another port, another host
    ("git+http://github.com/acme/x.git", False),         # never in clear text
    ("git+https://me:pw@github.com/acme/x.git", False),  # it has its own credentials
    ("git+https://github.com.evil.example/acme/x.git", False),
    ("git+http://127.0.0.1:9418/acme/x.git", False),
])
def test_which_git_requirements_get_the_token(repo, tmp_path, url, gets_token):
    (repo / "requirements.txt").write_text(f"x @ {url}\n")
    fetch = FakeFetch()
    install(repo, tmp_path, FakeInstaller(), fetch_vcs=fetch, token=TOKEN,
            source_host="github.com")
    assert fetch.calls[0][2] == (TOKEN if gets_token else None)


def test_the_token_reaches_only_the_fetch(repo, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("INNOCENT_LOOKING", f"x{TOKEN}x")
    caplog.set_level(logging.DEBUG)
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    runner = FakeInstaller((1, f"error: could not build mylib from {TOKEN}\n"))
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner, token=TOKEN, source_host="github.com")
    argv, env, _ = runner.calls[0]
    assert not any(TOKEN in arg for arg in argv)
    assert not any(TOKEN in value for value in env.values())
    assert not any(TOKEN in text for text in runner.files.values())
    assert TOKEN not in caplog.text
    assert TOKEN not in str(failure.value)
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before


def test_a_failed_fetch_is_an_install_error_naming_the_line(repo, tmp_path):
    def fetch(url, ref, workdir, token):
        raise SourceError("authentication failed for https://github.com/acme/mylib.git")

    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, FakeInstaller(), fetch_vcs=fetch, token=TOKEN,
                source_host="github.com")
    assert failure.value.file == "requirements.txt" and failure.value.line == 6
    assert "could not fetch https://github.com/acme/mylib.git@v1.2" in str(failure.value)


@pytest.mark.parametrize("line", [
    "-r ../outside.txt", "x @ file:///etc", "--find-links /etc", "-r linked.txt",
])
def test_paths_must_stay_inside_the_repository(repo, tmp_path, line):
    (tmp_path / "outside.txt").write_text("requests\n")
    (repo / "linked.txt").symlink_to(tmp_path / "outside.txt")
    (repo / "requirements.txt").write_text(line + "\n")
    with pytest.raises(SpecError, match="outside the repository"):
        install(repo, tmp_path, FakeInstaller())


@pytest.mark.parametrize("line", [
    "x @ git+ssh://git@github.com/acme/x.git", "-e hg+https://hg.example/x#egg=x",
])
def test_only_https_git_requirements_are_supported(repo, tmp_path, line):
    (repo / "requirements.txt").write_text(line + "\n")
    with pytest.raises(InstallError, match="unsupported VCS requirement") as failure:
        install(repo, tmp_path, FakeInstaller())
    assert "Lambda has no git" in failure.value.hint


def test_the_runtime_sdk_is_pinned_then_left_out(repo, tmp_path):
    (repo / "requirements.txt").write_text("requests\n")
    runner = FakeInstaller([Dist("requests", "2.0"), Dist("urllib3", "1.26.20"),
                            Dist("python-dateutil", "2.9.0.post0")])
    result = install(repo, tmp_path, runner)
    pins = "".join(f"{n}=={v}\n" for n, v in sorted(PROVIDED_PACKAGES.items()))
    constraints = runner.argv[runner.argv.index("-c") + 1]
    assert runner.files[constraints] == pins
    assert result.left_out == ("python-dateutil", "urllib3")
    assert result.packages == (("requests", "2.0"),)
    site = tmp_path / "site"
    assert sorted(p.name for p in site.iterdir()) == ["requests", "requests-2.0.dist-info"]


@pytest.mark.parametrize(("text", "runtime_packages"), [
    ("requests\n-r more.txt\n", "exclude"),  # boto3 named in an included file
    ("requests\n", "include"),
])
def test_naming_the_sdk_or_include_keeps_it(repo, tmp_path, caplog, text, runtime_packages):
    caplog.set_level(logging.INFO)
    (repo / "requirements.txt").write_text(text)
    (repo / "more.txt").write_text("Boto3>=1.30\n")
    runner = FakeInstaller([Dist("requests", "2.0"), Dist("urllib3", "2.2.0")])
    result = install(repo, tmp_path, runner, runtime_packages=runtime_packages)
    assert "-c" not in runner.argv
    assert result.left_out == ()
    assert ("urllib3", "2.2.0") in result.packages
    assert "keeping the AWS SDK packages" in caplog.text


def test_uv_command_for_a_cross_platform_install(repo, tmp_path):
    (repo / "requirements.txt").write_text("requests\n")
    runner = FakeInstaller([Dist("requests", "2.0")])
    result = install(repo, tmp_path, runner)
    argv = runner.argv
    assert argv[1:3] == ["pip", "install"]
    assert argv[argv.index("--target") + 1] == str(tmp_path / "site")
    assert argv[argv.index("--cache-dir") + 1] == str(tmp_path / "cache")
    assert {"--link-mode=hardlink", "--no-compile-bytecode"} <= set(argv)
    assert argv[argv.index("--python-platform") + 1] == "x86_64-manylinux_2_17"
    assert argv[argv.index("--python-version") + 1] == "3.11"
    assert argv[argv.index("--only-binary") + 1] == ":all:"
    assert "--no-binary" not in argv
    assert runner.calls[0][1]["PYTHONDONTWRITEBYTECODE"] == "1"
    assert result.installer == "uv 0.13.9"
    assert result.mode == ("cross-platform: x86_64-manylinux_2_17, Python 3.11, binary wheels "
                           "(sdists only for packages with no wheel)")


def test_native_installs_are_plain(repo, tmp_path):
    (repo / "requirements.txt").write_text("requests\n")
    runner = FakeInstaller([Dist("requests", "2.0", "cp311-cp311-linux_x86_64")])
    result = install(repo, tmp_path, runner, native=True)
    assert "--python-platform" not in runner.argv and "--python-version" not in runner.argv
    assert "--only-binary" not in runner.argv
    assert result.mode == "native"
    assert result.packages == (("requests", "2.0"),)  # built here, for here: no tag check


def test_pip_command_for_cross_and_native(repo, tmp_path):
    (repo / "requirements.txt").write_text("requests\n")
    runner = FakeInstaller([Dist("requests", "2.0")], version="pip 24.0 from /x (python 3.11)")
    result = install_requirements([repo / "requirements.txt"], tmp_path / "a", PY311,
                                  cache_dir=tmp_path / "cache", repo_root=repo, runner=runner,
                                  installer="pip", native=False)
    argv = runner.argv
    assert argv[:4] == [sys.executable, "-m", "pip", "install"]
    assert {"--no-compile", "--only-binary=:all:", "--implementation"} <= set(argv)
    assert [a for a in argv if a.startswith("--platform=")] == [
        f"--platform={p}" for p in PY311.pip_platforms()]
    assert argv[argv.index("--python-version") + 1] == "3.11"
    assert argv[argv.index("--cache-dir") + 1] == str(tmp_path / "cache")
    assert result.installer == "pip 24.0"
    assert result.mode == ("cross-platform: manylinux_2_26_x86_64, Python 3.11, "
                           "binary wheels only")
    install_requirements([repo / "requirements.txt"], tmp_path / "b", PY311,
                         cache_dir=tmp_path / "cache", repo_root=repo, runner=runner,
                         installer="pip", native=True)
    assert "--only-binary=:all:" not in runner.argv and "--no-compile" in runner.argv


UV_NO_WHEEL = (
    "error: No solution found when resolving dependencies\n  cause: Because all versions of "
    "{0} have no usable wheels and you require {0}, we can conclude that your requirements are "
    "unsatisfiable.\n\nhint: Wheels are required for `{0}` because building from source is "
    "disabled for all packages (i.e., with `--no-build`)\n")


def test_a_package_with_no_wheel_at_all_is_then_built_from_source(repo, tmp_path, caplog):
    # uv names one such package per failed resolution: each is let through in turn.
    caplog.set_level(logging.INFO)
    (repo / "requirements.txt").write_text("requests\ndocopt\nPyJsParser\n")
    runner = FakeInstaller((1, UV_NO_WHEEL.format("docopt")), (1, UV_NO_WHEEL.format("pyjsparser")),
                           [Dist("requests", "2.0"), Dist("docopt", "0.6.2"),
                            Dist("pyjsparser", "2.7.1")])
    result = install(repo, tmp_path, runner)
    first, second, third = (call[0] for call in runner.calls)
    assert "--no-binary" not in first
    assert second[-2:] == ["--no-binary", "docopt"]
    assert third[-4:] == ["--no-binary", "docopt", "--no-binary", "pyjsparser"]
    assert third[third.index("--only-binary") + 1] == ":all:"
    assert dict(result.packages) == {"requests": "2.0", "docopt": "0.6.2", "pyjsparser": "2.7.1"}
    assert "docopt: no wheel for python3.11" in caplog.text


def test_a_local_package_is_built_from_source_from_the_start(repo, tmp_path):
    (repo / "mylib").mkdir()
    (repo / "requirements.txt").write_text("mylib @ ./mylib\n./unnamed\n")
    (repo / "unnamed").mkdir()
    runner = FakeInstaller(
        (1, "error: Building source distributions is disabled, but attempted to build `unnamed`\n"),
        [Dist("mylib", "1.0"), Dist("unnamed", "0.1")])
    result = install(repo, tmp_path, runner)
    assert runner.calls[0][0][-2:] == ["--no-binary", "mylib"]
    assert runner.argv[-4:] == ["--no-binary", "mylib", "--no-binary", "unnamed"]
    assert dict(result.packages) == {"mylib": "1.0", "unnamed": "0.1"}


def test_an_sdist_that_builds_for_this_machine_only_fails_the_install(repo, tmp_path):
    (repo / "requirements.txt").write_text("fastthing\n")
    runner = FakeInstaller((1, UV_NO_WHEEL.format("fastthing")),
                           [Dist("fastthing", "2.0", "cp311-cp311-linux_x86_64")])
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner)
    assert len(runner.calls) == 2
    assert ("package fastthing needs compiling for the target (no wheel for "
            "manylinux_2_26_x86_64 / Python 3.11)") in str(failure.value)
    assert "pin a version with a wheel or build inside Lambda" in str(failure.value)
    assert failure.value.file == "requirements.txt"


def test_an_sdist_that_fails_to_build_on_its_own_is_a_build_failure(repo, tmp_path):
    # No compiler was called (builder.nocompiler logs every call): the package's own error.
    (repo / "requirements.txt").write_text("requests\nbrokenthing==6.3.0\n")
    runner = FakeInstaller((1, UV_NO_WHEEL.format("brokenthing")),
                           (1, "   Building brokenthing==6.3.0\n"
                               "error: Failed to build `brokenthing==6.3.0`\n"
                               "  cause: The build backend returned an error\n\n"
                               "         [stderr]\n         Traceback (most recent call last):\n"
                               "         NameError: name 'setup' is not defined\n\n"
                               "hint: Build failures usually indicate a problem\n"))
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner)
    assert len(runner.calls) == 2
    first, *detail = str(failure.value).splitlines()
    assert first.startswith("requirements.txt:2: package brokenthing failed to build from "
                            "source with Python 3.11: NameError: name 'setup' is not defined (")
    assert "needs compiling" not in str(failure.value)
    assert detail == ["    Traceback (most recent call last):",
                      "    NameError: name 'setup' is not defined"]


def test_natively_a_failed_build_is_retried_as_wheel_only(repo, tmp_path, caplog):
    (repo / "requirements.txt").write_text("cbor2\n")
    runner = FakeInstaller((1, "   Building cbor2==6.3.0\nerror: Failed to build `cbor2==6.3.0`\n"
                               "  cause: cargo failed\n"),
                           [Dist("cbor2", "5.9.0", "cp311-cp311-manylinux_2_17_x86_64")])
    result = install(repo, tmp_path, runner, native=True)
    assert "--only-binary" not in runner.calls[0][0]
    assert runner.argv[-2:] == ["--only-binary", "cbor2"]
    assert result.packages == (("cbor2", "5.9.0"),)
    assert "cbor2: the newest release needs compiling" in caplog.text


def test_natively_no_wheel_at_all_says_what_to_do(repo, tmp_path):
    (repo / "requirements.txt").write_text("fastthing\n")
    runner = FakeInstaller(
        (1, "error: Failed to build `fastthing==2.0`\n  cause: no compiler\n"),
        (1, UV_NO_WHEEL.format("fastthing")))
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner, native=True)
    message = str(failure.value)
    assert "package fastthing needs compiling for the target" in message
    assert "have no usable wheels" in message
    assert "pin a version with a wheel or build inside Lambda" in message


def test_pip_cross_platform_takes_wheels_only_and_reports_a_missing_one(repo, tmp_path):
    (repo / "requirements.txt").write_text("docopt\n")
    runner = FakeInstaller((1, "ERROR: Could not find a version that satisfies the requirement "
                               "docopt (from versions: none)\n"),
                           version="pip 24.0 from /x (python 3.11)")
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner, installer="pip")
    assert len(runner.calls) == 1 and "--no-binary" not in runner.argv
    assert str(failure.value).startswith(
        "requirements.txt: pip could not install the requirements: Could not find a version "
        "that satisfies the requirement docopt (from versions: none) (")


def test_installer_failure_carries_the_command_and_the_stderr_tail(repo, tmp_path):
    (repo / "requirements.txt").write_text("requests\n")
    stderr = "".join(f"line {i}\n" for i in range(40)) + "urllib3==1.26.20 conflicts\n"
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, FakeInstaller((2, stderr)))
    first, *detail = str(failure.value).splitlines()
    assert first.startswith("requirements.txt: uv could not install the requirements: "
                            "urllib3==1.26.20 conflicts (the runtime provides ")
    assert first.endswith("runtime_packages: include)")  # the hint ends the first line
    assert " pip install --target " not in str(failure.value)  # the command is only logged
    assert detail[-1] == "    urllib3==1.26.20 conflicts" and detail[0] == "    line 29"
    assert failure.value.step == "install"


def test_bin_lock_and_local_direct_urls_are_removed(repo, tmp_path):
    (repo / "requirements.txt").write_text("requests\n")

    class WithDirectUrl(Dist):
        def write(self, dest):
            super().write(dest)
            dist_info = dest / f"{self.name}-{self.version}.dist-info"
            (dist_info / "direct_url.json").write_text('{"url": "file:///tmp/x/mylib"}')
            with (dist_info / "RECORD").open("a") as record:
                record.write(f"{dist_info.name}/direct_url.json,,\n")

    result = install(repo, tmp_path, FakeInstaller([WithDirectUrl("mylib", "1.0")]))
    site = tmp_path / "site"
    assert not (site / "bin").exists() and not (site / ".lock").exists()
    assert not (site / "mylib-1.0.dist-info" / "direct_url.json").exists()
    assert "direct_url" not in (site / "mylib-1.0.dist-info" / "RECORD").read_text()
    assert result.packages == (("mylib", "1.0"),)
    install(repo, tmp_path / "again", FakeInstaller([Dist("mylib", "1.0")]), keep_bin=True)
    assert (tmp_path / "again" / "site" / "bin" / "tool").exists()


def test_destination_must_be_empty(repo, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "leftover.py").write_text("")
    with pytest.raises(ValueError, match="not empty"):
        install(repo, tmp_path, FakeInstaller())


def test_installer_version():
    assert installer_version(FakeInstaller(), installer="uv") == "uv 0.13.9"
    assert installer_version(installer="pip").startswith("pip ")


# -- preinstall ------------------------------------------------------------------------


def test_preinstall_runs_each_line_through_the_shell_with_a_scrubbed_env(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "GITHUB_TOKEN": TOKEN, "GREETING": "hi"}
    run_preinstall(['echo "$GREETING" > out.txt', 'echo "[$GITHUB_TOKEN]" >> out.txt'],
                   tmp_path, env=env)
    assert (tmp_path / "out.txt").read_text() == "hi\n[]\n"


def test_preinstall_failure_names_command_exit_code_and_stderr(tmp_path):
    with pytest.raises(ProcessError) as failure:
        run_preinstall(["true", "echo broken >&2; exit 3"], tmp_path)
    message = str(failure.value)
    assert "exit code 3" in message and "echo broken >&2; exit 3" in message
    assert failure.value.message.endswith("\nbroken")
    assert failure.value.step == "install"


# -- real installs from PyPI -----------------------------------------------------------

REQUIREMENTS = "requests\npydantic\ncryptography\nPyYAML\n"
IMPORT_ALL = r"""
import importlib, importlib.metadata, json, sys
sys.path.insert(0, sys.argv[1])
failed = {}
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
print(json.dumps({"failed": failed, "requests": importlib.metadata.version("requests"),
                  "path": sys.path}))
"""


@pytest.fixture(scope="module")
def pypi(tmp_path_factory):
    """Installs for python3.11 x86_64 from PyPI, sharing one installer cache."""
    base = tmp_path_factory.mktemp("pypi")
    cache = base / "cache"

    def run(name, text, **kwargs):
        repo = base / name / "repo"
        repo.mkdir(parents=True)
        (repo / "requirements.txt").write_text(text)
        site = base / name / "site"
        result = install_requirements([repo / "requirements.txt"], site, PY311,
                                      cache_dir=cache, repo_root=repo, native=False, **kwargs)
        return result, site

    run.cache = cache
    return run


def top_level_modules(site: Path) -> list[str]:
    """Every top-level module the installed distributions provide (top_level.txt, or the
    first part of each RECORD path)."""
    names = set()
    for dist_info in site.glob("*.dist-info"):
        top_level = dist_info / "top_level.txt"
        if top_level.exists():
            names.update(line.strip() for line in top_level.read_text().splitlines())
            continue
        for row in (dist_info / "RECORD").read_text().splitlines():
            first = row.split(",")[0].split("/")[0]
            if not first.endswith((".dist-info", ".data")) and first not in ("bin", ".."):
                names.add(first.split(".")[0])
    return sorted(n for n in names if n and "/" not in n)


@pytest.mark.network
def test_a_real_set_installs_strips_and_imports_in_a_fresh_interpreter(pypi):
    result, site = pypi("named-sdk", REQUIREMENTS + "boto3\n")
    names = {name for name, _ in result.packages}
    assert {"requests", "pydantic", "pydantic-core", "cryptography", "pyyaml", "boto3",
            "botocore", "s3transfer", "urllib3"} <= names
    assert result.left_out == ()
    assert not list(site.rglob("*.pyc")) and not (site / "bin").exists()
    stripped = strip_tree(site)
    assert stripped.removed_files > 0
    assert not list(site.rglob("__pycache__")) and not list(site.rglob("*.pyi"))
    modules = top_level_modules(site)
    assert {"requests", "pydantic", "pydantic_core", "cryptography", "yaml", "boto3",
            "botocore", "urllib3"} <= set(modules)
    done = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", IMPORT_ALL, str(site), *modules],
                          capture_output=True, text=True, check=True, timeout=120)
    report = json.loads(done.stdout)
    assert report["failed"] == {}
    assert report["requests"] == dict(result.packages)["requests"]
    assert not any("site-packages" in p for p in report["path"])


@pytest.mark.network
def test_the_runtime_sdk_is_left_out_unless_included(pypi):
    excluded, site = pypi("exclude", REQUIREMENTS)
    assert excluded.left_out == ("urllib3",)
    assert not any((site / name).exists() for name in ("urllib3", "boto3", "botocore"))
    assert not list(site.glob("urllib3*"))
    included, site = pypi("include", REQUIREMENTS, runtime_packages="include")
    assert included.left_out == ()
    assert (site / "urllib3").is_dir()
    assert {n for n, _ in included.packages} - {n for n, _ in excluded.packages} == {"urllib3"}


@pytest.mark.network
def test_a_second_install_works_from_the_cache_alone(pypi, monkeypatch):
    pypi("warm", "PyYAML\nidna\n")
    assert any(pypi.cache.iterdir())
    monkeypatch.setenv("UV_OFFLINE", "1")  # passed through to uv: no network at all
    result, site = pypi("offline", "PyYAML\nidna\n")
    assert {n for n, _ in result.packages} == {"pyyaml", "idna"}
    assert (site / "yaml" / "__init__.py").exists()


@pytest.mark.network
def test_pip_fallback_installs_wheels_for_the_target(pypi):
    result, site = pypi("pip", "PyYAML\n", installer="pip")
    assert result.installer.startswith("pip ")
    assert result.mode.endswith("binary wheels only")
    assert dict(result.packages)["pyyaml"]
    assert incompatible_distributions(site, PY311) == []
    assert not list(site.rglob("*.pyc"))


@pytest.mark.network
def test_newest_release_without_a_target_wheel_gives_way_to_one_with(pypi, monkeypatch, caplog):
    # cbor2 6.x ships only manylinux_2_28 wheels for x86_64 (too new for python3.11's glibc
    # 2.26) and a Rust sdist; 5.x has manylinux2014 wheels. Nothing is compiled: cargo is
    # kept offline, and a build attempt would show in the log.
    monkeypatch.setenv("CARGO_NET_OFFLINE", "true")
    caplog.set_level(logging.DEBUG)
    result, site = pypi("cbor2", "cbor2\n")
    assert "Building cbor2" not in caplog.text and "needs compiling" not in caplog.text
    assert incompatible_distributions(site, PY311) == []
    assert int(dict(result.packages)["cbor2"].split(".")[0]) < 6


@pytest.mark.network
def test_a_pure_python_sdist_is_built_beside_wheels_for_the_target(pypi, caplog):
    # docopt has never published a wheel; PyYAML has wheels for the target.
    caplog.set_level(logging.INFO)
    result, site = pypi("sdist", "docopt==0.6.2\nPyYAML\n")
    assert dict(result.packages)["docopt"] == "0.6.2"
    assert "docopt: no wheel for python3.11" in caplog.text
    assert (site / "docopt.py").is_file()
    assert incompatible_distributions(site, PY311) == []


@pytest.mark.network
def test_a_git_requirement_from_the_source_host_is_fetched_with_the_token_and_built(
        pypi, make_repo, git_server, git_token, caplog):
    from builder.source import source_host

    lib = make_repo({
        "pyproject.toml": ('[build-system]\nrequires = ["setuptools>=61"]\n'
                           'build-backend = "setuptools.build_meta"\n'
                           '[project]\nname = "mylib"\nversion = "1.2"\n'),
        "mylib/__init__.py": "ANSWER = 42\n",
    }, name="mylib", tag="v1.2")
    url = git_server.add_repo("acme/mylib", lib.path)
    caplog.set_level(logging.DEBUG)
    result, site = pypi("git", f"mylib @ git+{url}@v1.2\n", token=git_token,
                        source_host=source_host(url))
    assert ("mylib", "1.2") in result.packages
    assert (site / "mylib" / "__init__.py").read_text() == "ANSWER = 42\n"
    assert not list(site.glob("*.dist-info/direct_url.json"))
    assert git_token not in caplog.text
    assert not any(git_token.encode() in p.read_bytes() for p in site.rglob("*") if p.is_file())


# -- per-requirement options and the message format (fake installer) --------------------


def test_per_line_options_become_installer_options(repo, tmp_path):
    (repo / "requirements.txt").write_text(
        "requests==2.32.3 --hash=sha256:aa --hash sha256:bb\n"
        "PyYAML -C--build-option=--without-libyaml --only-binary=pyyaml\n"
        "attrs --no-binary attrs,:none:\n")
    runner = FakeInstaller([Dist("requests", "2.32.3"), Dist("pyyaml", "6.0"),
                            Dist("attrs", "25.1")])
    install(repo, tmp_path, runner)
    argv, text = runner.argv, runner.requirement_text()
    assert "requests==2.32.3 --hash=sha256:aa --hash=sha256:bb\n" in text
    assert "PyYAML\n" in text and "attrs\n" in text and "--only-binary=" not in text
    assert argv[argv.index("--config-settings-package") + 1] == (
        "pyyaml:--build-option=--without-libyaml")
    assert argv[-4:] == ["--no-binary", "attrs", "--only-binary", "pyyaml"]


def test_pip_gets_per_line_config_settings_as_its_own(repo, tmp_path):
    (repo / "requirements.txt").write_text("PyYAML --config-settings=k=v\n")
    runner = FakeInstaller([Dist("pyyaml", "6.0")], version="pip 24.0 from /x (python 3.11)")
    install(repo, tmp_path, runner, installer="pip", native=True)
    assert runner.argv[runner.argv.index("--config-settings") + 1] == "k=v"


@pytest.mark.parametrize(("line", "message"), [
    ("six --no-binary=:all:", "--no-binary=:all: on a requirement line applies to every package"),
    ("six --install-option=--prefix=/x", "--install-option is not supported"),
    ("six --index-url=https://x.example", "--index-url is not an option pip accepts after a"),
    ("./pkg -C k=v", "-C 'k=v': needs KEY=VALUE on a line that names its package"),
])
def test_per_line_options_pip_would_refuse_or_uv_cannot_take_name_the_line(repo, tmp_path,
                                                                           line, message):
    (repo / "pkg").mkdir()
    (repo / "requirements.txt").write_text(f"requests\n{line}\n")
    with pytest.raises(SpecError) as failure:
        install(repo, tmp_path, FakeInstaller())
    assert str(failure.value).startswith(f"requirements.txt:2: {message}")


def test_a_wheel_built_for_this_machine_only_is_needs_compiling_with_the_hint_first(repo,
                                                                                   tmp_path):
    (repo / "requirements.txt").write_text("requests\nfastthing==2.0\n")
    runner = FakeInstaller(
        (1, UV_NO_WHEEL.format("fastthing")),
        (1, "error: Failed to build `fastthing==2.0`\n  cause: The built wheel "
            "`fastthing-2.0-cp311-cp311-linux_x86_64.whl` is not compatible with the target "
            "Python 3.12 on Linux x86_64. Consider using `--no-build` to disable building "
            "wheels.\n"))
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner)
    first, *rest = str(failure.value).splitlines()
    assert first == ("requirements.txt:2: package fastthing needs compiling for the target (no "
                     "wheel for manylinux_2_26_x86_64 / Python 3.11) (pin a version with a "
                     "wheel or build inside Lambda)")
    assert rest and all(line.startswith("    ") for line in rest)


def test_a_dependency_no_line_names_is_reported_against_the_files(repo, tmp_path):
    (repo / "requirements.txt").write_text("requests\n")
    runner = FakeInstaller((1, UV_NO_WHEEL.format("fastthing")),
                           [Dist("requests", "2.0"), Dist("fastthing", "2.0",
                                                          "cp311-cp311-linux_x86_64")])
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner)
    assert (failure.value.file, failure.value.line) == ("requirements.txt", None)
    assert "package fastthing needs compiling" in str(failure.value)


def test_the_installers_own_errors_name_the_users_line_not_the_copy(repo, tmp_path):
    (repo / "requirements.txt").write_text("# pins\nrequests\n-r sub/more.txt\n")
    (repo / "sub" / "more.txt").write_text("\n\nattrs\nbad line here\n")
    runner = FakeInstaller(
        (2, "error: Couldn't parse requirement in `requirements-1.txt` at position 6\n"
            "  cause: Expected end of input\n"))
    with pytest.raises(InstallError) as failure:
        install(repo, tmp_path, runner)
    assert (failure.value.file, failure.value.line) == ("sub/more.txt", 4)
    assert "requirements-1.txt" not in str(failure.value)
    assert "in `sub/more.txt:4`" in str(failure.value)


@pytest.mark.network
def test_stripping_and_compiling_a_hardlinked_install_leaves_uvs_cache_intact(pypi):
    # uv hardlinks from its cache into the target: every later step must replace or delete
    # a file, never edit one in place, or the next build would install the edited copy.
    import base64
    import csv
    import hashlib

    from builder.bytecode import compile_bytecode

    result, site = pypi("hardlinked", "PyYAML\nidna\nrequests\n")  # urllib3: left out
    assert result.left_out == ("urllib3",)
    strip_tree(site, exclude=["idna/codec.py"])
    compile_bytecode(site, "/opt/python")
    linked = [p for p in site.rglob("*") if p.is_file() and p.stat().st_nlink > 1]
    assert linked  # the install did hardlink (else this test proves nothing)
    checked = 0
    for record in pypi.cache.glob("archive-v0/*/*.dist-info/RECORD"):
        root = record.parent.parent
        for row in csv.reader(record.read_text().splitlines()):
            if len(row) < 2 or not row[1].startswith("sha256="):
                continue
            digest = base64.urlsafe_b64encode(hashlib.sha256((root / row[0]).read_bytes())
                                              .digest()).rstrip(b"=").decode()
            assert digest == row[1].removeprefix("sha256="), f"{root.name}/{row[0]} was edited"
            checked += 1
    assert checked > 100
