"""The settings that live on the alias, on LocalStack's Lambda: provisioned concurrency
(Lambda's IN_PROGRESS then READY), the function URL of the alias and the resource-policy
statements that make it public, each set after the alias moves."""
from __future__ import annotations

import json

from tests.localstack.project import build_yaml

SETTINGS = """  provisioned_concurrency: 1
  function_url:
    auth: NONE
    cors: {allow_origins: ["https://shop.example"]}
"""


def with_settings(project, extra: str) -> None:
    text = build_yaml(project.role).replace("  files: [app.py]\n", "  files: [app.py]\n" + extra)
    project.repo.commit("alias settings", files={"build.yaml": text})


def statements(project) -> set[str]:
    try:
        found = project.other.get_policy(FunctionName=project.function, Qualifier="live")
    except project.other.exceptions.ResourceNotFoundException:
        return set()
    return {s["Sid"] for s in json.loads(found["Policy"])["Statement"]}


def test_provisioned_concurrency_and_a_public_url_on_the_alias(project):
    with_settings(project, SETTINGS)
    result = project.deploy()
    assert result["ok"], result
    ready = project.other.get_provisioned_concurrency_config(
        FunctionName=project.function, Qualifier="live")
    assert ready["Status"] == "READY"
    assert "GetProvisionedConcurrencyConfig" in project.calls.names()
    url = project.other.get_function_url_config(FunctionName=project.function,
                                                Qualifier="live")
    assert result["function_url"] == url["FunctionUrl"]
    assert url["FunctionArn"].endswith(f":{project.function}:live")
    assert (url["AuthType"], url["Cors"]["AllowOrigins"]) == ("NONE", ["https://shop.example"])
    assert statements(project) == {"lambda3-url-public", "lambda3-url-public-invoke"}

    again = project.deploy()
    assert again["ok"] and again["plan"] == [], again
    assert again["function_url"] == url["FunctionUrl"]

    with_settings(project, "  provisioned_concurrency: 0\n  function_url: false\n")
    removed = project.deploy()
    assert removed["ok"], removed
    assert statements(project) == set()
    client = project.other
    for call in (client.get_function_url_config, client.get_provisioned_concurrency_config):
        try:
            call(FunctionName=project.function, Qualifier="live")
        except client.exceptions.ClientError as error:
            assert error.response["Error"]["Code"].endswith("NotFoundException")
        else:
            raise AssertionError(f"{call.__name__} still answers")


def test_recursion_is_set_through_lambda_s_own_api(project):
    with_settings(project, "  recursion: allow\n")
    result = project.deploy()
    assert result["ok"], result
    assert "set recursive loop handling of" in " ".join(result["plan_text"])
    found = project.other.get_function_recursion_config(FunctionName=project.function)
    assert found["RecursiveLoop"] == "Allow"
