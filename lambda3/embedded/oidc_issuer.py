"""A local OpenID Connect issuer that stands in for GitHub's, over real HTTP on 127.0.0.1.

It serves the discovery document, the JWKS and the Actions runtime's ID token endpoint
(`GET /token?audience=X` with `Authorization: Bearer <request token>`), and signs RS256 JWTs
with GitHub-like claims. `runner_env()` gives the two variables a job with
`permissions: id-token: write` sees, so the action's OIDC code runs unchanged against it.
"""
from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lambda3.embedded.serving import serve_in_thread, stop_serving


class TokenInvalid(Exception):
    """`verify()` refused a JWT."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def github_claims(repository: str, ref: str) -> dict[str, Any]:
    """Claims shaped like a GitHub Actions ID token for a push to `ref`."""
    owner = repository.split("/")[0]
    return {
        "sub": f"repo:{repository}:ref:{ref}",
        "repository": repository,
        "repository_owner": owner,
        "repository_id": "123456789",
        "repository_visibility": "private",
        "ref": ref,
        "ref_type": "branch" if ref.startswith("refs/heads/") else "tag",
        "sha": "0" * 40,
        "workflow": "deploy",
        "workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
        "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
        "event_name": "push",
        "actor": owner,
        "actor_id": "1",
        "run_id": "1000000001",
        "run_number": "1",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
    }


class OidcIssuer:
    """Context manager: `with OidcIssuer() as issuer: issuer.runner_env()`."""

    def __init__(self, *, repository: str = "octo-org/octo-repo", ref: str = "refs/heads/main",
                 claims: Mapping[str, Any] | None = None, lifetime: int = 300,
                 clock: Callable[[], float] = time.time, host: str = "127.0.0.1") -> None:
        self.claims = {**github_claims(repository, ref), **(claims or {})}
        self.lifetime = lifetime
        self.clock = clock
        self.request_token = secrets.token_urlsafe(32)
        self.kid = uuid.uuid4().hex[:16]
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server = ThreadingHTTPServer((host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.issued: list[str] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OidcIssuer:
        self._thread = serve_in_thread(self._server, "oidc-issuer")
        return self

    def stop(self) -> None:
        stop_serving(self._server, self._thread)
        self._thread = None

    def __enter__(self) -> OidcIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def runner_env(self) -> dict[str, str]:
        """The variables the Actions runner sets for a job allowed to request ID tokens."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": sorted({"sub", "aud", "exp", "iat", "iss", "jti", "nbf",
                                        *self.claims}),
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                          "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}]}

    def issue(self, audience: str, **extra_claims: Any) -> str:
        """A signed RS256 JWT for `audience`."""
        now = int(self.clock())
        claims = {**self.claims, **extra_claims, "iss": self.url, "aud": audience,
                  "iat": now, "nbf": now - 5, "exp": now + self.lifetime,
                  "jti": str(uuid.uuid4())}
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5t": self.kid}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                   hashes.SHA256())
        token = signing_input + "." + b64url(signature)
        self.issued.append(token)
        return token

    def verify(self, jwt: str, *, audience: str | None = None) -> dict[str, Any]:
        """The claims of a JWT this issuer signed, checked like a relying party would."""
        header, claims, signing_input, signature = _split(jwt)
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            raise TokenInvalid(f"unexpected header {header}")
        try:
            self._key.public_key().verify(signature, signing_input, padding.PKCS1v15(),
                                          hashes.SHA256())
        except InvalidSignature as exc:
            raise TokenInvalid("bad signature") from exc
        now = self.clock()
        if claims.get("iss") != self.url:
            raise TokenInvalid(f"issuer {claims.get('iss')!r} is not {self.url!r}")
        if not claims.get("nbf", 0) <= now < claims.get("exp", 0):
            raise TokenInvalid("token expired or not yet valid")
        if audience is not None and claims.get("aud") != audience:
            raise TokenInvalid(f"audience {claims.get('aud')!r} is not {audience!r}")
        return claims

    def authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.request_token}"
        return bool(header) and hmac.compare_digest(header.encode(), expected.encode())


def _split(jwt: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        head, body, sig = jwt.split(".")
        return (json.loads(b64url_decode(head)), json.loads(b64url_decode(body)),
                f"{head}.{body}".encode("ascii"), b64url_decode(sig))
    except ValueError as exc:
        raise TokenInvalid("not a JWT") from exc


def _make_handler(issuer: OidcIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, issuer.discovery())
            elif parts.path == "/.well-known/jwks":
                self._json(200, issuer.jwks())
            elif parts.path == "/token":
                self._token(parse_qs(parts.query))
            else:
                self._json(404, {"message": "not found"})

        def _token(self, query: dict[str, list[str]]) -> None:
            if not issuer.authorized(self.headers.get("Authorization")):
                self._json(401, {"message": "Bad credentials"})
                return
            # Without an audience GitHub uses the URL of the repository owner.
            owner = issuer.claims.get("repository_owner", "")
            audience = (query.get("audience") or [""])[0] or f"https://github.com/{owner}"
            self._json(200, {"count": 1, "value": issuer.issue(audience)})

        def _json(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the request line would carry nothing useful for tests."""

    return Handler
