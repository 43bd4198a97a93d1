"""The Python runtime of the local invoker: a warm execution environment in a child process.

Started as ``python -I -S -B lambda_runtime.py IN_FD OUT_FD`` by
`lambda3.embedded.worker.Worker`, with an environment shaped like Lambda's. The first line
on IN_FD sets the environment up (sys.path entries, the stand-in for /tmp, the end-of-output
marker); every further line is one invocation (request id, deadline, invoked ARN, the event)
whose outcome goes back as one line on OUT_FD. The handler named by ``_HANDLER`` is
imported on the first invocation and kept, as in a warm Lambda environment; an import
failure is reported and ends the process. Everything the function prints goes to
stdout/stderr, which the parent turns into the invocation's log; the result never travels
through stdout.

Error payloads and log records follow the shapes of AWS's Python runtime interface client
(``awslambdaric``). Only the standard library may be imported here: the child has no
site-packages, and the module must not depend on anything the function could shadow.

Lambda's filesystem is read-only outside /tmp. Without a mount namespace that is imitated
by an audit hook that refuses writes outside the private tmp dir with EROFS. The hook sees
only this Python process: programs the function starts are not covered by it.
"""
from __future__ import annotations

import base64
import decimal
import errno
import importlib
import json
import logging
import math
import os
import sys
import time
import traceback

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Audit event -> (index of a path argument that gets written, index of its dir_fd or None).
_WRITE_EVENTS = {
    "os.mkdir": ((0, 2),),
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)),
    "os.link": ((1, 3),),
    "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.utime": ((0, 3),),
    "os.chflags": ((0, None),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
    "shutil.rmtree": ((0, 1),),
    "shutil.copyfile": ((1, None),),
    "shutil.copytree": ((1, None),),
    "shutil.move": ((0, None), (1, None)),
}
_DEVICES = frozenset(
    ["/dev/null", "/dev/zero", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty"]
)
_ERROR_INDENT = "\u00a0"  # the runtime indents traceback lines of error records with NBSP


class FaultError(Exception):
    """A failure of the runtime itself (import, handler lookup, marshalling)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


class LambdaContext:
    """The context object handed to the handler, as the Python runtime builds it."""

    def __init__(self, request: dict):
        self.aws_request_id = request["request_id"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = request["invoked_function_arn"]
        self.client_context = None
        self.identity = None
        self.tenant_id = None
        self._deadline_ms = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class _Unbuffered:
    """Flush after every write so each line reaches the log as it is printed."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def write(self, text):
        written = self._stream.write(text)
        self._stream.flush()
        return written

    def writelines(self, lines):
        self._stream.writelines(lines)
        self._stream.flush()


def _dir_of_fd(dir_fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{dir_fd}")
    except OSError:
        import fcntl  # macOS has no /proc

        raw = fcntl.fcntl(dir_fd, getattr(fcntl, "F_GETPATH", 50), bytes(1024))
        return os.fsdecode(raw.rstrip(b"\0"))


def install_read_only_hook(writable_dir: str) -> None:
    """Refuse, with EROFS, every write this process attempts outside `writable_dir`."""
    writable = os.path.realpath(writable_dir)
    own_proc = f"/proc/{os.getpid()}/"

    def check(path, dir_fd=None) -> None:
        if path is None or isinstance(path, int):
            return
        name = os.fsdecode(path)
        if not os.path.isabs(name):
            base = _dir_of_fd(dir_fd) if isinstance(dir_fd, int) else os.getcwd()
            name = os.path.join(base, name)
        name = os.path.abspath(name)
        if name in _DEVICES or name.startswith(("/proc/self/", "/dev/fd/")):
            return
        real = os.path.realpath(name)
        if real == writable or real.startswith(writable + os.sep) or real.startswith(own_proc):
            return
        raise OSError(errno.EROFS, "Read-only file system", name)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            if (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+")
            ):
                check(path)
            return
        for path_index, fd_index in _WRITE_EVENTS.get(event, ()):
            dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
            check(args[path_index], dir_fd)

    sys.addaudithook(hook)


class _RequestIdFilter(logging.Filter):
    def __init__(self, request_id: str):
        super().__init__()
        self.request_id = request_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def setup_logging(request_filter: logging.Filter) -> None:
    """The root logger the Python runtime configures (level left at WARNING)."""
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)


def load_handler(handler: str):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {e}") from e
    if modname.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {modname} as a handler module",
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultError(
            "Runtime.ImportModuleError", f"Unable to import module '{modname}': {e}"
        ) from e
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise FaultError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {e}", trace
        ) from e
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultError(
            "Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'"
        ) from None


def make_error(message: str, error_type: str, trace: list[str] | None, request_id: str) -> dict:
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": trace or [],
    }


def exception_error(exc: BaseException, request_id: str) -> dict:
    """The error payload of an exception, with the runtime's own frames dropped."""
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and frames[0].filename == __file__:
        frames.pop(0)
    return make_error(str(exc), type(exc).__name__, traceback.format_list(frames), request_id)


def log_error(error: dict) -> None:
    """One log record for an error: lines joined with \\r, as the runtime writes it."""
    head = "[ERROR] " + ": ".join(p for p in (error["errorType"], error["errorMessage"]) if p)
    lines = [head, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append(_ERROR_INDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write("\r".join(lines) + "\n")


class _Encoder(json.JSONEncoder):
    def default(self, obj):
        if isinstance(obj, decimal.Decimal):
            return math.nan if obj.is_nan() else float(obj)
        return super().default(obj)


def marshal(response) -> bytes:
    if isinstance(response, bytes):
        return response
    try:
        return _Encoder().encode(response).encode("utf-8")
    except Exception as e:
        raise FaultError("Runtime.MarshalError", f"Unable to marshal response: {e}") from e


def unmarshal(event_bytes: bytes):
    try:
        return json.loads(event_bytes) if event_bytes.strip() else {}
    except ValueError as e:
        raise FaultError("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}") from e


def init_handler():
    """The handler, or the init error (which carries no request id)."""
    try:
        return load_handler(os.environ.get("_HANDLER", "")), None
    except FaultError as fault:
        return None, make_error(fault.message, fault.error_type, fault.trace, "")
    except Exception as exc:  # the module itself raised while being imported
        return None, exception_error(exc, "")


def run_invocation(handler, request: dict, event_bytes: bytes) -> dict:
    """Invoke the handler once; return the outcome as a dict."""
    request_id = request["request_id"]
    started = time.monotonic()
    try:
        payload = marshal(handler(unmarshal(event_bytes), LambdaContext(request)))
    except FaultError as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, request_id)
    except Exception as exc:
        error = exception_error(exc, request_id)
    else:
        duration = (time.monotonic() - started) * 1000
        return {"payload": base64.b64encode(payload).decode("ascii"), "duration_ms": duration}
    log_error(error)
    return {"error": error, "duration_ms": (time.monotonic() - started) * 1000}


def _max_rss_kb() -> int:
    # ru_maxrss on Linux still counts the parent image this process was forked from.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss


class _Worker:
    """The serving loop: init on the first request, then one invocation per request."""

    def __init__(self, requests, results, marker: str):
        self.requests, self.results, self.marker = requests, results, marker
        self.handler = None
        self.request_filter = _RequestIdFilter("")

    def serve(self) -> int:
        for line in iter(self.requests.readline, b""):
            request = json.loads(line)
            outcome = self.handle(request, base64.b64decode(request.pop("event")))
            outcome["max_rss_kb"] = _max_rss_kb()
            self.end_output(request["request_id"])
            self.results.write(json.dumps(outcome) + "\n")
            self.results.flush()
            if outcome.get("fatal"):
                return 1
        return 0

    def end_output(self, request_id: str) -> None:
        """Flush what the function printed, then mark the end of its output on fd 1 itself
        (the function may have replaced sys.stdout)."""
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001,S110 - a replaced or closed stream: nothing to flush
                pass
        os.write(1, f"{self.marker} {request_id}\n".encode())

    def handle(self, request: dict, event_bytes: bytes) -> dict:
        self.request_filter.request_id = request["request_id"]
        if self.handler is not None:
            return run_invocation(self.handler, request, event_bytes)
        started = time.monotonic()
        self.handler, error = init_handler()
        init_ms = (time.monotonic() - started) * 1000
        if error:  # Lambda reports it for this invocation and starts the next one afresh
            log_error(error)
            return {"error": error, "duration_ms": 0.0, "init_ms": init_ms, "fatal": True}
        return {**run_invocation(self.handler, request, event_bytes), "init_ms": init_ms}


def make_undumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0): programs the function starts (same user) cannot read this
    process's /proc/<pid>/environ (the credentials) or memory. Linux only."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def main(argv: list[str]) -> int:
    make_undumpable()
    # The pipes are opened before the read-only hook is installed (it checks paths only).
    requests = os.fdopen(int(argv[1]), "rb")
    results = os.fdopen(int(argv[2]), "w", encoding="utf-8")
    setup = json.loads(requests.readline())
    sys.path[:0] = setup["path"]
    install_read_only_hook(setup["tmp_dir"])
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    sys.stdout, sys.stderr = _Unbuffered(sys.stdout), _Unbuffered(sys.stderr)
    worker = _Worker(requests, results, "\0" + setup["marker"])
    setup_logging(worker.request_filter)
    return worker.serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
