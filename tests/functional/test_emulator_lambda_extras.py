"""The Lambda APIs the emulator serves itself, over HTTP with boto3: provisioned concurrency,
recursion, function URLs per qualifier and resource-based policies per qualifier."""
from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambda3.embedded.emulator import Emulator
from tests.fixtures_aws import AwsEndpoint

APP = {"app.py": "def handler(event, context):\n    return event\n"}
ARN = "arn:aws:lambda:us-east-1:123456789012:function"
URL = re.compile(r"^https://[a-z0-9]{32}\.lambda-url\.us-east-1\.on\.aws/$")


def error(call, **kwargs) -> tuple[str, str, int]:
    """The error code, message and HTTP status a call is refused with."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return (response["Error"]["Code"], response["Error"]["Message"],
            response["ResponseMetadata"]["HTTPStatusCode"])


def published(aws, name: str = "app", aliases: tuple[str, ...] = ("live",), versions: int = 1):
    """A function with `versions` published versions and aliases on the last one."""
    aws.create_function(name, APP)
    client = aws.client("lambda")
    for n in range(versions):
        client.update_function_configuration(FunctionName=name, Description=f"v{n + 1}")
        client.publish_version(FunctionName=name)
    for alias in aliases:
        client.create_alias(FunctionName=name, Name=alias, FunctionVersion=str(versions))
    return client


def wait_ready(client, name: str, qualifier: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        found = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if found["Status"] == "READY" or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _reset_over_http(aws) -> None:
    request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", data=b"",
                                     method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


# -- provisioned concurrency ------------------------------------------------------------------

def test_a_put_is_in_progress_then_ready_with_everything_allocated(aws):
    client = published(aws)
    put = client.put_provisioned_concurrency_config(
        FunctionName="app", Qualifier="live", ProvisionedConcurrentExecutions=3)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (put["Status"], put["RequestedProvisionedConcurrentExecutions"],
            put["AllocatedProvisionedConcurrentExecutions"],
            put["AvailableProvisionedConcurrentExecutions"]) == ("IN_PROGRESS", 3, 0, 0)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$", put["LastModified"])
    ready = wait_ready(client, "app", "live")
    assert (ready["Status"], ready["RequestedProvisionedConcurrentExecutions"],
            ready["AllocatedProvisionedConcurrentExecutions"],
            ready["AvailableProvisionedConcurrentExecutions"]) == ("READY", 3, 3, 3)
    assert ready["LastModified"] == put["LastModified"] and "StatusReason" not in ready


def test_a_published_version_takes_a_config_and_the_list_names_each(aws):
    client = published(aws, aliases=("live",), versions=2)
    client.put_provisioned_concurrency_config(
        FunctionName="app", Qualifier="live", ProvisionedConcurrentExecutions=2)
    client.put_provisioned_concurrency_config(
        FunctionName=f"{ARN}:app", Qualifier="1", ProvisionedConcurrentExecutions=1)
    assert wait_ready(client, "app", "1")["AllocatedProvisionedConcurrentExecutions"] == 1
    listed = client.list_provisioned_concurrency_configs(FunctionName="app")
    found = {c["FunctionArn"]: c["RequestedProvisionedConcurrentExecutions"]
             for c in listed["ProvisionedConcurrencyConfigs"]}
    assert found == {f"{ARN}:app:1": 1, f"{ARN}:app:live": 2}
    first = client.list_provisioned_concurrency_configs(FunctionName="app", MaxItems=1)
    rest = client.list_provisioned_concurrency_configs(FunctionName="app",
                                                       Marker=first["NextMarker"])
    assert len(first["ProvisionedConcurrencyConfigs"]) == 1 and "NextMarker" not in rest
    assert (first["ProvisionedConcurrencyConfigs"] + rest["ProvisionedConcurrencyConfigs"]
            == listed["ProvisionedConcurrencyConfigs"])


def test_delete_removes_the_config_and_deleting_nothing_is_no_error(aws):
    client = published(aws)
    client.put_provisioned_concurrency_config(
        FunctionName="app", Qualifier="live", ProvisionedConcurrentExecutions=1)
    for _ in range(2):
        deleted = client.delete_provisioned_concurrency_config(FunctionName="app",
                                                               Qualifier="live")
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error(client.get_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="live") == ("ProvisionedConcurrencyConfigNotFoundException",
                                       "No Provisioned Concurrency Config found for this "
                                       "function", 404)
    assert client.list_provisioned_concurrency_configs(
        FunctionName="app")["ProvisionedConcurrencyConfigs"] == []


def test_latest_or_no_qualifier_is_refused(aws):
    client = published(aws)
    unpublished = ("InvalidParameterValueException", "Provisioned Concurrency Configs cannot "
                   "be applied to unpublished function versions.", 400)
    assert error(client.put_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="$LATEST", ProvisionedConcurrentExecutions=1) == unpublished
    unchecked = aws.client("lambda", config=Config(parameter_validation=False,
                                                   retries={"total_max_attempts": 1}))
    assert error(unchecked.put_provisioned_concurrency_config, FunctionName="app",
                 ProvisionedConcurrentExecutions=1) == unpublished
    client.create_alias(FunctionName="app", Name="edge", FunctionVersion="$LATEST")
    assert error(client.put_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="edge", ProvisionedConcurrentExecutions=1) == unpublished
    not_published = ("InvalidParameterValueException", "The function resource provided must "
                     "be an alias or a published version.", 400)
    for call in (client.get_provisioned_concurrency_config,
                 client.delete_provisioned_concurrency_config):
        assert error(call, FunctionName="app", Qualifier="$LATEST") == not_published
    assert error(unchecked.get_provisioned_concurrency_config, FunctionName="app") == (
        not_published)


def test_unknown_functions_aliases_and_versions_are_not_found(aws):
    client = published(aws)
    for name, qualifier, message in (
            ("ghost", "live", f"Cannot find alias arn: {ARN}:ghost:live"),
            ("ghost", "1", f"Function not found: {ARN}:ghost:1"),
            ("app", "nope", f"Cannot find alias arn: {ARN}:app:nope"),
            ("app", "9", f"Function not found: {ARN}:app:9")):
        for call, more in ((client.put_provisioned_concurrency_config,
                            {"ProvisionedConcurrentExecutions": 1}),
                           (client.get_provisioned_concurrency_config, {}),
                           (client.delete_provisioned_concurrency_config, {})):
            assert error(call, FunctionName=name, Qualifier=qualifier, **more) == (
                "ResourceNotFoundException", message, 404)
    assert error(client.list_provisioned_concurrency_configs, FunctionName="ghost") == (
        "ResourceNotFoundException", f"Function not found: {ARN}:ghost", 404)


def test_bad_counts_conflicts_and_reserved_concurrency_are_refused(aws):
    client = published(aws)
    unchecked = aws.client("lambda", config=Config(parameter_validation=False,
                                                   retries={"total_max_attempts": 1}))
    assert error(unchecked.put_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="live", ProvisionedConcurrentExecutions=0) == (
        "ValidationException", "1 validation error detected: Value '0' at "
        "'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have "
        "value greater than or equal to 1", 400)
    client.put_provisioned_concurrency_config(FunctionName="app", Qualifier="live",
                                              ProvisionedConcurrentExecutions=1)
    assert error(client.put_provisioned_concurrency_config, FunctionName="app", Qualifier="1",
                 ProvisionedConcurrentExecutions=1) == (
        "ResourceConflictException", "Version is pointed by a Provisioned Concurrency alias", 409)
    client.delete_provisioned_concurrency_config(FunctionName="app", Qualifier="live")
    client.put_provisioned_concurrency_config(FunctionName="app", Qualifier="1",
                                              ProvisionedConcurrentExecutions=1)
    assert error(client.put_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="live", ProvisionedConcurrentExecutions=1) == (
        "ResourceConflictException", "Alias can't be used for Provisioned Concurrency "
        "configuration on an already Provisioned version", 409)
    client.put_function_concurrency(FunctionName="app", ReservedConcurrentExecutions=3)
    client.update_function_configuration(FunctionName="app", Description="v2")
    client.publish_version(FunctionName="app")
    client.create_alias(FunctionName="app", Name="beta", FunctionVersion="2")
    assert error(client.put_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="beta", ProvisionedConcurrentExecutions=3)[:2] == (
        "InvalidParameterValueException", "Requested Provisioned Concurrency should not be "
        "greater than the reservedConcurrentExecution for function")
    put = client.put_provisioned_concurrency_config(FunctionName="app", Qualifier="beta",
                                                    ProvisionedConcurrentExecutions=2)
    assert put["RequestedProvisionedConcurrentExecutions"] == 2


def test_an_alias_moved_to_another_version_keeps_its_config_and_is_allocated_again(aws):
    client = published(aws, versions=2)
    client.update_alias(FunctionName="app", Name="live", FunctionVersion="1")
    client.put_provisioned_concurrency_config(
        FunctionName="app", Qualifier="live", ProvisionedConcurrentExecutions=2)
    assert wait_ready(client, "app", "live")["Status"] == "READY"
    client.update_alias(FunctionName="app", Name="live", FunctionVersion="2")
    moved = client.get_provisioned_concurrency_config(FunctionName="app", Qualifier="live")
    assert (moved["Status"], moved["RequestedProvisionedConcurrentExecutions"],
            moved["AllocatedProvisionedConcurrentExecutions"]) == ("IN_PROGRESS", 2, 0)
    ready = wait_ready(client, "app", "live")
    assert (ready["Status"], ready["AvailableProvisionedConcurrentExecutions"]) == ("READY", 2)


def test_the_delay_until_ready_is_the_emulators_setting(aws):
    with Emulator(provisioned_ready_after=3600) as slow:
        endpoint = AwsEndpoint(slow)
        client = published(endpoint, name="slow")
        client.put_provisioned_concurrency_config(
            FunctionName="slow", Qualifier="live", ProvisionedConcurrentExecutions=1)
        time.sleep(0.5)
        found = client.get_provisioned_concurrency_config(FunctionName="slow", Qualifier="live")
        assert (found["Status"], found["AllocatedProvisionedConcurrentExecutions"]) == (
            "IN_PROGRESS", 0)


def test_configs_go_with_their_alias_version_function_and_a_reset(aws):
    client = published(aws, aliases=("live", "beta"), versions=2)
    client.update_alias(FunctionName="app", Name="beta", FunctionVersion="1")
    for qualifier in ("live", "beta"):
        client.put_provisioned_concurrency_config(
            FunctionName="app", Qualifier=qualifier, ProvisionedConcurrentExecutions=1)
    client.delete_alias(FunctionName="app", Name="beta")
    client.create_alias(FunctionName="app", Name="beta", FunctionVersion="1")
    assert error(client.get_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="beta")[0] == "ProvisionedConcurrencyConfigNotFoundException"
    client.delete_function(FunctionName="app")
    published(aws, versions=2)
    assert client.list_provisioned_concurrency_configs(
        FunctionName="app")["ProvisionedConcurrencyConfigs"] == []
    client.put_provisioned_concurrency_config(
        FunctionName="app", Qualifier="live", ProvisionedConcurrentExecutions=1)
    aws.emulator.reset()
    published(aws, versions=2)
    assert error(client.get_provisioned_concurrency_config, FunctionName="app",
                 Qualifier="live")[0] == "ProvisionedConcurrencyConfigNotFoundException"


# -- recursion --------------------------------------------------------------------------------

def test_recursion_is_terminate_until_allowed(aws):
    aws.create_function("app", APP)
    client = aws.client("lambda")
    assert client.get_function_recursion_config(FunctionName="app")["RecursiveLoop"] == (
        "Terminate")
    put = client.put_function_recursion_config(FunctionName="app", RecursiveLoop="Allow")
    assert (put["RecursiveLoop"], put["ResponseMetadata"]["HTTPStatusCode"]) == ("Allow", 200)
    assert client.get_function_recursion_config(FunctionName=f"{ARN}:app")["RecursiveLoop"] == (
        "Allow")
    client.put_function_recursion_config(FunctionName="app", RecursiveLoop="Terminate")
    assert client.get_function_recursion_config(FunctionName="app")["RecursiveLoop"] == (
        "Terminate")


def test_recursion_refuses_unknown_values_and_functions(aws):
    aws.create_function("app", APP)
    client = aws.client("lambda")
    assert error(client.put_function_recursion_config, FunctionName="app",
                 RecursiveLoop="Sometimes") == (
        "ValidationException", "1 validation error detected: Value 'Sometimes' at "
        "'recursiveLoop' failed to satisfy constraint: Member must satisfy enum value set: "
        "[Terminate, Allow]", 400)
    missing = ("ResourceNotFoundException", f"Function not found: {ARN}:ghost", 404)
    assert error(client.get_function_recursion_config, FunctionName="ghost") == missing
    assert error(client.put_function_recursion_config, FunctionName="ghost",
                 RecursiveLoop="Allow") == missing


def test_recursion_is_per_region_and_goes_with_the_function_and_a_reset(aws):
    aws.create_function("app", APP)
    client = aws.client("lambda")
    client.put_function_recursion_config(FunctionName="app", RecursiveLoop="Allow")
    other = AwsEndpoint(aws.emulator, region="eu-west-1")
    other.create_function("app", APP)
    assert other.client("lambda").get_function_recursion_config(
        FunctionName="app")["RecursiveLoop"] == "Terminate"
    client.delete_function(FunctionName="app")
    aws.create_function("app", APP)
    assert client.get_function_recursion_config(FunctionName="app")["RecursiveLoop"] == (
        "Terminate")
    client.put_function_recursion_config(FunctionName="app", RecursiveLoop="Allow")
    _reset_over_http(aws)
    aws.create_function("app", APP)
    assert client.get_function_recursion_config(FunctionName="app")["RecursiveLoop"] == (
        "Terminate")


# -- function URLs ----------------------------------------------------------------------------

def test_the_function_and_each_alias_have_their_own_url(aws):
    client = published(aws, aliases=("live", "beta"))
    created = {}
    for qualifier in (None, "live", "beta"):
        where = {"Qualifier": qualifier} if qualifier else {}
        answer = client.create_function_url_config(FunctionName="app", AuthType="NONE", **where)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert answer["FunctionArn"] == (f"{ARN}:app:{qualifier}" if qualifier else f"{ARN}:app")
        assert URL.match(answer["FunctionUrl"]) and answer["AuthType"] == "NONE"
        assert "LastModifiedTime" not in answer and "InvokeMode" not in answer
        created[qualifier] = answer["FunctionUrl"]
    assert len(set(created.values())) == 3
    found = client.get_function_url_config(FunctionName="app:live")
    assert (found["FunctionUrl"], found["InvokeMode"]) == (created["live"], "BUFFERED")
    assert found["LastModifiedTime"] and found["CreationTime"]
    listed = client.list_function_url_configs(FunctionName="app")["FunctionUrlConfigs"]
    assert {c["FunctionArn"]: c["FunctionUrl"] for c in listed} == {
        f"{ARN}:app": created[None], f"{ARN}:app:beta": created["beta"],
        f"{ARN}:app:live": created["live"]}


def test_update_and_delete_touch_only_their_qualifier(aws):
    client = published(aws)
    client.create_function_url_config(FunctionName="app", AuthType="AWS_IAM")
    client.create_function_url_config(FunctionName="app", Qualifier="live", AuthType="NONE")
    cors = {"AllowOrigins": ["*"], "AllowMethods": ["GET"]}
    updated = client.update_function_url_config(FunctionName="app", Qualifier="live",
                                                Cors=cors, InvokeMode="RESPONSE_STREAM")
    assert (updated["AuthType"], updated["Cors"], updated["InvokeMode"]) == (
        "NONE", cors, "RESPONSE_STREAM")
    assert updated["LastModifiedTime"] >= updated["CreationTime"]
    plain = client.get_function_url_config(FunctionName="app")
    assert (plain["AuthType"], plain.get("Cors"), plain["InvokeMode"]) == (
        "AWS_IAM", None, "BUFFERED")
    deleted = client.delete_function_url_config(FunctionName="app")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error(client.get_function_url_config, FunctionName="app") == (
        "ResourceNotFoundException", "The resource you requested does not exist.", 404)
    live = client.get_function_url_config(FunctionName="app", Qualifier="live")
    assert (live["AuthType"], live["InvokeMode"]) == ("NONE", "RESPONSE_STREAM")


def test_url_errors_are_lambdas(aws):
    client = published(aws)
    client.create_function_url_config(FunctionName="app", Qualifier="live", AuthType="NONE")
    assert error(client.create_function_url_config, FunctionName="app", Qualifier="live",
                 AuthType="NONE") == (
        "ResourceConflictException", f"Failed to create function url config for [functionArn = "
        f"{ARN}:app:live]. Error message:  FunctionUrlConfig exists for this Lambda function",
        409)
    for qualifier in ("1", "$LATEST"):
        for call, more in ((client.create_function_url_config, {"AuthType": "NONE"}),
                           (client.update_function_url_config, {"AuthType": "NONE"}),
                           (client.get_function_url_config, {}),
                           (client.delete_function_url_config, {})):
            assert error(call, FunctionName="app", Qualifier=qualifier, **more) == (
                "ValidationException", f"1 validation error detected: Value '{qualifier}' at "
                "'qualifier' failed to satisfy constraint: Member must satisfy regular "
                r"expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)", 400)
    function_gone = ("ResourceNotFoundException", "Function does not exist", 404)
    resource_gone = ("ResourceNotFoundException", "The resource you requested does not exist.",
                     404)
    for name, qualifier in (("ghost", None), ("app", "nope")):
        where = {"Qualifier": qualifier} if qualifier else {}
        assert error(client.create_function_url_config, FunctionName=name, AuthType="NONE",
                     **where) == function_gone
        assert error(client.update_function_url_config, FunctionName=name, AuthType="NONE",
                     **where) == function_gone
        for call in (client.get_function_url_config, client.delete_function_url_config):
            assert error(call, FunctionName=name, **where) == resource_gone
    assert error(client.update_function_url_config, FunctionName="app",
                 AuthType="NONE") == resource_gone
    assert error(client.list_function_url_configs, FunctionName="ghost") == function_gone
    assert error(client.create_function_url_config, FunctionName="app:live", Qualifier="beta",
                 AuthType="NONE") == (
        "InvalidParameterValueException", "The derived qualifier from the function name does "
        "not match the specified qualifier.", 400)
    assert error(client.create_function_url_config, FunctionName="app", AuthType="NONE",
                 InvokeMode="SOMETIMES") == (
        "ValidationException", "1 validation error detected: Value 'SOMETIMES' at 'invokeMode' "
        "failed to satisfy constraint: Member must satisfy enum value set: "
        "[RESPONSE_STREAM, BUFFERED]", 400)


def test_urls_go_with_their_alias_function_and_a_reset(aws):
    client = published(aws)
    client.create_function_url_config(FunctionName="app", Qualifier="live", AuthType="NONE")
    client.delete_alias(FunctionName="app", Name="live")
    client.create_alias(FunctionName="app", Name="live", FunctionVersion="1")
    assert error(client.get_function_url_config, FunctionName="app", Qualifier="live")[0] == (
        "ResourceNotFoundException")
    client.create_function_url_config(FunctionName="app", AuthType="NONE")
    client.delete_function(FunctionName="app")
    aws.create_function("app", APP)
    assert client.list_function_url_configs(FunctionName="app")["FunctionUrlConfigs"] == []
    client.create_function_url_config(FunctionName="app", AuthType="NONE")
    _reset_over_http(aws)
    aws.create_function("app", APP)
    assert error(client.get_function_url_config, FunctionName="app")[0] == (
        "ResourceNotFoundException")


# -- resource-based policies ------------------------------------------------------------------

def policy(client, **where) -> list[dict]:
    return json.loads(client.get_policy(FunctionName="app", **where)["Policy"])["Statement"]


def test_a_public_urls_statements_carry_their_conditions_on_the_alias(aws):
    client = published(aws)
    url = client.add_permission(FunctionName="app", Qualifier="live", StatementId="url",
                                Action="lambda:InvokeFunctionUrl", Principal="*",
                                FunctionUrlAuthType="NONE")
    invoke = client.add_permission(FunctionName="app", Qualifier="live", StatementId="invoke",
                                   Action="lambda:InvokeFunction", Principal="*",
                                   InvokedViaFunctionUrl=True)
    assert url["ResponseMetadata"]["HTTPStatusCode"] == 201
    expected = [
        {"Sid": "url", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunctionUrl",
         "Resource": f"{ARN}:app:live",
         "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}},
        {"Sid": "invoke", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction",
         "Resource": f"{ARN}:app:live",
         "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}}]
    assert [json.loads(url["Statement"]), json.loads(invoke["Statement"])] == expected
    assert policy(client, Qualifier="live") == expected
    document = json.loads(client.get_policy(FunctionName="app:live")["Policy"])
    assert (document["Version"], document["Id"]) == ("2012-10-17", "default")
    assert error(client.get_policy, FunctionName="app") == (
        "ResourceNotFoundException", "The resource you requested does not exist.", 404)


def test_the_function_its_versions_and_aliases_have_their_own_policies(aws):
    client = published(aws)
    for where, sid in (({}, "plain"), ({"Qualifier": "1"}, "version"),
                       ({"Qualifier": "live"}, "alias")):
        client.add_permission(FunctionName="app", StatementId=sid, Action="lambda:InvokeFunction",
                              Principal="s3.amazonaws.com", SourceAccount="123456789012",
                              SourceArn="arn:aws:s3:::bucket", **where)
    assert [(s["Sid"], s["Resource"]) for s in policy(client)] == [("plain", f"{ARN}:app")]
    assert [(s["Sid"], s["Resource"]) for s in policy(client, Qualifier="1")] == [
        ("version", f"{ARN}:app:1")]
    statement = policy(client, Qualifier="live")[0]
    assert (statement["Principal"], statement["Condition"]) == (
        {"Service": "s3.amazonaws.com"},
        {"StringEquals": {"AWS:SourceAccount": "123456789012"},
         "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"}})
    assert policy(client, Qualifier="$LATEST") == policy(client)
    client.add_permission(FunctionName="app", StatementId="account", Principal="210987654321",
                          Action="lambda:GetFunction")
    assert policy(client)[1]["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}


def test_remove_permission_takes_one_statement_and_the_last_takes_the_policy(aws):
    client = published(aws)
    for sid in ("one", "two"):
        client.add_permission(FunctionName="app", Qualifier="live", StatementId=sid,
                              Action="lambda:InvokeFunction", Principal="*")
    revision = client.get_policy(FunctionName="app", Qualifier="live")["RevisionId"]
    assert error(client.remove_permission, FunctionName="app", Qualifier="live",
                 StatementId="one", RevisionId="stale") == (
        "PreconditionFailedException", "The Revision Id provided does not match the latest "
        "Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id", 412)
    removed = client.remove_permission(FunctionName="app", Qualifier="live", StatementId="one",
                                       RevisionId=revision)
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [s["Sid"] for s in policy(client, Qualifier="live")] == ["two"]
    assert client.get_policy(FunctionName="app", Qualifier="live")["RevisionId"] != revision
    assert error(client.remove_permission, FunctionName="app", Qualifier="live",
                 StatementId="one") == (
        "ResourceNotFoundException", "Statement one is not found in resource policy.", 404)
    client.remove_permission(FunctionName="app", Qualifier="live", StatementId="two")
    assert error(client.get_policy, FunctionName="app", Qualifier="live")[0] == (
        "ResourceNotFoundException")
    assert error(client.remove_permission, FunctionName="app", Qualifier="live",
                 StatementId="two") == (
        "ResourceNotFoundException", "No policy is associated with the given resource.", 404)


def test_permission_errors_are_lambdas(aws):
    client = published(aws)
    add = {"Action": "lambda:InvokeFunction", "Principal": "*", "StatementId": "s"}
    client.add_permission(FunctionName="app", Qualifier="live", **add)
    assert error(client.add_permission, FunctionName="app", Qualifier="live", **add) == (
        "ResourceConflictException", "The statement id (s) provided already exists. Please "
        "provide a new statement id, or remove the existing statement.", 409)
    assert error(client.add_permission, FunctionName="app", Qualifier="$LATEST", **add) == (
        "InvalidParameterValueException", "We currently do not support adding policies for "
        "$LATEST.", 400)
    assert error(client.add_permission, FunctionName="app", **{**add, "Principal": "bob"}) == (
        "InvalidParameterValueException", "The provided principal was invalid. Please check the "
        "principal and try again.", 400)
    assert error(client.add_permission, FunctionName="app",
                 **{**add, "StatementId": "a.b"}) == (
        "ValidationException", "1 validation error detected: Value 'a.b' at 'statementId' "
        "failed to satisfy constraint: Member must satisfy regular expression pattern: "
        "([a-zA-Z0-9-_]+)", 400)
    assert error(client.add_permission, FunctionName="app", Qualifier="live",
                 RevisionId="stale", **{**add, "StatementId": "t"})[0] == (
        "PreconditionFailedException")
    for name, qualifier, message in (
            ("ghost", None, f"Function not found: {ARN}:ghost"),
            ("app", "nope", f"Cannot find alias arn: {ARN}:app:nope"),
            ("app", "9", f"Function not found: {ARN}:app:9")):
        where = {"Qualifier": qualifier} if qualifier else {}
        assert error(client.add_permission, FunctionName=name, **where, **add) == (
            "ResourceNotFoundException", message, 404)
        assert error(client.get_policy, FunctionName=name, **where) == (
            "ResourceNotFoundException", "The resource you requested does not exist.", 404)
    assert error(client.remove_permission, FunctionName="ghost", StatementId="s") == (
        "ResourceNotFoundException", f"No policy found for: {ARN}:ghost", 404)


def test_policies_go_with_their_alias_function_and_a_reset(aws):
    client = published(aws)
    add = {"Action": "lambda:InvokeFunction", "Principal": "*", "StatementId": "s"}
    client.add_permission(FunctionName="app", Qualifier="live", **add)
    client.add_permission(FunctionName="app", **add)
    client.delete_alias(FunctionName="app", Name="live")
    client.create_alias(FunctionName="app", Name="live", FunctionVersion="1")
    assert error(client.get_policy, FunctionName="app", Qualifier="live")[0] == (
        "ResourceNotFoundException")
    assert [s["Sid"] for s in policy(client)] == ["s"]
    client.delete_function(FunctionName="app")
    aws.create_function("app", APP)
    assert error(client.get_policy, FunctionName="app")[0] == "ResourceNotFoundException"
    client.add_permission(FunctionName="app", **add)
    aws.emulator.reset()
    aws.create_function("app", APP)
    assert error(client.get_policy, FunctionName="app")[0] == "ResourceNotFoundException"
