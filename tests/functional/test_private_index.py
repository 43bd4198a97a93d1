"""A private index behind basic auth: the credentials of the request work, and leak nowhere.

The index's password is a canary; it is looked for in the log, the result, every zip, every
path and file of the work dir, the installer's command lines and environments, and the
command lines of every process running during the build.
"""
from __future__ import annotations

import base64
import logging
import os
import tempfile
import threading
from pathlib import Path

import pytest

from builder.build import BuildOptions, build
from builder.errors import SpecError
from builder.process import run

BUILD = """\
function:
  runtime: python3.12
  files: [app.py]
layers:
  dependencies:
    requirements: [requirements.txt]
    index_url: {url}
"""


def repo_with(root: Path, index, requirements: str = "privpkg==1.0\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text("import privpkg\n")
    (root / "requirements.txt").write_text(requirements)
    (root / "build.yaml").write_text(BUILD.format(url=index.simple))
    return root


class Watched:
    """The real runner, recording each command and environment, and the command lines of
    every process on the machine while a child runs."""

    def __init__(self):
        self.argv: list[list[str]] = []
        self.env: list[dict[str, str]] = []
        self.cmdlines: set[str] = set()

    def __call__(self, argv, env, cwd):
        self.argv.append(list(argv))
        self.env.append(dict(env))
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(done,), daemon=True)
        watcher.start()
        try:
            return run(argv, env=env, cwd=cwd, step="install")
        finally:
            done.set()
            watcher.join()

    def _watch(self, done: threading.Event) -> None:
        while not done.wait(0.005):
            for pid in os.listdir("/proc"):
                try:
                    self.cmdlines.add(Path(f"/proc/{pid}/cmdline").read_bytes().decode(
                        "utf-8", "replace"))
                except OSError:
                    continue


def forms(secret: str) -> list[str]:
    pair = f"deploy:{secret}"
    return [secret, base64.b64encode(pair.encode()).decode()]


def everything_written(work: Path) -> str:
    parts = []
    for directory, dirnames, filenames in os.walk(work):
        for name in dirnames + filenames:
            path = Path(directory, name)
            parts.append(str(path))
            if path.is_file() and not path.is_symlink():
                parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


@pytest.mark.network
def test_credentials_reach_the_index_and_nothing_else(private_index, tmp_path, caplog):
    private_index.add("privpkg", "1.0", "SECRET_PACKAGE = 'one'\n")
    repo = repo_with(tmp_path / "repo", private_index)
    runner, work = Watched(), tmp_path / "work"
    before = set(Path(tempfile.gettempdir()).glob("lambda3-netrc-*"))
    caplog.set_level(logging.DEBUG)
    output = build(BuildOptions(repository=str(repo), workdir=work, components=("dependencies",),
                                index_credentials=((private_index.host,
                                                    f"deploy:{private_index.password}"),)),
                   runner=runner)
    assert dict(map(tuple, output.install["packages"])) == {"privpkg": "1.0"}
    assert ("/files/privpkg-1.0-py3-none-any.whl", "deploy") in private_index.requests
    seen = "\n".join([caplog.text, str(output.to_json()), everything_written(work),
                      *(" ".join(a) for a in runner.argv),
                      *(f"{k}={v}" for e in runner.env for k, v in e.items()),
                      *runner.cmdlines])
    assert runner.cmdlines and any("pip install" in c.replace("\0", " ") for c in runner.cmdlines)
    for form in forms(private_index.password):
        assert form not in seen
    assert set(Path(tempfile.gettempdir()).glob("lambda3-netrc-*")) == before  # removed


@pytest.mark.network
def test_without_credentials_the_index_refuses(private_index, tmp_path):
    private_index.add("privpkg", "1.0", "X = 1\n")
    repo = repo_with(tmp_path / "repo", private_index)
    with pytest.raises(Exception) as failure:
        build(BuildOptions(repository=str(repo), workdir=tmp_path / "work",
                           components=("dependencies",)))
    assert "privpkg" in str(failure.value)
    assert private_index.refused > 0


@pytest.mark.network
def test_a_new_password_reuses_the_installed_set(private_index, tmp_path):
    private_index.add("privpkg", "1.0", "X = 1\n")
    repo = repo_with(tmp_path / "repo", private_index)
    work = tmp_path / "work"

    def once(password: str):
        private_index.password = password
        return build(BuildOptions(repository=str(repo), workdir=work, components=("dependencies",),
                                  index_credentials=((private_index.host,
                                                      f"deploy:{password}"),)))

    assert not once("first-password").artifact("dependencies").reused
    assert once("rotated-password").artifact("dependencies").reused


def test_a_token_in_a_requirements_index_url_does_not_change_the_key(tmp_path):
    from tests.security.test_dependency_cache import Installer, make_repo
    from tests.security.test_dependency_cache import run as build_with

    installer, work = Installer(), tmp_path / "work"
    repo = make_repo(tmp_path / "repo", {"requirements.txt":
                                         "--extra-index-url https://u:tok1@idx.example/simple\n"
                                         "pkg==1\n"})
    assert not build_with(repo, work, installer).reused
    (repo / "requirements.txt").write_text("--extra-index-url https://u:tok2@idx.example/simple\n"
                                           "pkg==1\n")
    assert build_with(repo, work, installer).reused
    (repo / "requirements.txt").write_text("--extra-index-url https://u:tok2@other.example/simple\n"
                                           "pkg==1\n")
    assert not build_with(repo, work, installer).reused


def test_credentials_in_the_build_file_are_refused(private_index, tmp_path):
    repo = repo_with(tmp_path / "repo", private_index)
    (repo / "build.yaml").write_text(BUILD.format(url="https://user:pw@idx.example/simple"))
    with pytest.raises(SpecError) as failure:
        build(BuildOptions(repository=str(repo), workdir=tmp_path / "work"))
    assert failure.value.key == "layers.dependencies.index_url"
    assert "pw" not in failure.value.message


class FakeCodeArtifact:
    """The two calls the builder makes, answered for the private index."""

    def __init__(self, index, fail: str | None = None):
        self.index, self.fail, self.calls = index, fail, []

    def get_repository_endpoint(self, **kwargs):
        self.calls.append(("get_repository_endpoint", kwargs))
        if self.fail:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": self.fail, "Message": "no"}},
                              "GetRepositoryEndpoint")
        return {"repositoryEndpoint": f"{self.index.url}/"}

    def get_authorization_token(self, **kwargs):
        self.calls.append(("get_authorization_token", kwargs))
        return {"authorizationToken": self.index.password}


CODEARTIFACT = """\
function:
  runtime: python3.12
  files: [app.py]
layers:
  dependencies:
    requirements: [requirements.txt]
    codeartifact: {domain: acme, repository: pypi-store}
"""


@pytest.mark.network
def test_a_codeartifact_repository_is_the_index_with_a_token_of_the_builder(
        private_index, tmp_path, caplog):
    private_index.user = "aws"
    private_index.add("privpkg", "1.0", "X = 1\n")
    repo = repo_with(tmp_path / "repo", private_index)
    (repo / "build.yaml").write_text(CODEARTIFACT)
    client, work = FakeCodeArtifact(private_index), tmp_path / "work"
    caplog.set_level(logging.DEBUG)
    output = build(BuildOptions(repository=str(repo), workdir=work, components=("dependencies",),
                                codeartifact=client))
    assert dict(map(tuple, output.install["packages"])) == {"privpkg": "1.0"}
    assert client.calls == [
        ("get_repository_endpoint", {"domain": "acme", "repository": "pypi-store",
                                     "format": "pypi"}),
        ("get_authorization_token", {"domain": "acme", "durationSeconds": 900})]
    seen = "\n".join([caplog.text, str(output.to_json()), everything_written(work)])
    assert private_index.password not in seen


def test_a_refused_codeartifact_call_says_what_to_grant(private_index, tmp_path):
    repo = repo_with(tmp_path / "repo", private_index)
    (repo / "build.yaml").write_text(CODEARTIFACT)
    with pytest.raises(Exception) as failure:
        build(BuildOptions(repository=str(repo), workdir=tmp_path / "work",
                           components=("dependencies",),
                           codeartifact=FakeCodeArtifact(private_index, "AccessDeniedException")))
    assert str(failure.value.message) == "CodeArtifact acme/pypi-store: AccessDeniedException"
    assert "--codeartifact acme/pypi-store" in failure.value.hint


def test_bootstrap_grants_codeartifact_only_when_asked_and_only_those_repositories():
    from bootstrap.policies import Account, PolicyError, builder_policy, check_codeartifact
    from tests.policy_eval import allowed

    where = Account("123456789012", "eu-west-1")
    repo = "arn:aws:codeartifact:eu-west-1:123456789012:repository/acme/pypi-store"
    domain = "arn:aws:codeartifact:eu-west-1:123456789012:domain/acme"
    bearer = {"sts:AWSServiceName": "codeartifact.amazonaws.com"}
    plain = [builder_policy(where, "lambda3-builder", "bucket")]
    granted = [builder_policy(where, "lambda3-builder", "bucket", ("acme/pypi-store",))]
    assert not allowed(plain, "codeartifact:GetAuthorizationToken", domain)
    assert allowed(granted, "codeartifact:GetAuthorizationToken", domain)
    assert allowed(granted, "codeartifact:ReadFromRepository", repo)
    assert allowed(granted, "codeartifact:GetRepositoryEndpoint", repo)
    assert not allowed(granted, "codeartifact:ReadFromRepository", repo.replace("pypi-store",
                                                                                  "other"))
    assert allowed(granted, "sts:GetServiceBearerToken", "*", bearer)
    assert not allowed(granted, "sts:GetServiceBearerToken", "*",
                       {"sts:AWSServiceName": "lambda.amazonaws.com"})
    with pytest.raises(PolicyError, match="is not DOMAIN/REPOSITORY"):
        check_codeartifact(["acme"])
