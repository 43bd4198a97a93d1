"""The embedded AWS emulator: moto's server behind a small WSGI front, on one HTTP endpoint.

The front answers Lambda ``Invoke`` (``POST /2015-03-31/functions/{name}/invocations``) with
the local invoker, the way AWS answers it; ``POST /moto-api/reset`` also makes every function
cold, and ``POST /_lambda3/functions/NAME/cold`` makes one function cold (what
``lambda3 invoke --cold`` sends). The Lambda APIs moto lacks or gets wrong (provisioned
concurrency, recursion, function URLs and resource policies per qualifier) are answered by
`lambda3.embedded.lambda_extras`. Everything else goes to moto. moto's state is
process-wide: emulators in one process share it, and `Emulator.reset` wipes all of it.

Every region is served, as moto serves every region: a request's region is the one its
SigV4 signature names (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``), and each
region has its own local invoker (the emulator's `region` is the default, for unsigned
requests).
"""
from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, unquote

from lambda3.embedded.invoker import DEFAULT_ACCOUNT, FunctionNotFound, LocalInvoker
from lambda3.embedded.lambda_extras.router import DEFAULT_READY_AFTER, LambdaExtras
from lambda3.embedded.serving import serve_in_thread, stop_serving

_INVOKE_PREFIX = "/2015-03-31/functions/"
_INVOKE_SUFFIXES = ("/invocations", "/invocations/")
_COLD_PREFIX = "/_lambda3/functions/"  # + NAME + _COLD_SUFFIX: start that function cold
_COLD_SUFFIX = "/cold"
_TAIL_BYTES = 4096
_SIGNED_REGION = re.compile(r"Credential=[^/,]+/\d{8}/([a-z0-9-]+)/")
_logger = logging.getLogger(__name__)


def use_local_invoker() -> None:
    """Keep moto from trying Docker for Lambda. Must happen before any function is created:
    moto keeps functions in a different backend depending on this setting."""
    from moto.core.config import default_user_config

    default_user_config["lambda"] = {"use_docker": False}


def _log_tail(log: str) -> str:
    tail = log.encode("utf-8")[-_TAIL_BYTES:].decode("utf-8", "ignore")
    return base64.b64encode(tail.encode("utf-8")).decode("ascii")


def _read_body(environ: dict) -> bytes:
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    return stream.read(int(length)) if length.isdigit() else stream.read()


def _respond(start_response, status: int, headers: list[tuple[str, str]], body: bytes):
    reason = HTTPStatus(status).phrase
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _error(start_response, status: int, error_type: str, message: str):
    body = json.dumps({"Type": "User", "Message": message}).encode()
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type),
               ("x-amzn-RequestId", str(uuid.uuid4()))]
    return _respond(start_response, status, headers, body)


def signed_region(environ: dict) -> str | None:
    """The region a SigV4-signed request names, or None when it is not signed."""
    found = _SIGNED_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return found.group(1) if found else None


class _Invokers:
    """One local invoker per region, made on the first request for that region."""

    def __init__(self, make: Callable[[str], LocalInvoker], default_region: str):
        self._make = make
        self._lock = threading.Lock()
        self.default = make(default_region)
        self._by_region = {default_region: self.default}

    def for_region(self, region: str | None) -> LocalInvoker:
        with self._lock:
            if region and region not in self._by_region:
                self._by_region[region] = self._make(region)
            return self._by_region.get(region or "", self.default)

    def all(self) -> list[LocalInvoker]:
        with self._lock:
            return list(self._by_region.values())

    def reset(self, function: str | None = None) -> None:
        for invoker in self.all():
            invoker.reset(function)

    def close(self) -> None:
        for invoker in self.all():
            invoker.close()


class _Front:
    """WSGI middleware: Lambda Invoke goes to the local invoker, the APIs moto lacks to
    `LambdaExtras`, the rest to moto."""

    def __init__(self, moto_app: Callable, invokers: _Invokers | None = None,
                 extras: LambdaExtras | None = None):
        self.moto_app = moto_app
        self.invokers = invokers
        self.extras = extras or LambdaExtras()

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        served = self.extras.handle(environ, signed_region(environ))
        if served is not None:
            return _respond(start_response, *served)
        if path == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            self.extras.reset()
        if environ.get("REQUEST_METHOD") == "POST" and self.invokers is not None:
            if path.startswith(_INVOKE_PREFIX) and path.endswith(_INVOKE_SUFFIXES):
                name = path[len(_INVOKE_PREFIX):].rstrip("/").rsplit("/", 1)[0]
                invoker = self.invokers.for_region(signed_region(environ))
                return self._invoke(invoker, environ, start_response, unquote(name))
            if path == "/moto-api/reset":
                self.invokers.reset()
            if path.startswith(_COLD_PREFIX) and path.endswith(_COLD_SUFFIX):
                name = unquote(path[len(_COLD_PREFIX):-len(_COLD_SUFFIX)])
                self.invokers.reset(name)
                return _respond(start_response, 204, [], b"")
        return self.moto_app(environ, start_response)

    def _invoke(self, invoker: LocalInvoker, environ: dict, start_response, function: str):
        qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier", [None])[0]
        kind = environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse"
        payload = _read_body(environ)
        try:
            json.loads(payload or b"{}")
        except ValueError as e:
            message = f"Could not parse request body into json: {e}"
            return _error(start_response, 400, "InvalidRequestContentException", message)
        try:
            if kind == "RequestResponse":
                result = invoker.invoke(function, payload, qualifier=qualifier)
            else:
                version = invoker.resolve(function, qualifier)
        except FunctionNotFound as e:
            return _error(start_response, 404, "ResourceNotFoundException", str(e))
        if kind == "RequestResponse":
            return self._answer(environ, start_response, result)
        headers = [("x-amzn-RequestId", str(uuid.uuid4())), ("X-Amz-Executed-Version", version)]
        if kind == "DryRun":
            return _respond(start_response, 204, headers, b"")
        threading.Thread(
            target=self._invoke_in_background,
            args=(invoker, function, payload, qualifier, version),
            daemon=True).start()
        return _respond(start_response, 202, headers, b"")

    def _answer(self, environ: dict, start_response, result):
        headers = [("Content-Type", "application/json"),
                   ("x-amzn-RequestId", result.request_id),
                   ("X-Amz-Executed-Version", result.executed_version)]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail":
            headers.append(("X-Amz-Log-Result", _log_tail(result.log)))
        return _respond(start_response, result.status, headers, result.payload)

    @staticmethod
    def _invoke_in_background(invoker: LocalInvoker, function: str, payload: bytes,
                              qualifier: str | None, version: str):
        try:  # the version the answer's X-Amz-Executed-Version named
            invoker.invoke(function, payload, qualifier=qualifier, version=version)
        except Exception:  # nobody waits on an Event invocation: report, as Lambda logs it
            _logger.exception("lambda3: asynchronous invocation of %s failed", function)


class Emulator:
    """moto's server plus the local invoker, on one endpoint URL. A context manager."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 state_dir: Path | None = None, region: str = "us-east-1",
                 log_listener: Callable[[str, str], None] | None = None,
                 provisioned_ready_after: float = DEFAULT_READY_AFTER):
        self.host = host
        self.port = port
        self.region = region
        self.account = DEFAULT_ACCOUNT
        self.endpoint_url = ""
        self._state_dir = Path(state_dir) if state_dir else None
        self._own_state_dir = state_dir is None
        self._log_listener = log_listener
        self._server = None
        self._thread: threading.Thread | None = None
        self.extras = LambdaExtras(provisioned_ready_after)  # seconds from a put to READY

    def start(self) -> Emulator:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass

        use_local_invoker()
        if self._state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="lambda3-emulator-"))
        front = _Front(DomainDispatcherApplication(create_backend_app), extras=self.extras)
        self._server = make_server(self.host, self.port, front, threaded=True,
                                   request_handler=QuietHandler)
        self.port = self._server.server_address[1]
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104
        self.endpoint_url = f"http://{host}:{self.port}"
        self.invokers = _Invokers(self._make_invoker, self.region)
        self.invoker = self.invokers.default
        front.invokers = self.invokers
        self._thread = serve_in_thread(self._server, "lambda3-emulator")
        return self

    def _make_invoker(self, region: str) -> LocalInvoker:
        state = "invoker" if region == self.region else f"invoker-{region}"
        return LocalInvoker(self.endpoint_url, self._state_dir / state, region=region,
                            account=self.account, log_listener=self._log_listener)

    def stop(self) -> None:
        if self._server is None:
            return
        stop_serving(self._server, self._thread)
        self._server = None
        self.invokers.close()
        if self._own_state_dir and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def reset(self) -> None:
        """Wipe all AWS state (as ``POST /moto-api/reset``) and make every function cold."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        self.extras.reset()
        self.invokers.reset()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
