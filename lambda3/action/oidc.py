"""GitHub OIDC: an ID token from the Actions runtime, exchanged for AWS credentials.

The same two calls the actions toolkit and aws-actions/configure-aws-credentials make:
GET `$ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with the request token as a bearer token,
then STS `AssumeRoleWithWebIdentity` (with `role-external-id`, STS `AssumeRole` on the
credentials already in the environment instead, as configure-aws-credentials does). The
token is fetched with the standard library: the action's only dependency is boto3. The
failures users actually hit get messages that say what to change: the missing
`id-token: write` permission, and a role trust policy that does not match the token (shown
next to the token's own `sub` and `aud`).
"""
from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from builder.errors import Lambda3Error

# (url, headers, timeout) -> (HTTP status, body)
HttpGet = Callable[[str, Mapping[str, str], float], "tuple[int, bytes]"]

GITHUB_ISSUER_HOST = "token.actions.githubusercontent.com"
RETRYABLE_STS_CODES = frozenset({
    "Throttling", "ThrottlingException", "IDPCommunicationError", "IDPCommunicationErrorException",
    "RequestLimitExceeded", "ServiceUnavailable", "InternalFailure",
})


class OidcError(Lambda3Error):
    step = "credentials"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: str | None = None
    account_id: str | None = None

    def as_session_kwargs(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


@dataclass(frozen=True)
class IdTokenRequest:
    """Where the runner hands out ID tokens; present only with `permissions: id-token: write`."""

    url: str
    token: str = field(repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> IdTokenRequest:
        url = environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
        token = environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
        if not url or not token:
            raise missing_id_token_error()
        return cls(url=url, token=token)


def missing_id_token_error() -> OidcError:
    return OidcError(
        "no GitHub OIDC token is available to this job "
        "(ACTIONS_ID_TOKEN_REQUEST_URL / ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)",
        hint="give the job `permissions: id-token: write` (and `contents: read`); "
             "pull requests from forks never get an ID token",
    )


def fetch_id_token(request: IdTokenRequest, audience: str, *, http: HttpGet | None = None,
                   sleep: Callable[[float], None] = time.sleep, attempts: int = 3) -> str:
    """The runtime's signed JWT for `audience`; `http` defaults to urllib (`urllib_get`)."""
    http = http or urllib_get
    url = f"{request.url}&audience={quote(audience, safe='')}"
    headers = {"Authorization": f"Bearer {request.token}", "Accept": "application/json"}
    for attempt in range(1, attempts + 1):
        try:
            status, body = http(url, headers, 30.0)
        except OSError as exc:
            problem = f"could not reach the GitHub OIDC token endpoint ({type(exc).__name__})"
        else:
            if status == 200:
                return _token_value(body)
            problem = f"the GitHub OIDC token endpoint answered HTTP {status}"
            if status < 500 and status != 429:
                break
        if attempt < attempts:
            sleep(2 ** attempt)
    raise OidcError(problem, hint="check that the job has `permissions: id-token: write`")


def urllib_get(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    """GET with the standard library: (status, body), an HTTP error status included."""
    import urllib.error
    import urllib.parse
    import urllib.request

    if urllib.parse.urlsplit(url).scheme not in {"https", "http"}:
        raise OidcError("ACTIONS_ID_TOKEN_REQUEST_URL is not an http(s) URL")
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - checked
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _token_value(body: bytes) -> str:
    try:
        value = json.loads(body)["value"]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, str) or value.count(".") != 2:
        raise OidcError("the GitHub OIDC token endpoint answered without a token")
    return value


def decode_claims(jwt: str) -> dict[str, Any]:
    """The JWT's payload, not verified (STS verifies it); for messages only."""
    try:
        payload = jwt.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def assume_role(sts: Any, *, role_arn: str, session_name: str, id_token: str | None = None,
                external_id: str | None = None, duration: int = 3600,
                sleep: Callable[[float], None] = time.sleep, attempts: int = 4) -> Credentials:
    """AssumeRoleWithWebIdentity with `id_token`; without one, AssumeRole on the credentials
    `sts` signs with (and `external_id`). Retried on throttling and IdP communication errors."""
    from botocore.exceptions import ClientError

    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name,
                              "DurationSeconds": duration}
    if id_token:
        call, params["WebIdentityToken"] = sts.assume_role_with_web_identity, id_token
    else:
        call = sts.assume_role
        if external_id:
            params["ExternalId"] = external_id
    for attempt in range(1, attempts + 1):
        try:
            answer = call(**params)
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in RETRYABLE_STS_CODES or attempt == attempts:
                raise sts_error(exc, role_arn=role_arn, id_token=id_token) from None
            sleep(2 ** attempt)
    return _credentials(answer)


def _credentials(answer: Mapping[str, Any]) -> Credentials:
    creds = answer["Credentials"]
    expiration = creds.get("Expiration")
    arn = str(answer.get("AssumedRoleUser", {}).get("Arn", ""))
    return Credentials(
        access_key_id=creds["AccessKeyId"], secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
        expiration=expiration.isoformat() if hasattr(expiration, "isoformat") else expiration,
        account_id=account_of(arn),
    )


def account_of(arn: str) -> str | None:
    """The account id field of an ARN (`arn:aws:sts::123456789012:assumed-role/...`)."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


def sts_error(exc: Any, *, role_arn: str, id_token: str | None) -> OidcError:
    """An STS ClientError as a message that says what to change."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    if not id_token:
        return OidcError(f"STS AssumeRole failed for {role_arn}: {code}: {message}",
                         hint="the role's trust policy must let these credentials in "
                              "(with the role-external-id it requires, if any)")
    claims = decode_claims(id_token)
    if code == "AccessDenied" and "AssumeRoleWithWebIdentity" in message:
        return OidcError(
            f"STS refused to let this workflow assume {role_arn}: {message}",
            hint=trust_policy_hint(claims),
        )
    if code == "InvalidIdentityToken":
        return OidcError(
            f"STS rejected the GitHub ID token ({message})",
            hint=f"the account needs an IAM OIDC provider for https://{GITHUB_ISSUER_HOST} "
                 f"with client ID {claims.get('aud', 'sts.amazonaws.com')!r} "
                 "(`lambda3 bootstrap --github-repo OWNER/REPO` creates it)",
        )
    return OidcError(f"STS AssumeRoleWithWebIdentity failed for {role_arn}: {code}: {message}")


def trust_policy_hint(claims: Mapping[str, Any]) -> str:
    sub = claims.get("sub", "?")
    aud = claims.get("aud", "?")
    aud = ",".join(aud) if isinstance(aud, list) else aud
    repo = claims.get("repository") or _repo_from_sub(str(sub)) or "OWNER/REPO"
    return (
        f"this token has sub={sub!r} and aud={aud!r}; the role's trust policy must allow "
        f"Action sts:AssumeRoleWithWebIdentity for the federated principal "
        f"arn:aws:iam::ACCOUNT:oidc-provider/{GITHUB_ISSUER_HOST} with the conditions "
        f"StringEquals {GITHUB_ISSUER_HOST}:aud = {aud!r} and "
        f"StringLike {GITHUB_ISSUER_HOST}:sub matching {sub!r} "
        f"(for example 'repo:{repo}:ref:refs/heads/main' or 'repo:{repo}:*')"
    )


def _repo_from_sub(sub: str) -> str | None:
    match = re.match(r"repo:([^:]+):", sub)
    return match.group(1) if match else None


def exchange(request: IdTokenRequest, *, sts: Any, http: HttpGet | None, role_arn: str,
             audience: str, session_name: str, duration: int = 3600,
             sleep: Callable[[float], None] = time.sleep,
             mask: Callable[[str], None] = lambda secret: None) -> Credentials:
    """ID token from the runner, then credentials for `role_arn`; `mask` is called with
    each secret (the ID token, then the credentials) as soon as it is known."""
    id_token = fetch_id_token(request, audience, http=http, sleep=sleep)
    mask(id_token)
    creds = assume_role(sts, role_arn=role_arn, session_name=session_name, id_token=id_token,
                        duration=duration, sleep=sleep)
    for secret in (creds.access_key_id, creds.secret_access_key, creds.session_token):
        mask(secret)
    return creds


def session_name_for(value: str) -> str:
    """A valid RoleSessionName (2-64 of `[\\w+=,.@-]`) made from `value`."""
    cleaned = re.sub(r"[^\w+=,.@-]", "-", value)[:64]
    return cleaned if len(cleaned) >= 2 else "lambda3"
