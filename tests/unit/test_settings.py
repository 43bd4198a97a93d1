"""Deploy settings: flag over config.ini over default; the seed's sections and flags."""
from __future__ import annotations

import pytest

from builder.errors import RequestError
from lambda3.cli import parse as cli_parse
from lambda3.settings import repository_url, resolve

CONFIG = """
[aws]
profile = work
region = eu-west-1
bucket = my-artifacts
builder = team-builder

[github]
user = acme
token = from-config-token

[deploy]
function = from-config
alias = staging
"""


def parse(*argv):
    return cli_parse(["deploy", *argv])


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "my-service"
    folder.mkdir()
    return folder


def test_defaults_come_from_the_folder_name(project):
    settings = resolve(parse("-g", "acme/my-service", "-c", str(project / "none.ini")),
                       environ={}, cwd=project)
    assert settings.function == "my-service"
    assert settings.repository == "https://github.com/acme/my-service.git"
    assert settings.builder == "lambda3-builder"
    assert settings.publish is True and settings.alias is None and settings.token is None


def test_config_fills_what_flags_do_not_give(project):
    (project / "config.ini").write_text(CONFIG)
    settings = resolve(parse("-c", str(project / "config.ini")), environ={}, cwd=project)
    assert (settings.function, settings.alias, settings.profile, settings.region) == (
        "from-config", "staging", "work", "eu-west-1")
    assert settings.repository == "https://github.com/acme/my-service.git"
    assert (settings.bucket, settings.builder, settings.token) == (
        "my-artifacts", "team-builder", "from-config-token")


def test_flags_win_over_config(project):
    (project / "config.ini").write_text(CONFIG)
    args = parse("-c", str(project / "config.ini"), "-f", "flagged", "-a", "live", "-p", "p2",
                 "-r", "us-west-2", "-b", "v1.2", "-g", "other/repo", "function", "dependencies")
    settings = resolve(args, environ={}, cwd=project)
    assert (settings.function, settings.alias, settings.profile, settings.region) == (
        "flagged", "live", "p2", "us-west-2")
    assert settings.ref == "v1.2"
    assert settings.repository == "https://github.com/other/repo.git"
    assert settings.components == ("function", "dependencies")


def test_environment_token_wins_over_config_and_there_is_no_token_flag(project):
    (project / "config.ini").write_text(CONFIG)
    settings = resolve(parse("-c", str(project / "config.ini")),
                       environ={"LAMBDA3_TOKEN": "env-token"}, cwd=project)
    assert settings.token == "env-token"
    assert "env-token" not in repr(settings)
    with pytest.raises(SystemExit):
        parse("--token", "x")


def test_no_publish_and_publish_flags(project):
    ini = str(project / "none.ini")
    assert resolve(parse("-c", ini, "-g", "a/b", "--no-publish"), environ={},
                   cwd=project).publish is False
    assert resolve(parse("-c", ini, "-g", "a/b", "-v"), environ={}, cwd=project).publish is True


def test_repository_forms(tmp_path):
    assert repository_url("https://git.example/x.git", None) == "https://git.example/x.git"
    assert repository_url("owner/name", None) == "https://github.com/owner/name.git"
    assert repository_url("name", "me") == "https://github.com/me/name.git"
    assert repository_url(str(tmp_path), None) == str(tmp_path)
    with pytest.raises(RequestError, match=r"\[github\]"):
        repository_url("name", None)
