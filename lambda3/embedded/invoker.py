"""The local invoker: runs a Lambda function's Python handler in a child process.

The function (and the version or alias a qualifier names), its code zip and its layers are
read from the emulator's own moto backend (`lambda3.embedded.functions`): the invoker lives
in the emulator's process. Each invocation is one child process
(`lambda3.embedded.child_process`), ``python -I -S -B lambda_runtime.py``, shaped like
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

stdout and stderr are the log (`lambda3.embedded.invocation_log`): each line goes to the
caller's callback and to the emulator's CloudWatch Logs (``/aws/lambda/NAME``) as it
arrives, framed by Lambda's START, END and REPORT lines. The result comes back through a
file, never through stdout. The task, opt and runtime dirs are cached by
`lambda3.embedded.code_cache`.
"""
from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lambda3.embedded.child_process import Outcome, platform_error, run_child
from lambda3.embedded.code_cache import CodeCache
from lambda3.embedded.functions import Function, FunctionNotFound, parse_reference, read_function
from lambda3.embedded.invocation_log import CloudWatchStream, InvocationLog

__all__ = ["DEFAULT_ACCOUNT", "NETWORK_VARIABLES", "FunctionNotFound", "InvokeResult",
           "LocalInvoker"]

DEFAULT_ACCOUNT = "123456789012"
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


@dataclass(frozen=True)
class InvokeResult:
    status: int
    payload: bytes
    function_error: str | None  # "Handled" | "Unhandled" | None
    log: str  # the whole captured log of this invocation
    executed_version: str
    request_id: str = ""


def _unsupported(fn: Function) -> tuple[str, str] | None:
    if fn.package_type != "Zip" or not fn.runtime.startswith("python"):
        kind = fn.runtime or fn.package_type
        message = f"the local invoker runs Python zip functions only; {fn.name} is {kind}"
        return "Lambda3.Unsupported", message
    return None


def _runtime_notice(fn: Function) -> str | None:
    local = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if fn.runtime == local:
        return None
    return (
        f"lambda3: {fn.name} is configured for {fn.runtime}; the local invoker runs it "
        f"with Python {platform.python_version()}"
    )


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
        self._code = CodeCache(self._state)
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, str], str] = {}  # (name, version) -> warm log stream

    def resolve(self, function: str, qualifier: str | None = None) -> str:
        """The version `qualifier` (or one in `function`) selects; FunctionNotFound if none."""
        return read_function(function, qualifier, self.region, self.account).version

    def invoke(self, function: str, payload: bytes, *, qualifier: str | None = None,
               on_log_line: Callable[[str], None] | None = None) -> InvokeResult:
        fn = read_function(function, qualifier, self.region, self.account)
        request_id = str(uuid.uuid4())
        tmp_dir, stream = self._sandbox(fn)
        listeners = [on_log_line] if on_log_line else []
        if self._log_listener:
            listener = self._log_listener
            listeners.append(lambda line: listener(fn.name, line))
        group = f"/aws/lambda/{fn.name}"
        log = InvocationLog(CloudWatchStream(fn.account, fn.region, group, stream), listeners)
        log.start(request_id, fn.version)
        notice = _runtime_notice(fn)
        if notice:
            log.emit(notice)
        outcome = self._execute(fn, tmp_dir, stream, request_id, payload, log)
        log.end(request_id, outcome, fn.memory)
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
            name = parse_reference(function, None, self.region, self.account)[0]
            for key in [k for k in self._streams if k[0] == name]:
                del self._streams[key]
            shutil.rmtree(self._state / "tmp" / name, ignore_errors=True)

    def _sandbox(self, fn: Function) -> tuple[Path, str]:
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

    def _child_env(self, fn: Function, tmp_dir: Path, stream: str, task: Path, opt: Path,
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

    def _execute(self, fn: Function, tmp_dir: Path, stream: str, request_id: str,
                 payload: bytes, log: InvocationLog) -> Outcome:
        failure = _unsupported(fn)
        if failure is None:
            try:
                task, opt, runtime = self._code.directories(fn)
            except zipfile.BadZipFile as e:
                message = f"the code or a layer of {fn.name} is not a valid zip file: {e}"
                failure = "Lambda3.InvalidZip", message
        if failure:
            log.emit(f"lambda3: {failure[1]}")
            return Outcome(platform_error(*failure), "Unhandled")
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
            return run_child(fn, Path(work), request, payload, env, task, log)


# How this machine reaches the network (its CA bundle, its proxies): not secrets, and a
# function's outbound HTTPS (e.g. the builder's installer reaching the package index) needs
# them exactly as a Lambda function gets its VPC's network.
NETWORK_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                     "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
                     "no_proxy")


def _network_settings() -> dict[str, str]:
    return {name: os.environ[name] for name in NETWORK_VARIABLES if os.environ.get(name)}
