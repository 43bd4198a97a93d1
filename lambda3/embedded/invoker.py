"""The local invoker: runs a Lambda function's Python handler in a child process.

The function (and the version or alias a qualifier names), its code zip and its layers are
read from the emulator's own moto backend (`lambda3.embedded.moto_functions`): the invoker lives
in the emulator's process. A function runs in warm child processes
(`lambda3.embedded.worker`), ``python -I -S -B lambda_runtime.py``, shaped like Lambda's
Python runtime and kept between invocations as Lambda keeps an execution environment:

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

The handler is imported once per environment, so module state, imports and clients survive
between invocations. An environment serves one invocation at a time: concurrent invocations
of one function get more environments (sharing its tmp dir). A new code zip, layer list or
configuration gets a new environment; a timeout, an exit or an init error ends one; so does
idling for ``LAMBDA3_IDLE_SECONDS`` (600 by default; the tmp dir stays); `reset` ends them all
and wipes the tmp dir (cold start), `close` ends them all.

stdout and stderr are the log (`lambda3.embedded.invocation_log`): each line goes to the
caller's callback and to the emulator's CloudWatch Logs (``/aws/lambda/NAME``) as it
arrives, framed by Lambda's START, END and REPORT lines. The result comes back through a
pipe of its own, never through stdout. The task, opt and runtime dirs are cached by
`lambda3.embedded.code_cache`.
"""
from __future__ import annotations

import os
import platform
import shutil
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from builder.runtimes import RESERVED_ENVIRONMENT
from lambda3.embedded import lambda_metrics
from lambda3.embedded.code_cache import CodeCache
from lambda3.embedded.invocation_log import CloudWatchStream, InvocationLog
from lambda3.embedded.moto_functions import (
    Function,
    FunctionNotFound,
    parse_reference,
    read_function,
)
from lambda3.embedded.worker import Outcome, Worker, platform_error

__all__ = ["DEFAULT_ACCOUNT", "NETWORK_VARIABLES", "FunctionNotFound", "InvokeResult",
           "LocalInvoker"]

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_IDLE_SECONDS = 600.0  # LAMBDA3_IDLE_SECONDS overrides
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Lambda's reserved variables (a function's configuration cannot override them), plus ours.
_RESERVED = RESERVED_ENVIRONMENT | {"LAMBDA3_OPT_DIR", "TMPDIR"}


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


@dataclass
class _Environment:
    """A warm worker and what it was started for."""

    key: tuple
    name: str
    stream: str
    worker: Worker
    generation: int
    idle_since: float = 0.0


class LocalInvoker:
    """Runs the functions an emulator holds; see the module docstring for the sandbox."""

    def __init__(self, endpoint_url: str, state_dir: Path, *, region: str = "us-east-1",
                 account: str = DEFAULT_ACCOUNT,
                 log_listener: Callable[[str, str], None] | None = None,
                 idle_seconds: float | None = None):
        self.endpoint_url = endpoint_url
        self.region = region
        self.account = account
        self._state = Path(state_dir)
        self._state.mkdir(parents=True, exist_ok=True)
        self._log_listener = log_listener  # (function name, line), for every invocation
        self._code = CodeCache(self._state)
        self._lock = threading.Lock()
        self._idle: list[_Environment] = []
        self._generations: dict[str, int] = {}  # function name -> resets so far
        self.idle_seconds = _idle_seconds() if idle_seconds is None else idle_seconds

    def resolve(self, function: str, qualifier: str | None = None) -> str:
        """The version `qualifier` (or one in `function`) selects; FunctionNotFound if none."""
        return read_function(function, qualifier, self.region, self.account).version

    def invoke(self, function: str, payload: bytes, *, qualifier: str | None = None,
               on_log_line: Callable[[str], None] | None = None,
               version: str | None = None) -> InvokeResult:
        """`version`: through an alias, the version `resolve` chose (else its weights do)."""
        fn = read_function(function, qualifier, self.region, self.account, version=version)
        request_id = str(uuid.uuid4())
        listeners = [on_log_line] if on_log_line else []
        if self._log_listener:
            listener = self._log_listener
            listeners.append(lambda line: listener(fn.name, line))
        failure = _unsupported(fn)
        environment = None
        if failure is None:
            try:
                environment = self._acquire(fn)
            except zipfile.BadZipFile as e:
                message = f"the code or a layer of {fn.name} is not a valid zip file: {e}"
                failure = "Lambda3.InvalidZip", message
        stream = environment.stream if environment else _stream_name(fn.version)
        group = f"/aws/lambda/{fn.name}"
        log = InvocationLog(CloudWatchStream(fn.account, fn.region, group, stream), listeners)
        log.start(request_id, fn.version)
        notice = _runtime_notice(fn)
        if notice:
            log.emit(notice)
        if environment is None:
            log.emit(f"lambda3: {failure[1]}")
            outcome = Outcome(platform_error(*failure), "Unhandled")
        else:
            outcome = self._run(environment, fn, request_id, payload, log)
        log.end(request_id, outcome, fn.memory)
        lambda_metrics.publish(fn.account, fn.region, lambda_metrics.metric_data(
            fn.name, fn.qualifier, fn.version, fn.alias is not None,
            failed=outcome.function_error is not None, duration_ms=outcome.duration_ms))
        return InvokeResult(
            200, outcome.payload, outcome.function_error, log.text(), fn.version, request_id
        )

    def reset(self, function: str | None = None) -> None:
        """Start cold: end the function's environments and wipe its tmp dir (every
        function's when None). Environments busy with an invocation end after it."""
        name = None
        if function is not None:
            name = parse_reference(function, None, self.region, self.account)[0]
        with self._lock:  # environments busy now are ended after their invocation
            names = set(self._generations) if name is None else {name}
            for each in names:
                self._generations[each] = self._generations.get(each, 0) + 1
            shutil.rmtree(self._state / "tmp" / (name or ""), ignore_errors=True)
        self._end_idle(lambda e: name in (None, e.name))

    def close(self) -> None:
        """End every idle environment (the emulator is stopping)."""
        self._end_idle(lambda e: True)

    def _end_idle(self, which: Callable[[_Environment], bool]) -> None:
        """Take the idle environments `which` selects out of the pool, and end them."""
        with self._lock:
            ended = [e for e in self._idle if which(e)]
            self._idle = [e for e in self._idle if e not in ended]
        for environment in ended:
            environment.worker.kill()

    def _acquire(self, fn: Function) -> _Environment:
        """An idle environment for exactly this configuration, or a new one. Idle ones for
        superseded code or configuration of this version, and ones idle longer than
        `idle_seconds` (Lambda reclaims them too; the tmp dir stays), are ended first."""
        key = _configuration(fn)
        limit = time.monotonic() - self.idle_seconds
        self._end_idle(lambda e: e.idle_since < limit or (e.key[:2] == key[:2] and e.key != key))
        with self._lock:
            for environment in self._idle:
                if environment.key == key:
                    self._idle.remove(environment)
                    return environment
            generation = self._generations.setdefault(fn.name, 0)
            tmp_dir = self._state / "tmp" / fn.name
            tmp_dir.mkdir(parents=True, exist_ok=True)
        task, opt, runtime = self._code.directories(fn)
        stream = _stream_name(fn.version)
        version = fn.runtime.removeprefix("python")
        path = [str(task), str(opt / f"python/lib/python{version}/site-packages"),
                str(opt / "python"), str(runtime)]
        env = self._child_env(fn, tmp_dir, stream, task, opt, runtime)
        return _Environment(key, fn.name, stream, Worker(env, task, path, tmp_dir), generation)

    def _run(self, environment: _Environment, fn: Function, request_id: str, payload: bytes,
             log: InvocationLog) -> Outcome:
        request = {
            "request_id": request_id,
            "invoked_function_arn": fn.invoked_arn,
            "deadline_ms": int((time.time() + fn.timeout) * 1000),
        }
        try:
            outcome = environment.worker.invoke(request, payload, fn.timeout, log)
        except BaseException:
            environment.worker.kill()
            raise
        with self._lock:
            keep = (environment.worker.alive
                    and self._generations.get(fn.name, 0) == environment.generation)
            if keep:
                environment.idle_since = time.monotonic()
                self._idle.append(environment)
        if not keep:
            environment.worker.kill()
        return outcome

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


def _idle_seconds() -> float:
    raw = os.environ.get("LAMBDA3_IDLE_SECONDS", "")
    try:
        return float(raw) if raw else DEFAULT_IDLE_SECONDS
    except ValueError:
        raise ValueError(f"LAMBDA3_IDLE_SECONDS must be a number of seconds, not {raw!r}") from None


def _configuration(fn: Function) -> tuple:
    """What an environment is started for: a change to any of it needs a new one."""
    return (fn.name, fn.version, fn.code_sha, tuple(sha for sha, _ in fn.layers), fn.handler,
            fn.runtime, fn.timeout, fn.memory, tuple(sorted(fn.environment.items())))


def _stream_name(version: str) -> str:
    """A log stream name as Lambda gives each execution environment."""
    day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{uuid.uuid4().hex}"


# How this machine reaches the network (its CA bundle, its proxies): not secrets, and a
# function's outbound HTTPS (e.g. the builder's installer reaching the package index) needs
# them exactly as a Lambda function gets its VPC's network.
NETWORK_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                     "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
                     "no_proxy")


def _network_settings() -> dict[str, str]:
    return {name: os.environ[name] for name in NETWORK_VARIABLES if os.environ.get(name)}
