"""The one AWS wrapper: every boto3 call the builder makes goes through here.

Clients come from `builder.clients.Clients` (one region, endpoint and credential source),
so the same code talks to AWS or to the emulator.
Methods are small verb_noun calls that turn ClientError into `AwsError` and retry, with an
injected sleep, what AWS asks to retry: an update still in progress, throttling, and a role
that IAM has not propagated yet.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from builder.errors import AwsError

log = logging.getLogger(__name__)

THROTTLED = {"TooManyRequestsException", "ThrottlingException", "Throttling",
             "RequestLimitExceeded"}
_IN_PROGRESS = ("update is in progress", "the following state: pending")  # lower-cased
_ROLE_NOT_READY = "cannot be assumed by Lambda"
_READS = ("get_", "list_", "head_", "describe_")
_NOT_FOUND = ("ResourceNotFoundException", "NoSuchKey", "404", "NotFound",
              "ProvisionedConcurrencyConfigNotFoundException")


@dataclass(frozen=True)
class FunctionState:
    name: str
    arn: str
    code_sha256: str
    revision_id: str | None
    layers: tuple[str, ...]  # layer version ARNs, in order
    config: Mapping[str, Any]  # the raw configuration as AWS returned it


@dataclass(frozen=True)
class AliasState:
    version: str
    revision_id: str | None
    weights: tuple[tuple[str, float], ...] = ()  # RoutingConfig.AdditionalVersionWeights


@dataclass(frozen=True)
class LayerVersion:
    name: str
    arn: str  # the layer version ARN
    version: int
    code_sha256: str
    size: int  # zipped (CodeSize): the only size Lambda tells


def layer_name_of(arn: str) -> str:
    """arn:aws:lambda:region:account:layer:NAME:VERSION -> NAME"""
    parts = arn.split(":")
    return parts[6] if len(parts) >= 8 else arn


def layer_version_of(arn: str) -> int:
    return int(arn.rsplit(":", 1)[1])


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """What a published version would take from $LATEST (code, layers, settings), without
    the fields that change by themselves (RevisionId, LastModified, states)."""
    def part(key: str, inner: str | None = None) -> Any:
        value = config.get(key)
        return value.get(inner) if inner and isinstance(value, Mapping) else value

    return json.dumps({
        "CodeSha256": config.get("CodeSha256"),
        "Layers": [layer["Arn"] for layer in config.get("Layers") or []],
        **{key: config.get(key) for key in ("Runtime", "Handler", "Role", "MemorySize",
                                            "Timeout", "Description", "Architectures",
                                            "KMSKeyArn", "FileSystemConfigs")},
        "Environment": part("Environment", "Variables") or {},
        "EphemeralStorage": part("EphemeralStorage", "Size"),
        "TracingConfig": part("TracingConfig", "Mode"),
        "SnapStart": part("SnapStart", "ApplyOn"),
        "DeadLetterConfig": part("DeadLetterConfig", "TargetArn"),
        "VpcConfig": [part("VpcConfig", "SubnetIds"), part("VpcConfig", "SecurityGroupIds")],
        "LoggingConfig": config.get("LoggingConfig"),
    }, sort_keys=True, default=str)


class ConcurrentChangeError(AwsError):
    """Someone else changed the function between our reading it and our changing it."""

    def __init__(self, function: str, detail: str) -> None:
        super().__init__(f"another change to function {function} happened meanwhile ({detail}); "
                         f"re-run the deploy", code="ConcurrentChange")
        self.function = function


class UnknownOutcomeError(AwsError):
    """A call sent and never answered: it may or may not have happened."""


def _connection_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return (BotoConnectionError, HTTPClientError)


def _code_and_message(error: Any) -> tuple[str, str]:
    details = error.response.get("Error", {})
    return details.get("Code", ""), details.get("Message", str(error))


def _in_progress(code: str, message: str) -> bool:
    lowered = message.lower()
    return code == "ResourceConflictException" and any(m in lowered for m in _IN_PROGRESS)


def _operation(method: str) -> str:
    """update_function_code -> UpdateFunctionCode, the name AWS documents."""
    return "".join(word.capitalize() for word in method.split("_"))


def _retry_after(error: Any) -> float | None:
    """TooManyRequestsException's `retryAfterSeconds` (body), or a Retry-After header."""
    response = error.response
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = response.get("retryAfterSeconds") or headers.get("retry-after")
    try:
        return min(max(float(value), 0.0), 300.0) if value is not None else None
    except (TypeError, ValueError):
        return None


class Aws:
    """Typed calls on Lambda, S3 and friends.

    Retries are ours, with the injected sleep: throttling (after `retryAfterSeconds` when
    AWS says), an update still in progress, a role IAM has not propagated yet, and, for
    calls that change nothing, 5xx answers and lost connections. A call that changes
    something and gets no answer is an `UnknownOutcomeError`, never re-sent blindly.
    Works with botocore's own retries on or off; off (`total_max_attempts: 1` on the
    lambda client) is what keeps PublishLayerVersion from being sent twice.
    """

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
    def call(self, service: str, method: str, *, retry_role: bool = False,
             idempotent: bool | None = None, **kwargs: Any) -> Any:
        """`idempotent` (default: the method only reads, get_/list_/head_/describe_) allows
        retrying a 5xx answer or a lost connection."""
        from botocore.exceptions import ClientError

        if idempotent is None:
            idempotent = method.startswith(_READS)
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                return getattr(self.clients(service), method)(**kwargs)
            except ClientError as error:
                delay = None if last else self._retry_delay(error, attempt, retry_role,
                                                            idempotent, kwargs)
                if delay is None:
                    raise self._error(method, error, kwargs) from None
                reason = _code_and_message(error)[0]
            except _connection_errors() as error:
                if last or not idempotent:
                    raise self._lost(method, error, idempotent) from None
                delay, reason = self._backoff(attempt), type(error).__name__
            log.info("%s.%s: %s, retrying in %.0f s", service, method, reason, delay)
            self.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(self.base_delay * 2 ** (attempt - 1), 20.0)

    def _retry_delay(self, error: Any, attempt: int, retry_role: bool, idempotent: bool,
                     kwargs: Mapping[str, Any]) -> float | None:
        """Seconds to wait before trying again, or None when the error is final."""
        code, message = _code_and_message(error)
        if code in THROTTLED:
            after = _retry_after(error)
            return after if after is not None else self._backoff(attempt)
        if _in_progress(code, message):
            return self._backoff(attempt)
        if retry_role and code == "InvalidParameterValueException" and _ROLE_NOT_READY in message:
            missing = attempt == 1 and self._role_missing(kwargs.get("Role"))
            return None if missing else self._backoff(attempt)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return self._backoff(attempt) if idempotent and status >= 500 else None

    def _error(self, method: str, error: Any, kwargs: Mapping[str, Any]) -> AwsError:
        """The AWS error as one line that says what to do."""
        code, message = _code_and_message(error)
        method = _operation(method)
        function = str(kwargs.get("FunctionName", "the function"))
        role = kwargs.get("Role") or "the function's role"
        if code == "PreconditionFailedException":
            return ConcurrentChangeError(function, f"{method} found a newer RevisionId")
        if code == "ResourceConflictException" and "already exist" in message:
            return ConcurrentChangeError(function, f"{method}: {message}")
        if _in_progress(code, message):
            text = (f"{method} failed: {function} kept updating through {self.max_attempts} "
                    f"attempts ({message}): wait for the other update to finish and re-run")
        elif code == "ResourceConflictException":
            text = f"{method} failed: {message}: resolve that conflict and re-run"
        elif code == "AccessDeniedException" and "iam:PassRole" in message:
            text = (f"{method} failed: the builder may not pass {role} to Lambda "
                    f"(iam:PassRole): allow iam:PassRole on it in the builder's policy")
        elif code == "InvalidParameterValueException" and _ROLE_NOT_READY in message:
            text = (f"{method} failed: Lambda cannot assume {role}: "
                    + ("it does not exist; create it or fix function.role in the build file"
                       if self._role_missing(kwargs.get("Role")) else
                       "check that it trusts lambda.amazonaws.com, then re-run"))
        elif code == "CodeStorageExceededException":
            text = (f"{method} failed: Lambda's code storage in this region is full"
                    f"{self._code_storage()}: delete old function and layer versions "
                    f"(`lambda3 prune`, or `aws lambda delete-function --qualifier N`) and re-run")
        else:
            text = f"{method} failed: {code}: {message}"
        return AwsError(text, code=code)

    @staticmethod
    def _lost(method: str, error: Exception, idempotent: bool) -> AwsError:
        method = _operation(method)
        if idempotent:
            return AwsError(f"{method} failed: no answer from AWS ({error}): check the network "
                            f"and the endpoint, then re-run", code="NoAnswer")
        return UnknownOutcomeError(f"{method} was sent but not answered ({error}): it may have "
                                   f"happened; re-run the deploy", code="UnknownOutcome")

    def _role_missing(self, role: Any) -> bool:
        """True only when IAM says the role does not exist (any other answer: unknown)."""
        if not isinstance(role, str) or ":role/" not in role:
            return False
        try:
            self.clients("iam").get_role(RoleName=role.rsplit("/", 1)[1])
        except Exception as error:  # no iam:GetRole, no network: we cannot tell
            return getattr(error, "response", {}).get("Error", {}).get("Code") == "NoSuchEntity"
        return False

    def _code_storage(self) -> str:
        """' (X of Y used)' from GetAccountSettings, or '' when it cannot be read."""
        try:
            settings = self.clients("lambda").get_account_settings()
            used = settings["AccountUsage"]["TotalCodeSize"]
            limit = settings["AccountLimit"]["TotalCodeSize"]
        except Exception:  # best effort: the message stands without the numbers
            return ""
        return f" ({_gb(used)} of {_gb(limit)} used)"

    def maybe(self, service: str, method: str, **kwargs: Any) -> Any:
        """Like call, but None when the resource does not exist."""
        try:
            return self.call(service, method, **kwargs)
        except AwsError as error:
            if error.code in _NOT_FOUND:
                return None
            raise

    # -- reading ----------------------------------------------------------------------------
    def get_function(self, name: str) -> FunctionState | None:
        found = self.maybe("lambda", "get_function_configuration", FunctionName=name)
        if found is None:
            return None
        return FunctionState(
            name=found["FunctionName"], arn=found["FunctionArn"], code_sha256=found["CodeSha256"],
            revision_id=found.get("RevisionId"),
            layers=tuple(layer["Arn"] for layer in found.get("Layers", [])), config=found,
        )

    def get_alias(self, function: str, alias: str) -> AliasState | None:
        found = self.maybe("lambda", "get_alias", FunctionName=function, Name=alias)
        if not found:
            return None
        weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasState(found["FunctionVersion"], found.get("RevisionId"),
                          tuple(sorted(weights.items())))

    def get_alias_version(self, function: str, alias: str) -> str | None:
        found = self.get_alias(function, alias)
        return found.version if found else None

    def list_versions(self, function: str) -> list[Mapping[str, Any]]:
        """Every published version's configuration (all pages), oldest first."""
        versions: list[Mapping[str, Any]] = []
        marker = None
        while True:
            kwargs = {"FunctionName": function, **({"Marker": marker} if marker else {})}
            page = self.call("lambda", "list_versions_by_function", **kwargs)
            versions += [v for v in page.get("Versions", []) if v["Version"] != "$LATEST"]
            marker = page.get("NextMarker")
            if not marker:
                return sorted(versions, key=lambda v: int(v["Version"]))

    def latest_published_version(self, function: str) -> Mapping[str, Any] | None:
        versions = self.list_versions(function)
        return versions[-1] if versions else None

    def get_layer_version(self, arn: str) -> LayerVersion | None:
        name, version = layer_name_of(arn), layer_version_of(arn)
        # the layer's ARN, not its name: a layer of another account is read where it is
        layer = arn.rsplit(":", 1)[0] if arn.count(":") >= 7 else name
        found = self.maybe("lambda", "get_layer_version", LayerName=layer, VersionNumber=version)
        if not found:
            return None
        content = found.get("Content", {})
        return LayerVersion(name, found["LayerVersionArn"], version,
                            content.get("CodeSha256", ""), content.get("CodeSize", 0))

    def latest_layer_version(self, name: str) -> LayerVersion | None:
        versions = self._layer_versions(name)
        return self.get_layer_version(versions[0]["LayerVersionArn"]) if versions else None

    def find_layer_version(self, name: str, code_sha256: str, *,
                           newest: int = 5) -> LayerVersion | None:
        """One of the `newest` versions of layer `name` with this CodeSha256, if any."""
        for item in self._layer_versions(name)[:newest]:
            found = self.get_layer_version(item["LayerVersionArn"])
            if found is not None and found.code_sha256 == code_sha256:
                return found
        return None

    def _layer_versions(self, name: str) -> list[Mapping[str, Any]]:
        page = self.maybe("lambda", "list_layer_versions", LayerName=name)
        versions = (page or {}).get("LayerVersions", [])
        return sorted(versions, key=lambda v: v["Version"], reverse=True)

    def s3_object_exists(self, bucket: str, key: str) -> bool:
        return self.maybe("s3", "head_object", Bucket=bucket, Key=key) is not None

    # -- writing ----------------------------------------------------------------------------
    def upload_file(self, path: str, bucket: str, key: str) -> None:
        try:
            self.clients("s3").upload_file(path, bucket, key)
        except Exception as error:  # boto3's transfer manager raises its own types
            raise AwsError(f"upload to s3://{bucket}/{key} failed: {error}") from None

    def publish_layer_version(self, *, code_sha256: str | None = None,
                              **kwargs: Any) -> LayerVersion:
        """Publish once; after an unanswered call, use the version it made if it made one."""
        try:
            found = self.call("lambda", "publish_layer_version", idempotent=False, **kwargs)
        except UnknownOutcomeError:
            existing = code_sha256 and self.find_layer_version(kwargs["LayerName"], code_sha256)
            if existing:
                log.info("the unanswered publish made %s: using it", existing.arn)
                return existing
            found = self.call("lambda", "publish_layer_version", idempotent=False, **kwargs)
        content = found.get("Content", {})
        return LayerVersion(kwargs["LayerName"], found["LayerVersionArn"], found["Version"],
                            content.get("CodeSha256", ""), content.get("CodeSize", 0))

    def create_function(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "create_function", retry_role=True, idempotent=False, **kwargs)

    def update_function_configuration(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "update_function_configuration", retry_role=True,
                         idempotent=False, **kwargs)

    def update_function_code(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "update_function_code", idempotent=False, **kwargs)

    def publish_version(self, **kwargs: Any) -> Mapping[str, Any]:
        return self.call("lambda", "publish_version", idempotent=False, **kwargs)

    def set_alias(self, function: str, alias: str, version: str, *, exists: bool,
                  revision_id: str | None = None,
                  weights: tuple[tuple[str, float], ...] = ()) -> Mapping:
        """Point `alias` at `version`; its routing becomes `weights` (none: all traffic)."""
        kwargs: dict[str, Any] = {"FunctionName": function, "Name": alias,
                                  "FunctionVersion": version}
        if exists or weights:
            kwargs["RoutingConfig"] = {"AdditionalVersionWeights": dict(weights)}
        if exists and revision_id:
            kwargs["RevisionId"] = revision_id
        method = "update_alias" if exists else "create_alias"
        return self.call("lambda", method, idempotent=False, **kwargs)

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
            waited, delay = waited + delay, min(delay * 1.5, 5.0)

    def wait_version_active(self, function: str, version: str, *,
                            timeout: float = 900.0) -> Mapping[str, Any]:
        """What botocore's published_version_active waiter checks (SnapStart versions stay
        Pending until their snapshot is ready), with our sleep; Failed is an error."""
        waited, delay = 0.0, 1.0
        while True:
            config = self.call("lambda", "get_function_configuration", FunctionName=function,
                               Qualifier=version)
            state = config.get("State", "Active")
            if state == "Failed":
                raise AwsError(f"version {version} of {function} failed to become active: "
                               f"{config.get('StateReason') or 'no reason given'}",
                               code=config.get("StateReasonCode"))
            if state == "Active":
                return config
            if waited >= timeout:
                raise AwsError(f"version {version} of {function} still {state} after "
                               f"{timeout:.0f} s")
            self.sleep(delay)
            waited, delay = waited + delay, min(delay * 1.5, 5.0)


    def wait_provisioned_ready(self, function: str, alias: str, *,
                               timeout: float = 600.0) -> Mapping[str, Any]:
        """The alias's provisioned concurrency READY (Lambda allocates it in minutes);
        FAILED is an error with Lambda's reason."""
        waited, delay = 0.0, 1.0
        while True:
            found = self.call("lambda", "get_provisioned_concurrency_config",
                              FunctionName=function, Qualifier=alias)
            status = found.get("Status")
            if status == "FAILED":
                raise AwsError(f"provisioned concurrency of {function}:{alias} failed: "
                               f"{found.get('StatusReason') or 'no reason given'}",
                               code="ProvisionedConcurrencyFailed")
            if status == "READY":
                return found
            if waited >= timeout:
                counts = (found.get("AllocatedProvisionedConcurrentExecutions", 0),
                          found.get("RequestedProvisionedConcurrentExecutions"))
                raise AwsError(f"provisioned concurrency of {function}:{alias} still {status} "
                               f"after {timeout:.0f} s ({counts[0]} of {counts[1]} allocated)",
                               code="ProvisionedConcurrencyTimeout")
            self.sleep(delay)
            waited, delay = waited + delay, min(delay * 1.5, 10.0)


def _gb(size: int) -> str:
    return f"{size / 1024 ** 3:.1f} GB"
