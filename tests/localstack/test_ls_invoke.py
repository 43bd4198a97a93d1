"""Invoking what the engine deployed: the executor plugin runs it with lambda3's worker."""
from __future__ import annotations

import json

from tests.localstack.project import build_yaml


def invoke(project, qualifier: str = "live") -> tuple[dict, str | None]:
    answer = project.other.invoke(FunctionName=project.function, Qualifier=qualifier,
                                  Payload=b'{"name": "x"}')
    return json.loads(answer["Payload"].read()), answer.get("FunctionError")


def test_the_deployed_alias_runs_and_its_errors_are_the_function_s(project):
    assert project.deploy()["ok"]
    assert invoke(project) == ({"v": 1}, None)
    failing = "def handler(event, context):\n    raise ValueError(event['name'])\n"
    project.repo.commit("failing", files={"app.py": failing,
                                          "build.yaml": build_yaml(project.role)})
    assert project.deploy()["ok"]
    payload, error = invoke(project)
    assert error == "Unhandled"
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "x")
    assert invoke(project, "1") == ({"v": 1}, None)
