"""The one AWS wrapper: every boto3 call the builder makes goes through here.

Clients come from one factory that honours an endpoint URL (`LAMBDA3_ENDPOINT_URL`, or
botocore's own `AWS_ENDPOINT_URL`), so the same code talks to AWS or to the emulator.
Methods are small verb_noun calls that turn ClientError into `AwsError` and retry, with an
injected sleep, what AWS asks to retry: an update still in progress, throttling, and a role
that IAM has not propagated yet.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from builder.errors import AwsError

log = logging.getLogger(__name__)

RETRYABLE = {"ResourceConflictException", "TooManyRequestsException", "ThrottlingException",
             "Throttling", "RequestLimitExceeded"}
_ROLE_NOT_READY = "cannot be assumed by Lambda"


def endpoint_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    return environ.get("LAMBDA3_ENDPOINT_URL") or None


class ClientFactory:
    """Makes boto3 clients for one region, endpoint and credential source."""

    def __init__(self, *, region: str | None = None, endpoint_url: str | None = None,
                 session: Any = None, config: Any = None) -> None:
        import boto3

        self.session = session or boto3.session.Session(region_name=region)
        self.region = region or self.session.region_name or "us-east-1"
        self.endpoint_url = endpoint_url if endpoint_url is not None else endpoint_url_from_env()
        self.config = config
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url,
                config=self.config,
            )
        return self._clients[service]


@dataclass(frozen=True)
class FunctionState:
    name: str
    arn: str
    code_sha256: str
    revision_id: str | None
    layers: tuple[str, ...]  # layer version ARNs, in order
    config: Mapping[str, Any]  # the raw configuration as AWS returned it


@dataclass(frozen=True)
class LayerVersion:
    name: str
    arn: str  # the layer version ARN
    version: int
    code_sha256: str
    size: int


def layer_name_of(arn: str) -> str:
    """arn:aws:lambda:region:account:layer:NAME:VERSION -> NAME"""
    parts = arn.split(":")
    return parts[6] if len(parts) >= 8 else arn


def layer_version_of(arn: str) -> int:
    return int(arn.rsplit(":", 1)[1])


class Aws:
    """Typed calls on Lambda, S3 and friends."""

    def __init__(self, clients: Callable[[str], Any], *,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = 8,
                 base_delay: float = 1.0) -> None:
        self.clients = clients
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.base_delay = base_delay

    @property
    def region(self) -> str:
        return getattr(self.clients, "region", None) or self.clients("lambda").meta.region_name

    # -- the retry core ---------------------------------------------------------------------
    def call(self, service: str, method: str, *, retry_role: bool = False, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        for attempt in range(1, self.max_attempts + 1):
            try:
                return getattr(self.clients(service), method)(**kwargs)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                message = error.response.get("Error", {}).get("Message", str(error))
                if attempt < self.max_attempts and self._retryable(code, message, retry_role):
                    delay = min(self.base_delay * 2 ** (attempt - 1), 20.0)
                    log.info("%s.%s: %s, retrying in %.0f s", service, method, code, delay)
                    self.sleep(delay)
                    continue
                raise AwsError(f"{method} failed: {code}: {message}", code=code) from None
        raise AssertionError("unreachable")

    @staticmethod
    def _retryable(code: str, message: str, retry_role: bool) -> bool:
        if code in RETRYABLE:
            return True
        role_not_ready = code == "InvalidParameterValueException" and _ROLE_NOT_READY in message
        return retry_role and role_not_ready

    def _maybe(self, service: str, method: str, **kwargs: Any) -> Any:
        """Like call, but None when the resource does not exist."""
        try:
            return self.call(service, method, **kwargs)
        except AwsError as error:
            if error.code in ("ResourceNotFoundException", "NoSuchKey", "404", "NotFound"):
                return None
            raise

    # -- reading ----------------------------------------------------------------------------
    def get_function(self, name: str) -> FunctionState | None:
        found = self._maybe("lambda", "get_function_configuration", FunctionName=name)
        if found is None:
            return None
        return FunctionState(
            name=found["FunctionName"], arn=found["FunctionArn"], code_sha256=found["CodeSha256"],
            revision_id=found.get("RevisionId"),
            layers=tuple(layer["Arn"] for layer in found.get("Layers", [])), config=found,
        )

    def get_alias_version(self, function: str, alias: str) -> str | None:
        found = self._maybe("lambda", "get_alias", FunctionName=function, Name=alias)
        return found["FunctionVersion"] if found else None

    def latest_published_version(self, function: str) -> Mapping[str, Any] | None:
        versions = []
        marker = None
        while True:
            kwargs = {"FunctionName": function, **({"Marker": marker} if marker else {})}
            page = self.call("lambda", "list_versions_by_function", **kwargs)
            versions += [v for v in page.get("Versions", []) if v["Version"] != "$LATEST"]
            marker = page.get("NextMarker")
            if not marker:
                break
        return max(versions, key=lambda v: int(v["Version"]), default=None)

    def get_layer_version(self, arn: str) -> LayerVersion | None:
        name, version = layer_name_of(arn), layer_version_of(arn)
        found = self._maybe("lambda", "get_layer_version", LayerName=name, VersionNumber=version)
        if not found:
            return None
        content = found.get("Content", {})
        return LayerVersion(name, found["LayerVersionArn"], version,
                            content.get("CodeSha256", ""), content.get("CodeSize", 0))

    def latest_layer_version(self, name: str) -> LayerVersion | None:
        page = self._maybe("lambda", "list_layer_versions", LayerName=name)
        versions = (page or {}).get("LayerVersions", [])
        if not versions:
            return None
        newest = max(versions, key=lambda v: v["Version"])
        return self.get_layer_version(newest["LayerVersionArn"])

    def s3_object_exists(self, bucket: str, key: str) -> bool:
        return self._maybe("s3", "head_object", Bucket=bucket, Key=key) is not None

    # -- writing ----------------------------------------------------------------------------
    def upload_file(self, path: str, bucket: str, key: str) -> None:
        try:
            self.clients("s3").upload_file(path, bucket, key)
        except Exception as error:  # boto3's transfer manager raises its own types
            raise AwsError(f"upload to s3://{bucket}/{key} failed: {error}") from None

    def publish_layer_version(self, **kwargs: Any) -> LayerVersion:
        found = self.call("lambda", "publish_layer_version", **kwargs)
        content = found.get("Content", {})
        return LayerVersion(kwargs["LayerName"], found["LayerVersionArn"], found["Version"],
                            content.get("CodeSha256", ""), content.get("CodeSize", 0))

    def create_function(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "create_function", retry_role=True, **kwargs)

    def update_function_configuration(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "update_function_configuration", **kwargs)

    def update_function_code(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "update_function_code", **kwargs)

    def publish_version(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "publish_version", **kwargs)

    def set_alias(self, function: str, alias: str, version: str, *, exists: bool) -> Mapping:
        method = "update_alias" if exists else "create_alias"
        return self.call("lambda", method, FunctionName=function, Name=alias,
                         FunctionVersion=version)

    # -- waiting ----------------------------------------------------------------------------
    def wait_until_updated(self, function: str, *, timeout: float = 600.0) -> Mapping[str, Any]:
        """What botocore's function_updated_v2 / function_active_v2 waiters check, with our sleep:
        State Active (not Pending) and LastUpdateStatus Successful; Failed is an error."""
        waited, delay = 0.0, 1.0
        while True:
            config = self.call("lambda", "get_function_configuration", FunctionName=function)
            state, update = config.get("State", "Active"), config.get("LastUpdateStatus",
                                                                       "Successful")
            if state == "Failed" or update == "Failed":
                reason = config.get("LastUpdateStatusReason") or config.get("StateReason") or ""
                raise AwsError(f"function {function} update failed: {reason}",
                               code=config.get("LastUpdateStatusReasonCode"))
            if state != "Pending" and update == "Successful":
                return config
            if waited >= timeout:
                raise AwsError(f"function {function} still updating after {timeout:.0f} s")
            self.sleep(delay)
            waited += delay
            delay = min(delay * 1.5, 5.0)
