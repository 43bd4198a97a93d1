"""The README's first command, end to end: `lambda3 demo` runs the GitHub Action as a runner
would (action.yml's steps, a local OIDC issuer, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY) against
the bootstrapped builder on the emulator, twice."""
from __future__ import annotations

import json

import pytest

from lambda3.embedded.demo import Demo

pytestmark = [pytest.mark.slow, pytest.mark.network]


def test_demo(tmp_path):
    """One run of the demo (it takes a while), checked from every side below."""
    lines: list[str] = []
    demo = Demo(tmp_path, say=lines.append)
    assert demo.run() == 0, "\n".join(lines[-40:])
    check_first_deploy(demo)
    check_code_only_redeploy(demo)
    check_answers(demo)
    check_token_never_shows(demo, lines)


def check_first_deploy(demo):
    first = demo.deploys[0]
    assert first.exit_code == 0
    outputs = first.outputs
    assert outputs["version"] == "1" and outputs["alias"] == "live"
    assert outputs["function-arn"] == "arn:aws:lambda:us-east-1:123456789012:function:hello"
    assert len(outputs["commit"]) == 40
    layers = json.loads(outputs["layer-arns"])
    assert [arn.rsplit(":", 2)[1] for arn in layers] == ["hello-dependencies", "hello-greetings"]
    assert json.loads(outputs["changed-layers"]) == ["hello-dependencies", "hello-greetings"]
    assert "### lambda3 deployed `hello`" in first.summary
    assert "| dependencies | layer |" in first.summary and "| changed |" in first.summary
    assert "**Timings (s):**" in first.summary
    assert outputs["aws-account-id"] == "123456789012"
    # a fresh runner: nothing cached, so the action unpacks its locked wheels first
    log = "\n".join(first.raw_log)
    assert "Cache not found for input keys: lambda3-action-" in log
    assert "lambda3: unpacked 7 locked wheels in " in log


def check_code_only_redeploy(demo):
    second = demo.deploys[1]
    assert second.exit_code == 0
    assert second.outputs["version"] == "2"
    assert json.loads(second.outputs["changed-layers"]) == []
    assert second.outputs["layer-arns"] == demo.deploys[0].outputs["layer-arns"]
    assert second.outputs["code-sha256"] != demo.deploys[0].outputs["code-sha256"]
    assert "1. update code of hello" in second.summary
    assert "publish layer" not in second.summary
    # the same runner's tool cache still holds the folder: nothing restored or unpacked
    log = "\n".join(second.raw_log)
    assert "unpacked" not in log and "Cache" not in log


def check_answers(demo):
    assert [a["revision"] for a in demo.answers] == [1, 2]
    assert demo.answers[0]["message"] == "Hello, demo"


def check_token_never_shows(demo, lines):
    for deployed in demo.deploys:
        leaked = [line for line in deployed.raw_log
                  if demo.token in line and not line.startswith("::add-mask::")]
        assert leaked == []
        assert demo.token not in json.dumps(deployed.outputs) + deployed.summary
    assert not any(demo.token in line for line in lines)
