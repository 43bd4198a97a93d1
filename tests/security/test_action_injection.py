"""Workflow-command injection through the action's inputs: a ref, function name, repository
or builder name holding a newline and then `::error`, `::add-mask::` or the old `##[...]`
syntax (a workflow_dispatch input is enough to send one) is shown, never acted on.

Each input is tried with `run()` on a StringIO, and once through action.yml as a runner runs
it. The check reads stdout as the runner does: inside a `::stop-commands::T` window nothing
is a command; outside it, the only commands are the ones the action itself emits.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from lambda3.action.run import ActionSettings, run

ROOT = Path(__file__).resolve().parents[2]
ROLE_ARN = "arn:aws:iam::123456789012:role/lambda3-deploy"
TOKEN = "ghs_injectioncanary0123456789"
PAYLOAD = ("x\n::error::injected\n  ::add-mask::pwned\r\n::set-output name=version::evil "
           "##[set-output name=alias;]evil")
ECHOING_BUILDER = '''
def handler(event, context):
    print("lambda3 request " + event["log_marker"])
    print("ref " + event["ref"] + " repository " + event["repository"])
    return {"ok": False, "error": {"step": "fetch", "type": "SourceError",
            "message": "cannot fetch " + event["ref"] + " of " + event["repository"]
                       + " for " + event["function"]}}
'''
INPUTS = {
    "ref": "LAMBDA3_REF",
    "function-name": "LAMBDA3_FUNCTION_NAME",
    "repository": "LAMBDA3_REPOSITORY",
    "builder-function": "LAMBDA3_BUILDER_FUNCTION",
}


def commands_outside_stop_windows(lines: list[str]) -> list[str]:
    """The lines the runner would act on: `::...` after trimming, outside stop windows."""
    acted, stopped = [], None
    for raw in lines:
        line = raw.lstrip()
        if stopped is not None:
            if line == f"::{stopped}::":
                acted.append(line)
                stopped = None
            continue
        if line.startswith("::"):
            acted.append(line)
            if line.startswith("::stop-commands::"):
                stopped = line.removeprefix("::stop-commands::")
    return acted


def assert_only_own_commands(lines: list[str]) -> None:
    acted = commands_outside_stop_windows(lines)
    stop_tokens = {line.removeprefix("::stop-commands::") for line in acted
                   if line.startswith("::stop-commands::")}
    for line in acted:
        name = line[2:].split("::", 1)[0].split(" ", 1)[0]
        assert name in {"add-mask", "group", "endgroup", "stop-commands", "error"} \
            or name in stop_tokens, line
        if name == "add-mask":
            assert "pwned" not in line and "injected" not in line, line
    errors = [line for line in acted if line.startswith("::error")]
    assert len(errors) == 1 and acted[-1] == errors[0], acted
    assert "%0A::error::injected" in errors[0]  # the value is shown, escaped, in one line
    assert not any("##[" in line for line in lines), "##[ reached the log unescaped"


@pytest.fixture
def echoing_builder(aws):
    aws.create_function("lambda3-builder", {"app.py": ECHOING_BUILDER})


def _environ(aws, oidc_issuer, tmp_path, **inputs) -> dict[str, str]:
    return {
        **oidc_issuer.runner_env(), "GITHUB_REPOSITORY": "octo-org/hello",
        "GITHUB_SHA": "e" * 40, "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "LAMBDA3_ENDPOINT_URL": aws.endpoint_url, "LAMBDA3_AWS_REGION": aws.region,
        "LAMBDA3_ROLE_TO_ASSUME": ROLE_ARN, "LAMBDA3_GITHUB_TOKEN": TOKEN,
        "LAMBDA3_REPOSITORY": "https://github.com/octo-org/hello.git", **inputs,
    }


def _create_role(aws) -> None:
    iam = aws.client("iam")
    try:
        iam.create_role(RoleName="lambda3-deploy", AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        pass


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_an_input_with_commands_is_never_acted_on(name, aws, oidc_issuer, echoing_builder,
                                                  tmp_path):
    _create_role(aws)
    settings = ActionSettings.from_environ(
        _environ(aws, oidc_issuer, tmp_path, **{INPUTS[name]: PAYLOAD}))
    out = io.StringIO()
    assert run(settings, stream=out) == 1
    lines = out.getvalue().splitlines()
    assert_only_own_commands(lines)
    assert lines[0] == f"::add-mask::{TOKEN}"


def test_the_checker_catches_an_injected_command():
    """The check itself fails on what an unescaped print would produce."""
    with pytest.raises(AssertionError):
        assert_only_own_commands(["lambda3: building x", "::add-mask::pwned",
                                  "::error::x%0A::error::injected"])
    with pytest.raises(AssertionError):
        assert_only_own_commands(["::error::x%0A::error::injected", "see ##[set-output]"])
    assert_only_own_commands(["::stop-commands::t1", "::error::inert", "::t1::",
                              "::error::x%0A::error::injected"])


@pytest.mark.network
def test_the_action_as_a_runner_runs_it_escapes_a_dispatched_ref(aws, oidc_issuer,
                                                                echoing_builder, tmp_path):
    from lambda3.embedded.runner import ActionRunner, default_base_env

    _create_role(aws)
    base_env = {**default_base_env(), **oidc_issuer.runner_env(),
                "LAMBDA3_ENDPOINT_URL": aws.endpoint_url}
    github = {"token": TOKEN, "repository": "octo-org/hello", "sha": "e" * 40}
    runner = ActionRunner(ROOT, tmp_path / "runner", github, base_env)
    result = runner.run({"aws-region": aws.region, "role-to-assume": ROLE_ARN, "ref": PAYLOAD})
    assert result.exit_code == 1 and result.failed_step == "Build and deploy with lambda3"
    assert_only_own_commands(result.raw_log)
    assert "pwned" not in result.masks and TOKEN in result.masks
    assert result.outputs["version"] == "" and result.outputs["alias"] == ""
