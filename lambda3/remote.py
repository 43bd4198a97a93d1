"""Invoking the builder function and streaming its log while it works.

One synchronous Invoke, sent exactly once: botocore's default read timeout (60 s) and retries
would send a long build again, so the Lambda client gets a read timeout longer than the
builder's own timeout and no retries. While the call runs in a thread, the builder's log is
followed in CloudWatch Logs: the request's stream is the one holding the `log_marker` we add
to the event (the builder's first line is `lambda3 request <marker>`), read forward with
GetLogEvents until the builder's REPORT line or the end of the invoke's own log tail. Without
logs access the decoded `LogResult` tail (the last 4 KB) is shown instead.

The event carries a repository token: it is never logged, and any text we pass on from the
builder (log lines, error messages) goes through a redactor that knows it.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from builder.clients import Clients
from builder.contract import BuildRequest, BuildResult
from builder.errors import Lambda3Error, RequestError
from builder.redact import Redactor

LOG = logging.getLogger(__name__)
LineSink = Callable[[str], None]
# How far before the invoke's start we look for the marker: local and AWS clocks differ.
CLOCK_SKEW_MS = 5 * 60 * 1000
# How long to wait after the invoke returned for the last lines to reach CloudWatch Logs.
DRAIN_TIMEOUT = 15.0


class RemoteError(Lambda3Error):
    """Invoking the builder failed, or the builder itself crashed (FunctionError)."""

    step = "invoke"

    def __init__(self, message: str, *, remote_type: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.remote_type = remote_type


def invoke_config(builder_timeout: int) -> Any:
    """No retries (a retry is a second build) and a read timeout beyond the builder's own."""
    from botocore.config import Config

    return Config(read_timeout=builder_timeout + 60, connect_timeout=10,
                  retries={"total_max_attempts": 1}, tcp_keepalive=True)


def invoke_builder(clients: Clients, builder_function: str, request: BuildRequest, *,
                   builder_timeout: int = 900, on_log_line: LineSink | None = None,
                   poll_interval: float = 1.0,
                   clock: Callable[[], float] = time.time) -> BuildResult:
    """Invoke the builder once with `request`, stream its log to `on_log_line`, and return
    its result (a failed build is a result with `ok` false; a crash or an answer that is
    no result raises `RemoteError`, one in a contract version we do not speak
    `ContractError`)."""
    redact = Redactor()
    redact.add(request.token)
    marker = uuid.uuid4().hex
    payload = json.dumps(request.with_marker(marker).to_event()).encode()
    lambda_client = clients.client("lambda", config=invoke_config(builder_timeout))
    sink = (lambda line: on_log_line(redact(line))) if on_log_line else None
    follower = None
    if sink:
        follower = LogFollower(clients.client("logs"), f"/aws/lambda/{builder_function}",
                               marker, int(clock() * 1000) - CLOCK_SKEW_MS, sink)
    LOG.debug("invoking %s (log marker %s)", builder_function, marker)
    response = _invoke_following(lambda_client, builder_function, payload, follower,
                                 poll_interval)
    tail = _decode_tail(response.get("LogResult"))
    if follower:
        follower.drain(tail, poll_interval=poll_interval)
        if not follower.found:
            for line in tail:
                sink(line)
    return parse_response(response, builder_function, redact)


def _invoke_following(lambda_client: Any, function: str, payload: bytes,
                      follower: LogFollower | None, poll_interval: float) -> dict:
    """The invoke runs in a daemon thread (Ctrl-C is not held up by it); we follow the log."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def call() -> None:
        try:
            outcome["response"] = _invoke(lambda_client, function, payload)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["raised"] = exc
        finally:
            done.set()

    threading.Thread(target=call, name="lambda3-invoke", daemon=True).start()
    while not done.wait(poll_interval):
        if follower:
            follower.poll()
    if "raised" in outcome:
        raise outcome["raised"]
    return outcome["response"]


def _invoke(lambda_client: Any, function: str, payload: bytes) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

    try:
        return lambda_client.invoke(FunctionName=function, InvocationType="RequestResponse",
                                    LogType="Tail", Payload=payload)
    except ClientError as exc:
        raise _client_error(exc, function) from None
    except ReadTimeoutError:
        raise RemoteError(
            f"no answer from the builder {function} within the read timeout",
            hint="the build may still be running; raise the builder timeout "
                 "(`builder_timeout`) to match the function's configured timeout",
        ) from None
    except BotoCoreError as exc:
        raise RemoteError(f"could not invoke the builder {function}: {exc}") from None


def _client_error(exc: Any, function: str) -> RemoteError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    hints = {
        "ResourceNotFoundException": "run `lambda3 bootstrap` in this account and region, or "
                                     "pass the builder's name",
        "AccessDeniedException": "the credentials need lambda:InvokeFunction on the builder",
        "TooManyRequestsException": "the builder is busy (reserved concurrency); try again",
    }
    return RemoteError(f"invoking the builder {function} failed: {code}: {message}",
                       hint=hints.get(code), remote_type=code)


def parse_response(response: Mapping[str, Any], function: str,
                   redact: Callable[[str], str] = str) -> BuildResult:
    """The builder's result, or a RemoteError for a crash or an unreadable answer."""
    raw = response["Payload"].read() if hasattr(response.get("Payload"), "read") else (
        response.get("Payload") or b"")
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if response.get("FunctionError"):
        details = body if isinstance(body, dict) else {}
        kind = str(details.get("errorType") or response["FunctionError"])
        message = redact(str(details.get("errorMessage") or text[:500] or "no message"))
        raise RemoteError(f"the builder {function} crashed: {kind}: {message}",
                          remote_type=kind, hint=_crash_hint(message))
    try:
        return BuildResult.from_json(body)
    except RequestError:
        raise RemoteError(
            f"the builder {function} answered with something that is not a lambda3 result: "
            f"{redact(text[:200])!r}",
            hint="is this function really the lambda3 builder?",
        ) from None


def _crash_hint(message: str) -> str | None:
    if "Task timed out" in message:
        return "the build took longer than the builder's timeout; raise it with lambda3 bootstrap"
    if "Runtime exited" in message or "out of memory" in message.lower():
        return "the builder ran out of memory; give it more with lambda3 bootstrap"
    return None


def _decode_tail(log_result: str | None) -> list[str]:
    if not log_result:
        return []
    try:
        text = base64.b64decode(log_result).decode("utf-8", errors="replace")
    except ValueError:
        return []
    return [line for line in text.splitlines() if line.strip()]


class LogFollower:
    """Finds one invocation's stream by its marker and reads it forward, line by line."""

    def __init__(self, logs: Any, group: str, marker: str, start_ms: int, sink: LineSink,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.logs, self.group, self.marker = logs, group, marker
        self.start_ms, self.sink = start_ms, sink
        self.clock, self.sleep = clock, sleep
        self.stream: str | None = None
        self.read_from_ms = start_ms
        self.token: str | None = None
        self.started = False   # the marker line was seen and everything after it is passed on
        self.finished = False  # the REPORT line of this invocation was seen
        self.disabled = False  # no permission or no logs: give up, the tail is shown instead
        self.last_line: str | None = None

    @property
    def found(self) -> bool:
        return self.stream is not None and self.started

    def poll(self) -> None:
        """One round: find the stream if not yet known, then read what is new in it."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.disabled or self.finished:
            return
        try:
            if self.stream is None:
                self._find_stream()
            if self.stream is not None:
                self._read_forward()
        except (BotoCoreError, ClientError) as exc:  # following the log never breaks the invoke
            self._on_error(exc)

    def drain(self, tail: list[str], *, poll_interval: float = 1.0,
              timeout: float = DRAIN_TIMEOUT) -> None:
        """After the invoke: read until the end of this invocation's log is in the stream."""
        deadline = self.clock() + timeout
        last_tail_line = tail[-1].strip() if tail else None
        while True:
            self.poll()
            if self.disabled or self.finished:
                return
            if self.found and (last_tail_line is None or self.last_line == last_tail_line):
                return
            if self.stream is None and not tail:
                return
            if self.clock() >= deadline:
                return
            self.sleep(min(poll_interval, 0.5))

    def _find_stream(self) -> None:
        kwargs = {"logGroupName": self.group, "startTime": self.start_ms,
                  "filterPattern": f'"{self.marker}"'}
        for _ in range(20):
            answer = self.logs.filter_log_events(**kwargs)
            for found in answer.get("events", []):
                if self.marker in found.get("message", ""):
                    self.stream = found["logStreamName"]
                    self.read_from_ms = int(found["timestamp"])
                    return
            if not answer.get("nextToken"):
                return
            kwargs["nextToken"] = answer["nextToken"]

    def _read_forward(self) -> None:
        while True:
            kwargs = {"logGroupName": self.group, "logStreamName": self.stream,
                      "startFromHead": True, "startTime": self.read_from_ms}
            if self.token:
                kwargs["nextToken"] = self.token
            answer = self.logs.get_log_events(**kwargs)
            events = answer.get("events", [])
            self.token = answer.get("nextForwardToken") or self.token
            for found in events:
                self._handle(found.get("message", ""))
                if self.finished:
                    return
            if not events:
                return

    def _handle(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            if not self.started:
                if self.marker not in line:
                    continue
                self.started = True
            if line.strip():
                self.last_line = line.strip()
            self.sink(line)
            if line.startswith("REPORT RequestId:"):
                self.finished = True
                return

    def _on_error(self, exc: Exception) -> None:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in {"ThrottlingException", "ResourceNotFoundException"}:
            return  # try again at the next poll; the group appears with the first line
        LOG.debug("not following the builder log: %s", type(exc).__name__)
        self.disabled = True
