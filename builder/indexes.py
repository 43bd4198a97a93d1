"""Private package indexes: where the installer looks, and the credentials it may use.

The build file names indexes (`index_url`, `extra_index_urls`), never credentials: a URL
with a user or password in it is refused. Credentials come in the request, as a secret
mapping host -> "user:password" (`BuildRequest.index_credentials`). They reach the
installer only through a netrc file in a private temporary folder (mode 0700, the file
0600), named by `NETRC` in the installer's environment, and removed when the install ends:
never on a command line, in an index URL, a log line, a result or a cache key.

`installer_environment` gives the variables both installers read (`UV_INDEX_URL`,
, `UV_EXTRA_INDEX_URL`, `PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `NETRC`);
`cache_identity` what the dependency cache key holds of the indexes: the URLs without
any credentials, so a rotated token reuses the installed set.

AWS CodeArtifact (`codeartifact: {domain, repository}` in the build file): the builder asks
for the repository's PyPI endpoint and an authorization token with its own role
(`codeartifact_index`), and the pair becomes the index and its credentials (user `aws`),
the token redacted like any secret. Bootstrap grants the permission when asked
(`--codeartifact DOMAIN/REPOSITORY`).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from builder.errors import Lambda3Error, RequestError
from builder.redact import REDACTOR

_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_NETRC_UNSAFE = re.compile(r"[\s\"'#]")
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]*@")
_ENVIRONMENT = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX",
                "UV_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS")
MAX_CREDENTIALS = 20


@dataclass(frozen=True)
class Indexes:
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    credentials: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)

    @property
    def urls(self) -> tuple[str, ...]:
        return ((self.index_url,) if self.index_url else ()) + self.extra_index_urls


def check_index_url(url: str, key: str) -> str | None:
    """Why `url` cannot be an index in the build file, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{key}: {REDACTOR(url)!r} is not an http(s) URL"
    if parts.username or parts.password:
        return (f"{key}: the URL holds credentials; the build file is no place for them: "
                "pass them in the request (index_credentials) and write the URL without")
    return None


def parse_credentials(raw: object) -> tuple[tuple[str, str, str], ...]:
    """A request's `index_credentials` (host -> "user:password") as (host, user, password);
    a RequestError names a bad entry's host, never its value."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or len(raw) > MAX_CREDENTIALS:
        raise RequestError(f"'index_credentials' must be an object of at most "
                           f"{MAX_CREDENTIALS} host -> \"user:password\" entries")
    found = []
    for host, pair in raw.items():
        if not isinstance(host, str) or not _HOST.fullmatch(host) or not isinstance(pair, str):
            raise RequestError("'index_credentials': each key is a host (host or host:port) "
                               "and each value a \"user:password\" string")
        user, sep, password = pair.partition(":")
        if not sep or not user or not password or _NETRC_UNSAFE.search(pair):
            raise RequestError(f"'index_credentials' for {host}: expected \"user:password\" "
                               "without spaces, quotes or #")
        found.append((host.lower(), user, password))
    return tuple(sorted(found))


def register(credentials: Mapping[str, str] | tuple[tuple[str, str], ...]) -> None:
    """Redact every password (alone, encoded, in basic auth) and user:password pair."""
    pairs = credentials.items() if isinstance(credentials, Mapping) else credentials
    for _host, pair in pairs:
        if not isinstance(pair, str):
            continue
        user, _, password = pair.partition(":")
        REDACTOR.add(password, username=user)
        REDACTOR.add(pair)


@dataclass(frozen=True)
class CodeArtifact:
    domain: str
    repository: str
    domain_owner: str | None = None  # the account owning the domain; default the builder's


class CodeArtifactError(Lambda3Error):
    step = "install"


CODEARTIFACT_TOKEN_SECONDS = 900  # a build's install; the shortest CodeArtifact allows


def codeartifact_index(repository: CodeArtifact, client) -> tuple[str, tuple[str, str, str]]:
    """(index URL, (host, "aws", token)) of a CodeArtifact repository: `client` is a
    boto3 `codeartifact` client of the builder's own role."""
    owner = {"domainOwner": repository.domain_owner} if repository.domain_owner else {}
    try:
        endpoint = client.get_repository_endpoint(
            domain=repository.domain, repository=repository.repository, format="pypi",
            **owner)["repositoryEndpoint"]
        token = client.get_authorization_token(
            domain=repository.domain, durationSeconds=CODEARTIFACT_TOKEN_SECONDS,
            **owner)["authorizationToken"]
    except Exception as exc:  # botocore's ClientError and connection errors alike
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise CodeArtifactError(
            f"CodeArtifact {repository.domain}/{repository.repository}: {code}",
            hint="bootstrap the builder with --codeartifact "
                 f"{repository.domain}/{repository.repository}, or check the names") from None
    REDACTOR.add(token, username="aws")
    url = endpoint.rstrip("/") + "/simple/"
    return url, (urlsplit(url).netloc.lower(), "aws", token)


def with_credentials(indexes: Indexes, credentials: tuple[tuple[str, str, str], ...]) -> Indexes:
    return Indexes(indexes.index_url, indexes.extra_index_urls, credentials)


@contextmanager
def installer_environment(indexes: Indexes | None) -> Iterator[dict[str, str]]:
    """The installer's index variables for the time of an install (module docstring)."""
    if indexes is None or (not indexes.urls and not indexes.credentials):
        yield {}
        return
    env: dict[str, str] = {}
    if indexes.index_url:
        env.update(UV_INDEX_URL=indexes.index_url, PIP_INDEX_URL=indexes.index_url)
    if indexes.extra_index_urls:
        env.update(UV_EXTRA_INDEX_URL=" ".join(indexes.extra_index_urls),
                   PIP_EXTRA_INDEX_URL=" ".join(indexes.extra_index_urls))
    if not indexes.credentials:
        yield env
        return
    folder = Path(tempfile.mkdtemp(prefix="lambda3-netrc-"))  # created 0700
    try:
        netrc = folder / "netrc"
        descriptor = os.open(netrc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            for host, user, password in indexes.credentials:
                machine = urlsplit(f"//{host}").hostname
                handle.write(f"machine {machine} login {user} password {password}\n")
        yield {**env, "NETRC": str(netrc)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cache_identity(indexes: Indexes | None, environ: Mapping[str, str] | None = None) -> dict:
    """What of the indexes decides the installed set: the URLs (the build file's and the
    environment's index settings), with every credential taken out."""
    environ = os.environ if environ is None else environ
    return {
        "build_file": [strip_credentials(u) for u in indexes.urls] if indexes else [],
        "environment": {name: strip_credentials(environ[name])
                        for name in _ENVIRONMENT if environ.get(name)},
    }


def strip_credentials(text: str) -> str:
    """`text` with the user and password of every URL in it removed."""
    return _URL_CREDENTIALS.sub(r"\1", text)
