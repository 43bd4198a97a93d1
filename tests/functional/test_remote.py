"""invoke_builder against the emulator: one invoke, the log live, errors, no token anywhere."""
from __future__ import annotations

import base64
import io
import json
import logging

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from builder.clients import Clients
from builder.contract import BuildRequest, BuildResult
from lambda3.remote import RemoteError, invoke_builder

CANARY = "ghs_canary0123456789abcdef"

# Stands in for the builder: its first line carries the marker, then it reports progress.
# It waits for a gate file that the test creates only after it has received "fetching" from
# invoke_builder's stream: reaching "done" proves the log arrived while the invoke was running.
FAKE_BUILDER = '''
import os, time

def handler(event, context):
    print("lambda3 request " + event["log_marker"], flush=True)
    print("fetching " + event["repository"], flush=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(event["build_file"]):
        if time.monotonic() > deadline:
            print("the gate never opened", flush=True)
            return {"ok": False, "error": {"step": "test", "message": "log not live"}}
        time.sleep(0.02)
    for step in ("install", "package"):
        print(step, flush=True)
        time.sleep(0.05)
    print("done", flush=True)
    return {"ok": True, "commit": "c" * 40, "version": "1", "echo": event["function"]}
'''

CRASHING_BUILDER = '''
def handler(event, context):
    print("lambda3 request " + event["log_marker"])
    raise RuntimeError("cannot fetch with token " + event["token"])
'''


class RecordingClients:
    """The emulator's clients, with every HTTP request to Lambda's Invoke recorded."""

    def __init__(self, aws, *, on_invoke_send=None):
        self.aws = aws
        self.invoke_sends: list[str] = []
        self.configs: list = []
        self.on_invoke_send = on_invoke_send

    def client(self, service_name, **kwargs):
        # botocore's defaults (3 attempts) unless the caller configures the client itself
        kwargs.setdefault("config", Config())
        client = self.aws.client(service_name, **kwargs)
        if service_name == "lambda":
            self.configs.append(client.meta.config)
            client.meta.events.register("before-send.lambda.Invoke", self._sent)
        return client

    def _sent(self, request, **kwargs):
        self.invoke_sends.append(request.url)
        return self.on_invoke_send(request) if self.on_invoke_send else None


def _event(tmp_path, **extra) -> BuildRequest:
    """The fake builders above read the gate file's path from `build_file`."""
    return BuildRequest(action="build", repository="https://example.com/o/r.git", ref="main",
                        token=CANARY, function="hello", build_file=str(tmp_path / "gate"),
                        **extra)


@pytest.fixture
def fake_builder(aws):
    aws.create_function("lambda3-builder", {"app.py": FAKE_BUILDER}, Timeout=60)
    return "lambda3-builder"


def test_returns_the_result_and_streams_the_log_live(aws, fake_builder, tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="lambda3")
    clients = RecordingClients(aws)
    lines: list[str] = []
    gate = tmp_path / "gate"

    def on_line(line: str) -> None:
        lines.append(line)
        if line.startswith("fetching"):
            gate.touch()  # only now may the function finish

    result = invoke_builder(clients, fake_builder, _event(tmp_path), on_log_line=on_line,
                            poll_interval=0.05)
    assert result.ok is True, result
    assert (result.commit, result.version, result.contract) == ("c" * 40, "1", 1)
    assert lines[0].startswith("lambda3 request ") and len(lines[0].split()[-1]) == 32
    assert lines[1:6] == ["fetching https://example.com/o/r.git", "install", "package",
                          "done", lines[5]]
    assert lines[5].startswith("END RequestId:") and lines[6].startswith("REPORT RequestId:")
    assert len(lines) == 7  # every line once, nothing of other invocations
    assert len(clients.invoke_sends) == 1
    captured = capfd.readouterr()
    for text in (caplog.text, captured.out, captured.err, "\n".join(lines)):
        assert CANARY not in text


def test_a_second_invocation_on_the_warm_stream_shows_only_its_own_lines(aws, fake_builder,
                                                                          tmp_path):
    (tmp_path / "gate").touch()
    first: list[str] = []
    invoke_builder(aws, fake_builder, _event(tmp_path), on_log_line=first.append,
                   poll_interval=0.05)
    second: list[str] = []
    invoke_builder(aws, fake_builder, _event(tmp_path), on_log_line=second.append,
                   poll_interval=0.05)
    assert first[0] != second[0]  # a fresh marker each time
    assert [line.split()[0] for line in second] == [
        "lambda3", "fetching", "install", "package", "done", "END", "REPORT"]


def test_without_logs_access_the_log_tail_is_shown(aws, fake_builder, tmp_path):
    (tmp_path / "gate").touch()

    class NoLogs(RecordingClients):
        def client(self, service_name, **kwargs):
            client = super().client(service_name, **kwargs)
            if service_name == "logs":
                client.meta.events.register("before-call.cloudwatch-logs.*", _deny)
            return client

    lines: list[str] = []
    result = invoke_builder(NoLogs(aws), fake_builder, _event(tmp_path),
                            on_log_line=lines.append, poll_interval=0.05)
    assert result.ok is True
    assert lines[0].startswith("START RequestId:")  # the tail holds the whole short log
    assert "done" in lines and lines[-1].startswith("REPORT RequestId:")


def _deny(**kwargs):
    class Http:
        status_code = 400
        headers: dict = {}

    return Http(), {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"},
                    "ResponseMetadata": {"HTTPStatusCode": 400}}


def test_a_crash_is_a_remote_error_with_the_message_and_without_the_token(aws, tmp_path):
    aws.create_function("crashing-builder", {"app.py": CRASHING_BUILDER})
    clients = RecordingClients(aws)
    lines: list[str] = []
    with pytest.raises(RemoteError) as caught:
        invoke_builder(clients, "crashing-builder", _event(tmp_path), on_log_line=lines.append,
                       poll_interval=0.05)
    error = caught.value
    assert error.step == "invoke" and error.remote_type == "RuntimeError"
    assert "cannot fetch with token ***" in str(error)
    assert CANARY not in str(error) and CANARY not in repr(error.to_dict())
    assert CANARY not in "\n".join(lines)
    assert len(clients.invoke_sends) == 1


def test_a_missing_builder_says_to_bootstrap(aws, tmp_path):
    with pytest.raises(RemoteError, match="lambda3 bootstrap") as caught:
        invoke_builder(aws, "no-such-builder", _event(tmp_path))
    assert caught.value.remote_type == "ResourceNotFoundException"
    assert CANARY not in str(caught.value)


def _service_unavailable(request):
    raw = io.BytesIO(b'{"Message": "Service Unavailable"}')
    raw.stream = lambda **kwargs: iter([raw.getvalue()])
    return AWSResponse(request.url, 503, {"x-amzn-ErrorType": "ServiceException"}, raw)


def _read_timeout(request):
    raise ReadTimeoutError(endpoint_url=request.url)


@pytest.mark.parametrize("failure", [_service_unavailable, _read_timeout],
                         ids=["503", "read-timeout"])
def test_the_invoke_is_sent_exactly_once_even_on_retryable_failures(aws, tmp_path, failure):
    """botocore's default config would send these again: a second build."""
    clients = RecordingClients(aws, on_invoke_send=failure)
    with pytest.raises(RemoteError) as caught:
        invoke_builder(clients, "any-builder", _event(tmp_path), builder_timeout=300)
    assert len(clients.invoke_sends) == 1
    assert CANARY not in str(caught.value)
    config = clients.configs[0]
    assert config.read_timeout == 360 and config.retries["total_max_attempts"] == 1


def test_clients_from_the_environment_reach_the_endpoint(aws, fake_builder, tmp_path):
    (tmp_path / "gate").touch()
    session = boto3.Session(region_name=aws.region, aws_access_key_id="testing",
                            aws_secret_access_key="testing")
    clients = Clients.from_environ({"LAMBDA3_ENDPOINT_URL": aws.endpoint_url},
                                   session=session)
    assert clients.client("lambda").meta.endpoint_url == aws.endpoint_url
    result = invoke_builder(clients, fake_builder, _event(tmp_path))
    assert result.ok and result.commit == "c" * 40


def test_an_answer_that_is_not_a_result_is_an_error(aws, tmp_path):
    aws.create_function("echo", {"app.py": "def handler(e, c):\n    return [1, 2]\n"})
    with pytest.raises(RemoteError, match="not a lambda3 result"):
        invoke_builder(aws, "echo", _event(tmp_path))


def test_log_result_is_decoded_for_the_fallback():
    from lambda3.remote import _decode_tail

    text = "START RequestId: x\nhello\n\nREPORT RequestId: x\n"
    assert _decode_tail(base64.b64encode(text.encode()).decode()) == [
        "START RequestId: x", "hello", "REPORT RequestId: x"]
    assert _decode_tail(None) == []


def test_the_event_is_sent_with_a_fresh_marker_and_unchanged_otherwise(aws, tmp_path):
    source = "def handler(e, c):\n    return {'ok': True, 'contract': 2, 'plan': [e]}\n"
    aws.create_function("echo-event", {"app.py": source})
    request = _event(tmp_path)
    result = invoke_builder(aws, "echo-event", request)
    sent = dict(result.plan[0])
    marker = sent.pop("log_marker")
    assert {**sent, "log_marker": None} == request.to_event() and request.log_marker is None
    assert BuildRequest.from_event({**sent, "log_marker": marker}).log_marker == marker
    assert len(marker) == 32 and int(marker, 16) >= 0
    assert json.dumps(result.to_json())  # plain JSON


def test_the_one_client_factory_is_accepted(aws, fake_builder, tmp_path):
    (tmp_path / "gate").touch()
    factory = Clients(region=aws.region, endpoint_url=aws.endpoint_url,
                      credentials={"aws_access_key_id": "testing",
                                   "aws_secret_access_key": "testing"})
    lines: list[str] = []
    result = invoke_builder(factory, fake_builder, _event(tmp_path), on_log_line=lines.append,
                            poll_interval=0.05)
    assert isinstance(result, BuildResult) and result.ok is True and "done" in lines


def test_an_answer_in_a_newer_contract_is_refused_in_one_line(aws, tmp_path):
    from builder.contract import CONTRACT, ContractError

    newer = CONTRACT + 1
    source = f"def handler(e, c):\n    return {{'ok': True, 'contract': {newer}}}\n"
    aws.create_function("newer-builder", {"app.py": source})
    with pytest.raises(ContractError) as caught:
        invoke_builder(aws, "newer-builder", _event(tmp_path))
    message = str(caught.value)
    assert f"contract version {newer}" in message and f"speaks 1-{CONTRACT}" in message
    assert "lambda3 bootstrap" in message and "\n" not in message
    assert CANARY not in message
