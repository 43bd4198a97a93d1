"""Someone else changes the function or the alias between the engine's read and its write.

LocalStack refuses a stale RevisionId with 412 PreconditionFailedException, as AWS does.
What the engine must do: send a RevisionId with every call that takes one; on a 412
re-read and re-plan once; if it happens again, fail saying another change happened
meanwhile, with the alias where it was.
"""
from __future__ import annotations

import pytest

from tests.localstack.calls import before

PRECONDITIONED = ("UpdateFunctionConfiguration", "UpdateFunctionCode", "PublishVersion",
                  "UpdateAlias")
STALE = "PreconditionFailedException"
THEIR_DESCRIPTION = "changed by someone else"


def change_by_someone_else(project, operation: str):
    """A change that makes the engine's RevisionId for `operation` stale and nothing else."""
    if operation == "UpdateAlias":
        return lambda: project.other.update_alias(
            FunctionName=project.function, Name="live", FunctionVersion="1",
            Description=THEIR_DESCRIPTION)

    def change_function() -> None:
        project.other.update_function_configuration(
            FunctionName=project.function, Description=THEIR_DESCRIPTION)
        project.wait_until_updated()

    return change_function


def test_every_call_with_a_precondition_sends_one(project):
    assert project.deploy()["ok"]
    project.commit_code_and_memory()
    project.calls.forget()
    result = project.deploy()
    assert result["ok"], result
    for operation in PRECONDITIONED:
        sent = project.calls.params(operation)
        assert sent, f"the plan made no {operation} call"
        assert all(params.get("RevisionId") for params in sent), (operation, sent)
    assert all(p.get("CodeSha256") == result["code_sha256"]
               for p in project.calls.params("PublishVersion"))
    assert STALE not in project.calls.errors()


@pytest.mark.parametrize("operation", PRECONDITIONED)
def test_a_change_meanwhile_is_replanned_once(project, operation):
    assert project.deploy()["ok"]
    project.commit_code_and_memory()
    project.calls.forget()
    before(project.lambda_client, operation, change_by_someone_else(project, operation))
    result = project.deploy()
    sent = project.calls.params(operation)
    assert all(params.get("RevisionId") for params in sent), (operation, sent)
    assert project.calls.errors(operation) == [STALE]
    assert result["ok"], result
    assert project.alias_version() == result["version"]
    config = project.configuration()
    assert config["MemorySize"] == 256 and config["CodeSha256"] == result["code_sha256"]
    published = {v["Version"]: v for v in project.versions()}
    assert published[result["version"]]["CodeSha256"] == result["code_sha256"]


@pytest.mark.parametrize("operation", ["UpdateFunctionCode", "UpdateAlias"])
def test_changes_meanwhile_twice_fail_clearly_and_leave_the_alias(project, operation):
    assert project.deploy()["ok"]
    project.commit_code_and_memory()
    project.calls.forget()
    before(project.lambda_client, operation, change_by_someone_else(project, operation),
           times=None)
    result = project.deploy()
    assert result["ok"] is False, result
    assert "meanwhile" in result["error"]["message"], result["error"]
    assert project.calls.errors(operation) == [STALE, STALE]
    assert len(project.calls.of(operation)) == 2
    assert project.alias_version() == "1"
