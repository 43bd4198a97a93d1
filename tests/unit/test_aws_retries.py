"""`builder.aws.Aws` against the emulator over HTTP: which AWS errors are retried, after how
long, and what a final one says. The errors are real AWS error responses injected with
botocore event hooks (moto never gives them); sleep is a recording fake."""
from __future__ import annotations

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from builder.aws import Aws, ConcurrentChangeError
from builder.clients import Clients
from builder.errors import AwsError
from tests.fixtures_aws import make_zip

ROLE_NOT_READY = "The role defined for the function cannot be assumed by Lambda."


def error_response(code: str, status: int, message: str, **body):
    return (AWSResponse("https://lambda.test", status, {}, None),
            {"Error": {"Code": code, "Message": message},
             "ResponseMetadata": {"HTTPStatusCode": status}, **body})


def answer(wrapper: Aws, operation: str, *responses):
    """The next calls of `operation` get `responses` in order (None: the real answer)."""
    queue = list(responses)
    calls = []

    def hook(**kwargs):
        calls.append(operation)
        return queue.pop(0) if queue else None

    wrapper.clients("lambda").meta.events.register_first(f"before-call.lambda.{operation}", hook)
    return calls


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def wrapper(aws, sleeps):
    no_retries = Config(retries={"total_max_attempts": 1})  # the retries are Aws's own
    clients = Clients(region=aws.region, endpoint_url=aws.endpoint_url,
                      configs={"lambda": no_retries})
    return Aws(clients, sleep=sleeps.append, max_attempts=4)


@pytest.fixture
def function(aws):
    aws.create_function("fn", {"app.py": "def handler(e, c):\n    return 1\n"})
    return "fn"


def test_update_in_progress_and_pending_are_retried(wrapper, function, sleeps):
    calls = answer(wrapper, "UpdateFunctionConfiguration",
                   error_response("ResourceConflictException", 409,
                                  "The operation cannot be performed at this time. An update "
                                  "is in progress for resource: arn:aws:lambda:fn"),
                   error_response("ResourceConflictException", 409,
                                  "The operation cannot be performed at this time. The function "
                                  "is currently in the following state: Pending"))
    result = wrapper.update_function_configuration(FunctionName=function, MemorySize=256)
    assert result["MemorySize"] == 256
    assert len(calls) == 3 and sleeps == [1.0, 2.0]


def test_a_final_conflict_fails_at_once_with_what_to_do(wrapper, function, sleeps):
    answer(wrapper, "UpdateFunctionCode",
           error_response("ResourceConflictException", 409,
                          "The function is locked by a code signing config"))
    with pytest.raises(AwsError) as info:
        wrapper.update_function_code(FunctionName=function, ZipFile=make_zip({"a.py": "1"}))
    assert sleeps == []
    assert "UpdateFunctionCode failed" in str(info.value) and "re-run" in str(info.value)


def test_function_created_meanwhile_is_a_concurrent_change(wrapper, aws, sleeps):
    answer(wrapper, "CreateFunction",
           error_response("ResourceConflictException", 409, "Function already exist: fn"))
    with pytest.raises(ConcurrentChangeError, match="another change to function fn"):
        wrapper.create_function(FunctionName="fn", Runtime="python3.12", Handler="app.h",
                                Role=aws.lambda_role(), Code={"ZipFile": make_zip({"a": "1"})})
    assert sleeps == []


def test_stale_revision_is_a_concurrent_change(wrapper, function):
    answer(wrapper, "PublishVersion",
           error_response("PreconditionFailedException", 412,
                          "The Revision Id provided does not match the latest Revision Id."))
    with pytest.raises(ConcurrentChangeError) as info:
        wrapper.publish_version(FunctionName=function, RevisionId="old")
    assert "happened meanwhile" in str(info.value) and "re-run" in str(info.value)


def test_throttling_waits_as_long_as_lambda_says(wrapper, function, sleeps):
    answer(wrapper, "PublishVersion",
           error_response("TooManyRequestsException", 429, "Rate exceeded",
                          retryAfterSeconds="7", Reason="CallerRateLimitExceeded"))
    assert wrapper.publish_version(FunctionName=function)["Version"] == "1"
    assert sleeps == [7.0]


def test_role_not_yet_usable_is_retried_on_configuration_updates(wrapper, function, sleeps):
    not_ready = error_response("InvalidParameterValueException", 400, ROLE_NOT_READY)
    calls = answer(wrapper, "UpdateFunctionConfiguration", not_ready, not_ready)
    wrapper.update_function_configuration(FunctionName=function, Timeout=9)
    assert len(calls) == 3 and len(sleeps) == 2


def test_missing_role_fails_fast_with_the_fix(wrapper, function, sleeps, aws):
    missing = f"arn:aws:iam::{aws.account}:role/nobody"
    answer(wrapper, "UpdateFunctionConfiguration",
           error_response("InvalidParameterValueException", 400, ROLE_NOT_READY))
    with pytest.raises(AwsError) as info:
        wrapper.update_function_configuration(FunctionName=function, Role=missing)
    assert sleeps == []
    assert "does not exist" in str(info.value) and "function.role" in str(info.value)


def test_role_the_builder_may_not_pass_fails_fast(wrapper, function, sleeps, aws):
    role = aws.lambda_role()
    answer(wrapper, "UpdateFunctionConfiguration",
           error_response("AccessDeniedException", 403,
                          f"User: arn:aws:sts::1:assumed-role/builder is not authorized to "
                          f"perform: iam:PassRole on resource: {role}"))
    with pytest.raises(AwsError) as info:
        wrapper.update_function_configuration(FunctionName=function, Role=role)
    assert sleeps == []
    assert "iam:PassRole" in str(info.value) and role in str(info.value)
    assert "builder's policy" in str(info.value)


def test_code_storage_full_says_how_much_and_what_to_delete(wrapper, function):
    answer(wrapper, "UpdateFunctionCode",
           error_response("CodeStorageExceededException", 400,
                          "Code storage limit exceeded."))
    answer(wrapper, "GetAccountSettings",
           (AWSResponse("https://lambda.test", 200, {}, None),
            {"AccountLimit": {"TotalCodeSize": 80530636800},
             "AccountUsage": {"TotalCodeSize": 80530000000, "FunctionCount": 3}}))
    with pytest.raises(AwsError) as info:
        wrapper.update_function_code(FunctionName=function, ZipFile=make_zip({"a.py": "1"}))
    message = str(info.value)
    assert "75.0 GB of 75.0 GB used" in message
    assert "lambda3 prune" in message and "delete-function" in message


def test_lost_connection_is_an_aws_error_naming_the_call(wrapper, function):
    def reset(**kwargs):
        raise ConnectionClosedError(endpoint_url="http://lambda.test")

    wrapper.clients("lambda").meta.events.register_first(
        "before-send.lambda.UpdateFunctionCode", reset)
    with pytest.raises(AwsError) as info:
        wrapper.update_function_code(FunctionName=function, ZipFile=make_zip({"a.py": "1"}))
    assert "UpdateFunctionCode" in str(info.value) and "re-run" in str(info.value)


def test_layer_published_but_answer_lost_is_found_not_published_twice(wrapper, aws):
    lost = {"n": 1}

    def lose_answer(**kwargs):
        if lost["n"]:
            lost["n"] -= 1
            raise ReadTimeoutError(endpoint_url="http://lambda.test")

    wrapper.clients("lambda").meta.events.register(
        "after-call.lambda.PublishLayerVersion", lose_answer)
    content = make_zip({"python/x.py": "X = 1\n"})
    expected = aws.client("lambda").publish_layer_version(
        LayerName="probe", Content={"ZipFile": content})["Content"]["CodeSha256"]
    published = wrapper.publish_layer_version(code_sha256=expected, LayerName="deps",
                                              Content={"ZipFile": content})
    versions = aws.client("lambda").list_layer_versions(LayerName="deps")["LayerVersions"]
    assert len(versions) == 1
    assert published.arn == versions[0]["LayerVersionArn"]
    assert published.code_sha256 == expected


def test_a_read_is_retried_after_a_lost_connection(wrapper, function, sleeps):
    lost = {"n": 1}

    def reset(**kwargs):
        if lost["n"]:
            lost["n"] -= 1
            raise ConnectionClosedError(endpoint_url="http://lambda.test")

    wrapper.clients("lambda").meta.events.register_first(
        "before-send.lambda.GetFunctionConfiguration", reset)
    assert wrapper.get_function(function).name == function
    assert lost["n"] == 0 and sleeps == [1.0]
