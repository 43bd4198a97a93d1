"""Function URLs (Create/Get/Update/Delete/ListFunctionUrlConfigs), one per qualifier.

Lambda keeps one URL config for the unqualified function and one per alias; a version number
or ``$LATEST`` is no qualifier here. The URL is ``https://<32 of [a-z0-9]>.lambda-url.
<region>.on.aws/`` and FunctionArn names the alias when there is one. moto keeps one config
per function whatever the qualifier, so the emulator serves these calls itself.
"""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from lambda3.embedded.lambda_extras.targets import VERSION, Missing, Records, Target, find
from lambda3.embedded.lambda_extras.wire import (
    Answer,
    Request,
    conflict,
    enum_error,
    lambda_date,
    not_found,
    page,
    pattern_error,
)

QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"
INVOKE_MODES = ("RESPONSE_STREAM", "BUFFERED")  # in the order Lambda's message names them
NO_FUNCTION = "Function does not exist"
NO_RESOURCE = "The resource you requested does not exist."
_URL_ID = string.ascii_lowercase + string.digits
_ALIAS_NAME = re.compile(r"^[0-9a-zA-Z-_]+$")


@dataclass
class _Url:
    url: str
    function_arn: str
    auth_type: str | None
    cors: dict | None
    invoke_mode: str | None  # None: never set (BUFFERED)
    created: str
    modified: str

    def view(self, *, modified: bool = True, default_mode: bool = True) -> dict[str, Any]:
        found: dict[str, Any] = {"FunctionUrl": self.url, "FunctionArn": self.function_arn,
                                 "AuthType": self.auth_type, "CreationTime": self.created}
        if self.cors is not None:
            found["Cors"] = self.cors
        if modified:
            found["LastModifiedTime"] = self.modified
        if self.invoke_mode or default_mode:
            found["InvokeMode"] = self.invoke_mode or "BUFFERED"
        return found


class FunctionUrls:
    def __init__(self) -> None:
        self.records = Records()

    def create(self, request: Request) -> Answer:
        target = self._target(request, NO_FUNCTION, check_mode=True)
        if self.records.get(target) is not None:
            raise conflict(f"Failed to create function url config for [functionArn = "
                           f"{target.arn}]. Error message:  FunctionUrlConfig exists for this "
                           "Lambda function")
        body, now = request.body, lambda_date()
        url_id = "".join(secrets.choice(_URL_ID) for _ in range(32))
        config = _Url(f"https://{url_id}.lambda-url.{target.region}.on.aws/", target.arn,
                      body.get("AuthType"), body.get("Cors"), body.get("InvokeMode"), now, now)
        self.records.put(target, config)
        return Answer(201, config.view(modified=False, default_mode=False))

    def update(self, request: Request) -> Answer:
        config = self._config(request, NO_FUNCTION, check_mode=True)
        body = request.body
        config.auth_type = body.get("AuthType", config.auth_type)
        config.cors = body.get("Cors", config.cors)
        config.invoke_mode = body.get("InvokeMode", config.invoke_mode)
        config.modified = lambda_date()
        return Answer(200, config.view(default_mode=False))

    def get(self, request: Request) -> Answer:
        return Answer(200, self._config(request, NO_RESOURCE).view())

    def delete(self, request: Request) -> Answer:
        target = self._target(request, NO_RESOURCE)
        if self.records.pop(target) is None:
            raise not_found(NO_RESOURCE)
        return Answer(204)

    def list(self, request: Request) -> Answer:
        function = self._target(Request(request.account, request.region, request.function,
                                        None), NO_FUNCTION)
        items = [config.view() for _, config in self.records.of_function(
            function, lambda q: find(function.account, function.region, function.function, q))]
        return Answer(200, page(items, request.query, "FunctionUrlConfigs"))

    def _config(self, request: Request, missing: str, check_mode: bool = False) -> _Url:
        config = self.records.get(self._target(request, missing, check_mode))
        if config is None:
            raise not_found(NO_RESOURCE)
        return config

    @staticmethod
    def _target(request: Request, missing: str, check_mode: bool = False) -> Target:
        """The function or alias; a version, ``$LATEST`` or a malformed qualifier is refused
        first, then an unknown invoke mode, then a missing function or alias (`missing`)."""
        qualifier = request.qualifier
        if qualifier is not None and (VERSION.match(qualifier)
                                      or not _ALIAS_NAME.match(qualifier)):
            raise pattern_error(qualifier, "qualifier", QUALIFIER_PATTERN)
        mode = request.body.get("InvokeMode")
        if check_mode and mode is not None and mode not in INVOKE_MODES:
            raise enum_error(mode, "invokeMode", ", ".join(INVOKE_MODES))
        try:
            return find(request.account, request.region, request.function, qualifier)
        except Missing:
            raise not_found(missing) from None
