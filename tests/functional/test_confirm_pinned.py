"""`lambda3 deploy` without -y deploys the commit it showed, even if the branch moves while
the question is on the screen."""
from __future__ import annotations

import io
import sys

from lambda3.cli import main

APP = "def handler(event, context):\n    return {'v': %d}\n"


class _AnswerAfterAPush(io.StringIO):
    """A terminal whose user answers "y" only after someone pushed to the branch."""

    def __init__(self, push) -> None:
        super().__init__("y\n")
        self.push = push

    def isatty(self) -> bool:
        return True

    def readline(self, *args) -> str:
        self.push()
        return super().readline(*args)


def test_the_confirmed_commit_is_the_one_deployed(aws, git_server, make_repo, tmp_path,
                                                  monkeypatch, git_token, capsys):
    role = aws.lambda_role()
    spec = (f"function:\n  runtimes: [python3.11]\n  handler: app.handler\n  role: {role}\n"
            "  files: [app.py]\n")
    repo = make_repo({"app.py": APP % 1, "build.yaml": spec})
    shown = repo.commit("first")
    url = git_server.add_repo("acme/pinned", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    monkeypatch.chdir(tmp_path)
    pushed = []
    monkeypatch.setattr(sys, "stdin", _AnswerAfterAPush(
        lambda: pushed.append(repo.commit("moved", files={"app.py": APP % 2}))))
    code = main(["deploy", "--local-builder", "--endpoint-url", aws.endpoint_url, "-g", url,
                 "-f", "pinned", "-b", "main", "-a", "live"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert pushed and pushed[0] != shown
    assert f"commit:      {shown}" in out
    version = aws.client("lambda").get_alias(FunctionName="pinned", Name="live")
    described = aws.client("lambda").get_function_configuration(
        FunctionName="pinned", Qualifier=version["FunctionVersion"])["Description"]
    assert shown[:12] in described and pushed[0][:12] not in described


def test_index_credentials_come_from_the_environment_as_the_secret_field(monkeypatch):
    import pytest

    from builder.errors import RequestError
    from lambda3.settings import read_index_credentials as index_credentials

    env = {"CREDS": '{"pypi.example.com": "deploy:s3cr3t-canary"}'}
    assert index_credentials("CREDS", env) == (("pypi.example.com", "deploy:s3cr3t-canary"),)
    assert index_credentials(None, {}) == ()
    with pytest.raises(RequestError, match="CREDS must be a JSON object"):
        index_credentials("CREDS", {"CREDS": '["x"]'})
    with pytest.raises(RequestError, match="is not set"):
        index_credentials("NOPE", {})
    from builder.contract import BuildRequest
    request = BuildRequest(repository="r", function="f",
                           index_credentials=index_credentials("CREDS", env))
    assert "s3cr3t-canary" not in repr(request)


def test_allow_older_moves_an_alias_back(aws, git_server, make_repo, tmp_path, monkeypatch,
                                         git_token, capsys):
    role = aws.lambda_role()
    spec = (f"function:\n  runtimes: [python3.11]\n  handler: app.handler\n  role: {role}\n"
            "  files: [app.py]\n")
    repo = make_repo({"app.py": APP % 1, "build.yaml": spec})
    old = repo.commit("old")
    repo.commit("new", files={"app.py": APP % 2})
    url = git_server.add_repo("acme/older", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    monkeypatch.chdir(tmp_path)
    base = ["deploy", "--local-builder", "--endpoint-url", aws.endpoint_url, "-g", url,
            "-f", "older", "-a", "live", "-y"]
    assert main(base + ["-b", "main"]) == 0
    capsys.readouterr()
    assert main(base + ["-b", old]) == 1
    assert "--allow-older" in capsys.readouterr().err
    assert main(base + ["-b", old, "--allow-older"]) == 0
    alias = aws.client("lambda").get_alias(FunctionName="older", Name="live")
    described = aws.client("lambda").get_function_configuration(
        FunctionName="older", Qualifier=alias["FunctionVersion"])["Description"]
    assert old[:12] in described
