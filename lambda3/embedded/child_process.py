"""One invocation's child process and Lambda's answer from what it left behind.

The child is ``python -I -S -B lambda_runtime.py WORK`` in its own process group: it reads
the request and the event from WORK and writes its result to ``WORK/result.json``, never to
stdout. Its stdout and stderr are pumped into the invocation's log line by line. At the
configured timeout the whole process group is killed, and so is whatever the function
leaves behind when it ends (Lambda would freeze it).
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambda3.embedded.functions import Function
from lambda3.embedded.invocation_log import InvocationLog, timestamp

RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
MAX_RESPONSE_BYTES = 6291556  # the figure AWS's ResponseSizeTooLarge message quotes


@dataclass(frozen=True)
class Outcome:
    """Lambda's answer to one invocation, and what its REPORT line says."""

    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    timed_out: bool = False


def run_child(fn: Function, work: Path, request: dict, payload: bytes,
              env: dict[str, str], task: Path, log: InvocationLog) -> Outcome:
    """Run `fn` once in a child working in `work` (an empty dir) from `task`, to its end
    or its timeout."""
    (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
    (work / "event.json").write_bytes(payload)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", str(RUNTIME_SCRIPT), str(work)],
        cwd=task, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    reader = threading.Thread(target=_pump, args=(proc.stdout, log.emit), daemon=True)
    reader.start()
    timed_out = _wait(proc, fn.timeout)
    reader.join(timeout=2.0)
    wall_ms = (time.monotonic() - started) * 1000
    result = None if timed_out else _read_result(work / "result.json")
    return _conclude(fn, request["request_id"], result, timed_out, proc.returncode,
                     wall_ms, log)


def platform_error(error_type: str, message: str) -> bytes:
    """The payload of an error Lambda itself reports (not the function)."""
    return json.dumps(
        {"errorMessage": message, "errorType": error_type}, separators=(",", ":")
    ).encode()


def _pump(stream, emit: Callable[[str], None]) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            emit(raw.rstrip(b"\r\n").decode("utf-8", "replace"))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for the child; kill its whole process group after it. True when it timed out."""
    try:
        proc.wait(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    _kill_group(proc.pid)
    proc.wait()
    return timed_out


def _read_result(path: Path) -> dict | None:
    """The child's outcome; None when it died before writing one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return json.loads(text) if text else None


def _exit_reason(returncode: int) -> str:
    if returncode >= 0:
        return f"exit status {returncode}"
    return f"signal: {(signal.strsignal(-returncode) or str(-returncode)).lower()}"


def _conclude(fn: Function, request_id: str, result: dict | None, timed_out: bool,
              returncode: int, wall_ms: float, log: InvocationLog) -> Outcome:
    """Turn what the child left behind into Lambda's answer."""
    if timed_out:
        message = f"Task timed out after {fn.timeout:.2f} seconds"
        log.emit(f"{timestamp()} {request_id} {message}")
        payload = platform_error("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
        return Outcome(payload, "Unhandled", fn.timeout * 1000.0, timed_out=True)
    if result is None:
        message = f"RequestId: {request_id} Error: Runtime exited with error: "
        message += _exit_reason(returncode)
        log.emit(message)
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
