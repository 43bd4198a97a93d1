"""The log of one invocation: each line of the function's output goes, as it arrives, to the
emulator's CloudWatch Logs (``/aws/lambda/NAME``) and to the caller's listeners, framed by
Lambda's START, END and REPORT lines; the whole log is kept for the invoke's result.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambda3.embedded.worker import Outcome

_logger = logging.getLogger(__name__)
_LOGS_LOCK = threading.Lock()  # moto's log streams are not thread-safe


class CloudWatchStream:
    """One log stream in the emulator's CloudWatch Logs, written in-process."""

    def __init__(self, account: str, region: str, group: str, stream: str):
        self.account, self.region, self.group, self.stream = account, region, group, stream

    def put(self, line: str) -> None:
        from moto.logs.models import logs_backends

        event = {"timestamp": int(time.time() * 1000), "message": line}
        with _LOGS_LOCK:
            backend = logs_backends[self.account][self.region]  # looked up anew: reset replaces it
            backend.ensure_log_group(self.group)
            backend.ensure_log_stream(self.group, self.stream)
            backend.put_log_events(self.group, self.stream, [event])


class InvocationLog:
    """Collects an invocation's lines and passes each on as it arrives."""

    def __init__(self, stream: CloudWatchStream, listeners: list[Callable[[str], None]]):
        self._stream = stream
        self._listeners = listeners
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
            for deliver in (self._stream.put, *self._listeners):
                try:
                    deliver(line)
                except Exception:  # a failing consumer must not stop the function's output
                    _logger.exception("lambda3: could not deliver a log line")

    def text(self) -> str:
        with self._lock:
            return "".join(line + "\n" for line in self._lines)

    def start(self, request_id: str, version: str) -> None:
        """Lambda's first line of an invocation."""
        self.emit(f"START RequestId: {request_id} Version: {version}")

    def end(self, request_id: str, outcome: Outcome, memory: int) -> None:
        """Lambda's last lines: END, then REPORT with the duration and memory used."""
        self.emit(f"END RequestId: {request_id}")
        self.emit(_report_line(request_id, outcome, memory))


def timestamp() -> str:
    """Now as Lambda stamps a log line: `2024-05-01T12:00:00.123Z`."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _report_line(request_id: str, outcome: Outcome, memory: int) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
        f"Billed Duration: {max(math.ceil(outcome.duration_ms), 1)} ms\t"
        f"Memory Size: {memory} MB\tMax Memory Used: {outcome.max_memory_mb} MB"
    )
    if outcome.init_ms is not None:
        line += f"\tInit Duration: {outcome.init_ms:.2f} ms"
    return line + "\tStatus: timeout" if outcome.timed_out else line
