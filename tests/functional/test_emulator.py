"""The emulator: moto's APIs and the local invoker's Invoke on one HTTP endpoint."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from lambda3.embedded.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
COUNTER = """
import os, tempfile
def handler(event, context):
    path = os.path.join(tempfile.gettempdir(), "count")
    count = int(open(path).read()) + 1 if os.path.exists(path) else 1
    open(path, "w").write(str(count))
    return count
"""


def _post(url: str, body: bytes = b"{}", headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _invoke(aws, name: str, **kwargs):
    response = aws.client("lambda").invoke(FunctionName=name, **kwargs)
    return response, response["Payload"].read()


def test_starts_fast_and_stop_releases_the_port():
    import moto.moto_server.werkzeug_app  # noqa: F401  (module import is not start-up)

    started = time.monotonic()
    emulator = Emulator().start()
    elapsed = time.monotonic() - started
    port, state_dir = emulator.port, emulator._state_dir
    assert elapsed < 0.5 and emulator.endpoint_url == f"http://127.0.0.1:{port}"
    emulator.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert not state_dir.exists()


def test_other_apis_are_moto_over_http(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="lambda3-test")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["lambda3-test"]
    assert aws.client("sts").get_caller_identity()["Account"] == "123456789012"
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_reset_over_http_wipes_aws_state_and_makes_functions_cold(aws):
    aws.client("s3").create_bucket(Bucket="lambda3-test")
    aws.create_function("counter", {"app.py": COUNTER})
    assert [_invoke(aws, "counter")[1] for _ in range(2)] == [b"1", b"2"]
    assert _post(f"{aws.endpoint_url}/moto-api/reset")[0] == 200
    assert aws.client("s3").list_buckets()["Buckets"] == []
    aws.create_function("counter", {"app.py": COUNTER})
    assert _invoke(aws, "counter")[1] == b"1"


def test_missing_function_gets_awss_resource_not_found(aws):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:absent"
    status, headers, body = _post(f"{aws.endpoint_url}/2015-03-31/functions/absent/invocations")
    assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(body) == {"Type": "User", "Message": f"Function not found: {arn}"}
    aws.create_function("present", {"app.py": COUNTER})
    with pytest.raises(ClientError) as caught:
        _invoke(aws, "present", Qualifier="ghost")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["Error"]["Message"].endswith("function:present:ghost")


def test_event_invocations_run_in_the_background_and_dry_runs_only_check(aws):
    aws.create_function("later", {"app.py": "def handler(e, c):\n    print('ran', e)\n"})
    response, _ = _invoke(aws, "later", InvocationType="DryRun")
    assert response["StatusCode"] == 204
    response, _ = _invoke(aws, "later", InvocationType="Event", Payload=b'{"n": 1}')
    assert response["StatusCode"] == 202
    logs, deadline, messages = aws.client("logs"), time.monotonic() + 10, []
    while "ran {'n': 1}" not in messages and time.monotonic() < deadline:
        time.sleep(0.1)
        if logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/later")["logGroups"]:
            events = logs.filter_log_events(logGroupName="/aws/lambda/later")["events"]
            messages = [e["message"] for e in events]
    assert "ran {'n': 1}" in messages


def test_a_payload_that_is_not_json_is_refused(aws):
    aws.create_function("strict", {"app.py": COUNTER})
    with pytest.raises(ClientError) as caught:
        _invoke(aws, "strict", Payload=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_emulator_command_serves_until_terminated(tmp_path):
    command = [sys.executable, "-m", "lambda3", "emulator", "--port", "0", "--quiet",
               "--state-dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = process.stdout.readline()
        url = first.split(" listening on ")[1].split()[0]
        client = boto3.client("lambda", endpoint_url=url, region_name="us-east-1")
        assert client.list_functions()["Functions"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert "stopped" in process.stdout.read()


def test_the_emulator_command_creates_execution_roles(aws):
    from lambda3.commands.emulator import create_execution_role

    arn = create_execution_role(aws.endpoint_url, aws.region, "hello-lambda")
    assert arn.endswith(":role/hello-lambda")
    assert create_execution_role(aws.endpoint_url, aws.region, "hello-lambda") == arn
    assert aws.client("iam").get_role(RoleName="hello-lambda")["Role"]["Arn"] == arn
