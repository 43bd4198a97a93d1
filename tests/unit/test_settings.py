"""Deploy settings: flag over config.ini over default; the seed's sections and flags."""
from __future__ import annotations

import pytest

from builder.clients import ConfigError
from builder.errors import RequestError
from lambda3.cli import parse as cli_parse
from lambda3.settings import AwsSettings, aws_settings, read_config, repository_url, resolve

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
    settings = resolve(parse("-g", "acme/my-service"), environ={}, cwd=project)
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
    assert resolve(parse("-g", "a/b", "--no-publish"), environ={},
                   cwd=project).publish is False
    assert resolve(parse("-g", "a/b", "-v"), environ={}, cwd=project).publish is True


def test_repository_forms(tmp_path):
    assert repository_url("https://git.example/x.git", None) == "https://git.example/x.git"
    assert repository_url("owner/name", None) == "https://github.com/owner/name.git"
    assert repository_url("name", "me") == "https://github.com/me/name.git"
    assert repository_url(str(tmp_path), None) == str(tmp_path)
    with pytest.raises(RequestError, match=r"\[github\]"):
        repository_url("name", None)


def test_the_default_config_is_read_from_the_folder_and_may_be_absent(project):
    assert resolve(parse("-g", "a/b"), environ={}, cwd=project).region is None
    (project / "config.ini").write_text(CONFIG)
    assert resolve(parse("-g", "a/b"), environ={}, cwd=project).region == "eu-west-1"


def test_an_explicit_config_that_is_missing_names_the_flag(project):
    with pytest.raises(ConfigError, match="-c/--config") as caught:
        resolve(parse("-g", "a/b", "-c", str(project / "none.ini")), environ={}, cwd=project)
    assert "none.ini does not exist" in str(caught.value)


def test_a_broken_config_file_is_one_clear_error(project):
    (project / "config.ini").write_text("region = eu-west-1\n")
    with pytest.raises(ConfigError, match="config.ini: not a valid config file"):
        resolve(parse("-g", "a/b"), environ={}, cwd=project)


def test_aws_settings_order_is_flag_then_environment_then_config(project):
    (project / "config.ini").write_text(CONFIG)
    config = read_config(project / "config.ini")
    config.set("aws", "endpoint_url", "http://from-config")
    environ = {"AWS_REGION": "us-west-2", "AWS_PROFILE": "env-profile",
               "LAMBDA3_ENDPOINT_URL": "http://from-env"}
    from_env = aws_settings(parse(), config, environ)
    assert from_env == AwsSettings("us-west-2", "env-profile", "http://from-env")
    from_config = aws_settings(parse(), config, {})
    assert from_config == AwsSettings("eu-west-1", "work", "http://from-config")
    flags = parse("-r", "ap-south-1", "-p", "flag-profile", "--endpoint-url", "http://flag")
    assert aws_settings(flags, config, environ) == AwsSettings(
        "ap-south-1", "flag-profile", "http://flag")
    assert aws_settings(parse(), config, {"AWS_DEFAULT_REGION": "sa-east-1"}).region == (
        "sa-east-1")


def test_a_path_like_source_that_does_not_exist_names_both_readings(project):
    with pytest.raises(RequestError) as caught:
        resolve(parse("example/hello"), environ={}, cwd=project)
    assert "-g example/hello" in str(caught.value) and "local" in str(caught.value)
    (project / "config.ini").write_text("[github]\nuser = acme\n")
    settings = resolve(parse("example/hello"), environ={}, cwd=project)
    assert settings.repository == "https://github.com/example/hello.git"
    assert not settings.source_is_local


def test_inline_comments_and_percent_signs_in_config_ini(project):
    (project / "config.ini").write_text(
        "[aws]\nbucket = my-artifacts       ; for zips over 50 MB\n"
        "[github]\ntoken = ab%cd ; better: LAMBDA3_TOKEN\n")
    settings = resolve(parse("-g", "a/b"), environ={}, cwd=project)
    assert (settings.bucket, settings.token) == ("my-artifacts", "ab%cd")
