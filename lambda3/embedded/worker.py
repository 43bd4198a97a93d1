"""A function's warm execution environment: one long-lived child process.

The child is ``python -I -S -B lambda_runtime.py IN_FD OUT_FD`` in its own process group.
Like a Lambda execution environment it initialises once (imports the handler on its first
invocation) and then serves invocations one at a time, keeping its module state, its
imports and the clients it made. Each request goes to the child as one JSON line on a
control pipe and its result comes back as one JSON line on another; stdout and stderr are
the log, pumped line by line into the current invocation's log. The child ends each
invocation's output with a marker line carrying a per-worker nonce and the request id, so
every line is given to the invocation that printed it.

A worker that times out, exits or fails to initialise is killed with its whole process
group and never used again (Lambda resets such an environment too). Processes the function
starts and leaves running are killed when its invocation ends, where /proc tells which they
are (Lambda would freeze them).
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lambda3.embedded.invocation_log import InvocationLog, timestamp

RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
MAX_RESPONSE_BYTES = 6291556  # the figure AWS's ResponseSizeTooLarge message quotes
_MARKER_WAIT = 2.0  # seconds to wait for the end of an invocation's output


@dataclass(frozen=True)
class Outcome:
    """Lambda's answer to one invocation, and what its REPORT line says."""

    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    timed_out: bool = False
    init_ms: float | None = None  # on the invocation that started the environment


def platform_error(error_type: str, message: str) -> bytes:
    """The payload of an error Lambda itself reports (not the function)."""
    return json.dumps(
        {"errorMessage": message, "errorType": error_type}, separators=(",", ":")
    ).encode()


class Worker:
    """One warm environment of one function configuration."""

    def __init__(self, env: dict[str, str], task: Path, sys_path: list[str], tmp_dir: Path):
        self.alive = True
        self._nonce = secrets.token_hex(16)
        self._log: InvocationLog | None = None
        self._pending: list[str] = []  # lines printed between invocations
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._request_id = ""  # of the invocation whose output is being read
        self._buffer = b""
        self._started = False
        requests_r, requests_w = os.pipe()
        results_r, results_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(RUNTIME_SCRIPT), str(requests_r),
                 str(results_w)],
                cwd=task, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
                pass_fds=(requests_r, results_w))
        except BaseException:
            for fd in (requests_w, results_r):
                os.close(fd)
            raise
        finally:
            os.close(requests_r)
            os.close(results_w)
        self._requests = os.fdopen(requests_w, "wb")
        self._results = results_r
        self._pump = threading.Thread(target=self._read_output, daemon=True,
                                      name=f"lambda3-worker-{self._proc.pid}")
        self._pump.start()
        self._send({"path": sys_path, "tmp_dir": str(tmp_dir), "marker": self._nonce})

    def invoke(self, request: dict, payload: bytes, timeout: float, log: InvocationLog
               ) -> Outcome:
        """Run one invocation to its end or its timeout; the log gets its output."""
        self._attach(log, request["request_id"])
        started = time.monotonic()
        first, self._started = not self._started, True
        message = {**request, "event": base64.b64encode(payload).decode("ascii")}
        result = self._receive(started + timeout) if self._send(message) else None
        wall_ms = (time.monotonic() - started) * 1000
        if isinstance(result, dict) and not result.get("fatal"):
            self._ended.wait(_MARKER_WAIT)
            self._kill_strays()
        else:
            self.kill()
            self._pump.join(_MARKER_WAIT)
        self._attach(None, "")
        answer = result if isinstance(result, dict) else None
        outcome = _conclude(request["request_id"], timeout, answer, result is False,
                            self._proc.returncode, wall_ms, log)
        if first and answer is not None:
            outcome = replace(outcome, init_ms=float(answer.get("init_ms", 0.0)))
        return outcome

    def _attach(self, log: InvocationLog | None, request_id: str) -> None:
        """Give the output to `log` from now on (None: keep it for the next invocation)."""
        with self._lock:
            self._log, self._request_id = log, request_id
            if log is None:
                return
            pending, self._pending = self._pending, []
            self._ended.clear()
            for line in pending:
                log.emit(line)

    def kill(self) -> None:
        """End the environment: the child and everything in its process group. Once: the
        pipes' descriptors must not be closed twice (their numbers may be reused by then)."""
        with self._lock:
            if not self.alive:
                return
            self.alive = False
        _kill_group(self._proc.pid)
        self._proc.wait()
        for close in (self._requests.close, lambda: os.close(self._results)):
            try:
                close()
            except OSError:
                pass

    def _send(self, message: dict) -> bool:
        try:
            self._requests.write(json.dumps(message).encode() + b"\n")
            self._requests.flush()
            return True
        except (BrokenPipeError, ValueError):  # the child is gone
            return False

    def _receive(self, deadline: float) -> dict | bool | None:
        """The next result line: a dict, False at the deadline, None when the child ended."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self._results], [], [], remaining)
            if not ready:
                return False
            chunk = os.read(self._results, 1 << 20)
            if not chunk:
                self._proc.wait()
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _read_output(self) -> None:
        marker = f"\0{self._nonce} "
        with self._proc.stdout as stream:
            for raw in iter(stream.readline, b""):
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                before, found, request_id = line.partition(marker)
                if not found:
                    self._deliver(line)
                    continue
                if before:  # the last line was printed without a newline
                    self._deliver(before)
                with self._lock:
                    if request_id == self._request_id:
                        self._ended.set()

    def _deliver(self, line: str) -> None:
        with self._lock:
            log = self._log
            if log is None:
                self._pending.append(line)
        if log is not None:
            log.emit(line)

    def _kill_strays(self) -> None:
        """Kill the processes the function started and left running (Linux: via /proc)."""
        for pid in _group_members(self._proc.pid):
            if pid != self._proc.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def _group_members(pgid: int) -> list[int]:
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid):
            members.append(int(entry))
    return members


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_reason(returncode: int | None) -> str:
    if returncode is None or returncode >= 0:
        return f"exit status {returncode or 0}"
    return f"signal: {(signal.strsignal(-returncode) or str(-returncode)).lower()}"


def _conclude(request_id: str, timeout: float, result: dict | None, timed_out: bool,
              returncode: int | None, wall_ms: float, log: InvocationLog) -> Outcome:
    """Turn what the child answered (or did not) into Lambda's answer."""
    emit: Callable[[str], None] = log.emit
    if timed_out:
        message = f"Task timed out after {timeout:.2f} seconds"
        emit(f"{timestamp()} {request_id} {message}")
        payload = platform_error("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
        return Outcome(payload, "Unhandled", timeout * 1000.0, timed_out=True)
    if result is None:
        message = f"RequestId: {request_id} Error: Runtime exited with error: "
        message += _exit_reason(returncode)
        emit(message)
        return Outcome(platform_error("Runtime.ExitError", message), "Unhandled", wall_ms)
    memory = max(int(result.get("max_rss_kb", 0)) // 1024, 1)
    duration = float(result.get("duration_ms", wall_ms))
    if "error" in result:
        return Outcome(json.dumps(result["error"]).encode(), "Unhandled", duration, memory)
    payload = base64.b64decode(result["payload"])
    if len(payload) > MAX_RESPONSE_BYTES:
        message = (
            "Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes)."
        )
        payload = platform_error("Function.ResponseSizeTooLarge", message)
        return Outcome(payload, "Unhandled", duration, memory)
    return Outcome(payload, None, duration, memory)
