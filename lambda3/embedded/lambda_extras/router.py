"""Which requests the emulator's front answers itself, and the parsing they share.

`LambdaExtras.handle` matches a request's method and path against the APIs served here
(provisioned concurrency, recursion, function URLs, resource policies) and answers it, or
returns None for moto to answer. The account is the one moto would use for the request
(``MOTO_ACCOUNT_ID``, the ``x-moto-account-id`` header, else the access key's account) and
the region the one its signature names, so the function looked up is the one moto holds. A
function reference may be a name, ``name:qualifier``, a partial ARN or an ARN; a qualifier in
it and a different ``Qualifier`` parameter are refused, as Lambda refuses them.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, unquote

from lambda3.embedded.lambda_extras.policies import Policies
from lambda3.embedded.lambda_extras.provisioned import ProvisionedConcurrency
from lambda3.embedded.lambda_extras.recursion import Recursion
from lambda3.embedded.lambda_extras.urls import FunctionUrls
from lambda3.embedded.lambda_extras.wire import Answer, ApiError, Request, invalid
from lambda3.embedded.moto_functions import parse_reference

DEFAULT_READY_AFTER = 0.2  # seconds from a put to READY; Lambda takes minutes
MOTO_DEFAULT_REGION = "us-east-1"  # the region moto gives an unsigned request
MISMATCH = "The derived qualifier from the function name does not match the specified qualifier."
_FUNCTION = r"/functions/(?P<function>[^/]+)"
Reply = tuple[int, list[tuple[str, str]], bytes]


class LambdaExtras:
    """The APIs served here and their state; one lock serialises every call."""

    def __init__(self, provisioned_ready_after: float = DEFAULT_READY_AFTER,
                 clock: Callable[[], float] = time.monotonic):
        self.provisioned = ProvisionedConcurrency(provisioned_ready_after, clock)
        self.recursion = Recursion()
        self.urls = FunctionUrls()
        self.policies = Policies()
        self._lock = threading.Lock()
        self._routes = self._make_routes()

    def _make_routes(self) -> list[tuple[str, re.Pattern, Callable[[Request], Answer]]]:
        provisioned = f"/2019-09-30{_FUNCTION}/provisioned-concurrency"
        recursion, url = f"/2024-08-31{_FUNCTION}/recursion-config", f"/2021-10-31{_FUNCTION}/url"
        policy = f"/2015-03-31{_FUNCTION}/policy"
        table = [
            ("PUT", provisioned, self.provisioned.put),
            ("GET", provisioned, self._provisioned_get_or_list),
            ("DELETE", provisioned, self.provisioned.delete),
            ("PUT", recursion, self.recursion.put), ("GET", recursion, self.recursion.get),
            ("POST", url, self.urls.create), ("GET", url, self.urls.get),
            ("PUT", url, self.urls.update), ("DELETE", url, self.urls.delete),
            ("GET", f"/2021-10-31{_FUNCTION}/urls", self.urls.list),
            ("POST", policy, self.policies.add), ("GET", policy, self.policies.get),
            ("DELETE", f"{policy}/(?P<statement>[^/]+)", self.policies.remove),
        ]
        return [(method, re.compile(f"^{path}/?$"), call) for method, path, call in table]

    def _provisioned_get_or_list(self, request: Request) -> Answer:
        if request.query.get("List") == "ALL":
            return self.provisioned.list(request)
        return self.provisioned.get(request)

    def handle(self, environ: dict, region: str | None) -> Reply | None:
        """The answer to a request served here, or None when moto serves it. `region` is
        the one the request's signature names (None: unsigned)."""
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        for wanted, pattern, call in self._routes:
            found = pattern.match(path) if method == wanted else None
            if found:
                return self._serve(call, environ, found, region or MOTO_DEFAULT_REGION)
        return None

    def _serve(self, call: Callable[[Request], Answer], environ: dict, found: re.Match,
               region: str) -> Reply:
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        try:
            request = _request(environ, found, region)
            with self._lock:
                answer = call(request)
        except ApiError as e:
            headers.append(("x-amzn-ErrorType", e.code))
            return e.status, headers, json.dumps(e.body()).encode()
        return answer.status, headers, answer.encoded()

    def reset(self) -> None:
        """Forget all state (as moto's own reset does)."""
        with self._lock:
            for service in (self.provisioned, self.recursion, self.urls, self.policies):
                service.records.clear()


def request_account(environ: dict) -> str:
    """The account moto serves this request from."""
    from moto.core.responses import BaseResponse
    from moto.iam.models import get_account_id_from

    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    key = BaseResponse.access_key_regex.search(environ.get("HTTP_AUTHORIZATION", ""))
    return get_account_id_from(key.group(1) if key else "AKIAEXAMPLE")


def _request(environ: dict, found: re.Match, region: str) -> Request:
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    name, derived, region, account = parse_reference(
        unquote(found["function"]), None, region, request_account(environ))
    qualifier = query.get("Qualifier")
    if derived and qualifier and derived != qualifier:
        raise invalid(MISMATCH)
    statement = found.groupdict().get("statement") or ""
    return Request(account, region, name, derived or qualifier, query, _body(environ),
                   unquote(statement))


def _body(environ: dict) -> dict:
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    raw = stream.read(int(length)) if length.isdigit() else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError("InvalidRequestContentException",
                       "Could not parse request body into json") from None
    return body if isinstance(body, dict) else {}
