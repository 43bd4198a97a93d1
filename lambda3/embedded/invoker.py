"""The local invoker: runs a Lambda function's Python handler in a child process.

The function (and the version or alias a qualifier names), its code zip and its layers are
read from the emulator's own moto backend: the invoker lives in the emulator's process.
Each invocation is one child process, ``python -I -S -B lambda_runtime.py``, shaped like
Lambda's Python runtime:

- ``sys.path`` = task root, ``<opt>/python/lib/pythonX.Y/site-packages``, ``<opt>/python``,
  a runtime dir holding only the SDK closure Lambda provides (boto3, botocore, s3transfer,
  jmespath, python-dateutil, six, urllib3; hard-linked or copied once from the host's
  installed distributions), then the standard library. Nothing else of the host is
  importable.
- The code zip is unpacked into a task dir (``LAMBDA_TASK_ROOT``, the working directory),
  cached per CodeSha256. The layers are unpacked in the function's order into one opt dir,
  later layers overwriting earlier ones, cached per list of layer CodeSha256s. /opt cannot
  be mounted, so that dir is given as ``LAMBDA3_OPT_DIR``; its ``bin`` ends PATH and its
  ``lib`` is on LD_LIBRARY_PATH. Code that hard-codes ``/opt/...`` paths does not find it.
- The environment is Lambda's (function name, version, memory, log group and stream, region,
  ``AWS_EXECUTION_ENV``, ``_HANDLER``, ``TZ=:UTC``, ...) plus the function's configured
  variables, dummy credentials and ``AWS_ENDPOINT_URL`` pointing at the emulator. Nothing is
  inherited from this process's environment, so no token or credential leaks in.
- A private dir per function stands in for /tmp (``TMPDIR`` and ``HOME``): it survives
  between invocations (warm) until `LocalInvoker.reset` (cold). Python-level writes anywhere
  else fail with EROFS. Code that hard-codes ``/tmp/...`` paths gets EROFS too: use
  ``tempfile.gettempdir()``. Programs the function starts are not covered by that check.
- The configured Timeout is enforced by killing the child's process group. Processes the
  function leaves behind are killed when the invocation ends (Lambda would freeze them).

Module-level state does not survive between invocations, since every invocation imports the
handler afresh. Two concurrent invocations of one function share its tmp dir.

stdout and stderr are the log: each line goes to the caller's callback and to the
emulator's CloudWatch Logs (``/aws/lambda/NAME``) as it arrives, framed by Lambda's START,
END and REPORT lines. The result comes back through a file, never through stdout.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from builder.runtimes import PROVIDED_PACKAGES

RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
DEFAULT_ACCOUNT = "123456789012"
MAX_RESPONSE_BYTES = 6291556  # the figure AWS's ResponseSizeTooLarge message quotes
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Lambda's reserved variables (a function's configuration cannot override them), plus ours.
_RESERVED = frozenset(
    {
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
        "LAMBDA3_OPT_DIR", "TMPDIR",
    }
)
_logger = logging.getLogger(__name__)
_LOGS_LOCK = threading.Lock()  # moto's log streams are not thread-safe


@dataclass(frozen=True)
class InvokeResult:
    status: int
    payload: bytes
    function_error: str | None  # "Handled" | "Unhandled" | None
    log: str  # the whole captured log of this invocation
    executed_version: str
    request_id: str = ""


class FunctionNotFound(LookupError):
    """No such function, version or alias. The message is AWS's ("Function not found: ARN")."""


@dataclass(frozen=True)
class _Function:
    """What one invocation needs, read from moto at the start of the invocation."""

    name: str
    version: str
    invoked_arn: str
    region: str
    account: str
    handler: str
    runtime: str
    package_type: str
    timeout: int
    memory: int
    environment: dict = field(repr=False)
    code: bytes = field(repr=False)
    code_sha: str = ""
    layers: tuple = field(default=(), repr=False)  # ((CodeSha256, zip bytes), ...)


@dataclass(frozen=True)
class _Outcome:
    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    timed_out: bool = False


def _parse_reference(reference: str, qualifier: str | None, region: str, account: str):
    """Name, qualifier, region, account of a name, partial ARN or ARN (with ``:qualifier``)."""
    parts = reference.split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        region, account, parts = parts[3], parts[4], parts[6:]
    elif len(parts) >= 3 and parts[1] == "function":
        account, parts = parts[0], parts[2:]
    if len(parts) > 1:
        qualifier = parts[1]
    return parts[0], qualifier, region, account


def _read_function(reference: str, qualifier: str | None, region: str, account: str):
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.awslambda.utils import get_backend
    from moto.utilities.utils import get_partition

    name, qualifier, region, account = _parse_reference(reference, qualifier, region, account)
    backend = get_backend(account, region)  # moto's simple (no Docker) backend when configured
    try:
        fn = backend.get_function(name, qualifier)
    except UnknownFunctionException as e:
        raise FunctionNotFound(e.message) from None
    layers = []
    for layer in fn.layers:
        version = backend.layers_versions_by_arn(layer["Arn"])
        if version is None:
            raise FunctionNotFound(f"Layer version not found: {layer['Arn']}")
        layers.append((version.code_sha_256, version.code_bytes))
    arn = f"arn:{get_partition(region)}:lambda:{region}:{account}:function:{fn.function_name}"
    return _Function(
        name=fn.function_name, version=str(fn.version),
        invoked_arn=f"{arn}:{qualifier}" if qualifier else arn,
        region=region, account=account, handler=fn.handler or "", runtime=fn.run_time or "",
        package_type=fn.package_type, timeout=int(fn.timeout), memory=int(fn.memory_size),
        environment=dict(fn.environment_vars or {}), code=getattr(fn, "code_bytes", b""),
        code_sha=getattr(fn, "code_sha_256", ""), layers=tuple(layers),
    )


def _cache_key(sha_b64: str, blob: bytes) -> str:
    try:
        return base64.b64decode(sha_b64, validate=True).hex() or hashlib.sha256(blob).hexdigest()
    except ValueError:
        return hashlib.sha256(blob).hexdigest()


def _unzip(blob: bytes, dest: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for info in archive.infolist():
            target = archive.extract(info, dest)
            if not info.is_dir():
                os.chmod(target, 0o755 if (info.external_attr >> 16) & 0o111 else 0o644)


def _copy_distribution(name: str, dest: Path) -> None:
    """Hard-link (or copy) one installed distribution's files, dist-info included."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return
    root = os.path.realpath(dist.locate_file(""))
    for entry in dist.files or ():
        source = os.path.normpath(os.path.join(root, str(entry)))
        if not source.startswith(root + os.sep) or not os.path.isfile(source):
            continue  # scripts outside site-packages, files the RECORD lists but lacks
        target = os.path.join(dest, os.path.relpath(source, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


class _CloudWatchStream:
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


class _InvocationLog:
    """Collects an invocation's lines and passes each on as it arrives."""

    def __init__(self, stream: _CloudWatchStream, listeners: list[Callable[[str], None]]):
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


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _platform_error(error_type: str, message: str) -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type}, separators=(",", ":")
    ).encode()


def _unsupported(fn: _Function) -> tuple[str, str] | None:
    if fn.package_type != "Zip" or not fn.runtime.startswith("python"):
        kind = fn.runtime or fn.package_type
        message = f"the local invoker runs Python zip functions only; {fn.name} is {kind}"
        return "Lambda3.Unsupported", message
    return None


def _runtime_notice(fn: _Function) -> str | None:
    local = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if fn.runtime == local:
        return None
    return (
        f"lambda3: {fn.name} is configured for {fn.runtime}; the local invoker runs it "
        f"with Python {platform.python_version()}"
    )


def _report_line(request_id: str, outcome: _Outcome, memory: int) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\t"
        f"Billed Duration: {max(math.ceil(outcome.duration_ms), 1)} ms\t"
        f"Memory Size: {memory} MB\tMax Memory Used: {outcome.max_memory_mb} MB"
    )
    return line + "\tStatus: timeout" if outcome.timed_out else line


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


def _conclude(fn: _Function, request_id: str, result: dict | None, timed_out: bool,
              returncode: int, wall_ms: float, log: _InvocationLog) -> _Outcome:
    """Turn what the child left behind into Lambda's answer."""
    if timed_out:
        message = f"Task timed out after {fn.timeout:.2f} seconds"
        log.emit(f"{_timestamp()} {request_id} {message}")
        payload = _platform_error("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
        return _Outcome(payload, "Unhandled", fn.timeout * 1000.0, timed_out=True)
    if result is None:
        message = f"RequestId: {request_id} Error: Runtime exited with error: "
        message += _exit_reason(returncode)
        log.emit(message)
        return _Outcome(_platform_error("Runtime.ExitError", message), "Unhandled", wall_ms)
    memory = max(int(result.get("max_rss_kb", 0)) // 1024, 1)
    duration = float(result.get("duration_ms", wall_ms))
    if "error" in result:
        return _Outcome(json.dumps(result["error"]).encode(), "Unhandled", duration, memory)
    payload = base64.b64decode(result["payload"])
    if len(payload) > MAX_RESPONSE_BYTES:
        message = (
            "Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes)."
        )
        payload = _platform_error("Function.ResponseSizeTooLarge", message)
        return _Outcome(payload, "Unhandled", duration, memory)
    return _Outcome(payload, None, duration, memory)


class LocalInvoker:
    """Runs the functions an emulator holds; see the module docstring for the sandbox."""

    def __init__(self, endpoint_url: str, state_dir: Path, *, region: str = "us-east-1",
                 account: str = DEFAULT_ACCOUNT,
                 log_listener: Callable[[str, str], None] | None = None):
        self.endpoint_url = endpoint_url
        self.region = region
        self.account = account
        self._state = Path(state_dir)
        self._state.mkdir(parents=True, exist_ok=True)
        self._log_listener = log_listener  # (function name, line), for every invocation
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, str], str] = {}  # (name, version) -> warm log stream

    def resolve(self, function: str, qualifier: str | None = None) -> str:
        """The version `qualifier` (or one in `function`) selects; FunctionNotFound if none."""
        return _read_function(function, qualifier, self.region, self.account).version

    def invoke(self, function: str, payload: bytes, *, qualifier: str | None = None,
               on_log_line: Callable[[str], None] | None = None) -> InvokeResult:
        fn = _read_function(function, qualifier, self.region, self.account)
        request_id = str(uuid.uuid4())
        tmp_dir, stream = self._sandbox(fn)
        listeners = [on_log_line] if on_log_line else []
        if self._log_listener:
            listener = self._log_listener
            listeners.append(lambda line: listener(fn.name, line))
        group = f"/aws/lambda/{fn.name}"
        log = _InvocationLog(_CloudWatchStream(fn.account, fn.region, group, stream), listeners)
        log.emit(f"START RequestId: {request_id} Version: {fn.version}")
        notice = _runtime_notice(fn)
        if notice:
            log.emit(notice)
        outcome = self._execute(fn, tmp_dir, stream, request_id, payload, log)
        log.emit(f"END RequestId: {request_id}")
        log.emit(_report_line(request_id, outcome, fn.memory))
        return InvokeResult(
            200, outcome.payload, outcome.function_error, log.text(), fn.version, request_id
        )

    def reset(self, function: str | None = None) -> None:
        """Start cold: wipe the function's tmp dir (every function's when None)."""
        with self._lock:
            if function is None:
                self._streams.clear()
                shutil.rmtree(self._state / "tmp", ignore_errors=True)
                return
            name = _parse_reference(function, None, self.region, self.account)[0]
            for key in [k for k in self._streams if k[0] == name]:
                del self._streams[key]
            shutil.rmtree(self._state / "tmp" / name, ignore_errors=True)

    def _sandbox(self, fn: _Function) -> tuple[Path, str]:
        """The function's tmp dir and the log stream of its warm environment."""
        with self._lock:
            tmp_dir = self._state / "tmp" / fn.name
            if not tmp_dir.is_dir():
                tmp_dir.mkdir(parents=True)
                self._streams = {k: v for k, v in self._streams.items() if k[0] != fn.name}
            key = (fn.name, fn.version)
            if key not in self._streams:
                day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
                self._streams[key] = f"{day}/[{fn.version}]{uuid.uuid4().hex}"
            return tmp_dir, self._streams[key]

    def _unpacked(self, kind: str, key: str, blobs: list[bytes]) -> Path:
        dest = self._state / kind / key
        with self._lock:
            if not dest.is_dir():
                dest.parent.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".partial-"))
                try:
                    for blob in blobs:
                        _unzip(blob, staging)
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                staging.rename(dest)
        return dest

    def _runtime_dir(self) -> Path:
        dest = self._state / "runtime"
        with self._lock:
            if not dest.is_dir():
                staging = Path(tempfile.mkdtemp(dir=self._state, prefix=".runtime-"))
                for name in PROVIDED_PACKAGES:
                    _copy_distribution(name, staging)
                staging.rename(dest)
        return dest

    def _directories(self, fn: _Function) -> tuple[Path, Path, Path]:
        task = self._unpacked("code", _cache_key(fn.code_sha, fn.code), [fn.code])
        shas = "\n".join(_cache_key(sha, blob) for sha, blob in fn.layers)
        opt_key = hashlib.sha256(shas.encode()).hexdigest()[:32]
        opt = self._unpacked("opt", opt_key, [blob for _, blob in fn.layers])
        return task, opt, self._runtime_dir()

    def _child_env(self, fn: _Function, tmp_dir: Path, stream: str, task: Path, opt: Path,
                   runtime: Path) -> dict[str, str]:
        python_bin = os.path.dirname(getattr(sys, "_base_executable", "") or sys.executable)
        # The host's LD_LIBRARY_PATH is kept: some interpreters need it to start at all.
        libraries = [str(task / "lib"), str(opt / "lib"), os.environ.get("LD_LIBRARY_PATH", "")]
        env = {
            "PATH": os.pathsep.join([python_bin, "/usr/local/bin", "/usr/bin", "/bin",
                                     str(opt / "bin")]),
            "LD_LIBRARY_PATH": os.pathsep.join(p for p in libraries if p),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "HOME": str(tmp_dir),
            "TMPDIR": str(tmp_dir),
            "LAMBDA_TASK_ROOT": str(task),
            "LAMBDA_RUNTIME_DIR": str(runtime),
            "LAMBDA3_OPT_DIR": str(opt),
            "_HANDLER": fn.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **_CREDENTIALS,
        }
        configured = {k: str(v) for k, v in fn.environment.items() if k not in _RESERVED}
        return {**env, **_network_settings(), **configured}

    def _execute(self, fn: _Function, tmp_dir: Path, stream: str, request_id: str,
                 payload: bytes, log: _InvocationLog) -> _Outcome:
        failure = _unsupported(fn)
        if failure is None:
            try:
                task, opt, runtime = self._directories(fn)
            except zipfile.BadZipFile as e:
                message = f"the code or a layer of {fn.name} is not a valid zip file: {e}"
                failure = "Lambda3.InvalidZip", message
        if failure:
            log.emit(f"lambda3: {failure[1]}")
            return _Outcome(_platform_error(*failure), "Unhandled")
        version = fn.runtime.removeprefix("python")
        request = {
            "request_id": request_id,
            "invoked_function_arn": fn.invoked_arn,
            "deadline_ms": int((time.time() + fn.timeout) * 1000),
            "tmp_dir": str(tmp_dir),
            "path": [str(task), str(opt / f"python/lib/python{version}/site-packages"),
                     str(opt / "python"), str(runtime)],
        }
        env = self._child_env(fn, tmp_dir, stream, task, opt, runtime)
        (self._state / "run").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._state / "run") as work:
            return self._run_child(fn, Path(work), request, payload, env, task, log)

    def _run_child(self, fn: _Function, work: Path, request: dict, payload: bytes,
                   env: dict[str, str], task: Path, log: _InvocationLog) -> _Outcome:
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


# How this machine reaches the network (its CA bundle, its proxies): not secrets, and a
# function's outbound HTTPS (e.g. the builder's installer reaching the package index) needs
# them exactly as a Lambda function gets its VPC's network.
NETWORK_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                     "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
                     "no_proxy")


def _network_settings() -> dict[str, str]:
    return {name: os.environ[name] for name in NETWORK_VARIABLES if os.environ.get(name)}
