"""Fetch the source of a build: one git ref, shallow, cached per repository (dulwich only).

Lambda has no git binary, so this is pure-Python dulwich. For an http(s) URL (or a local
repository asked for a ref) the one wanted ref is fetched at depth 1 into a bare cache
repository, `workdir/git/<key>`, one per repository (its URL without credentials), which is
kept between calls: the next fetch tells the server which commits it already has, so only
new objects travel. The commit's tree is then written to a fresh directory of its own,
`workdir/src/checkout-<random>`, which `remove_checkout` deletes once the build is done.

Access is proved by every request: the server's ref advertisement is asked for with this
request's credentials each time, also when the wanted commit is already in the cache, and
nothing is served from the cache if that fails. So a request without the token of a
repository never gets its files, whoever fetched them before.

Where the fetch may connect (`builder.hosts` decides):
- `allowed_hosts` given (a service): the source must be `https://` on one of them (plain
  `http://` for a loopback host they name); every request, each redirect's target
  included, must be too.
- `allowed_hosts=None`: the builder's own settings decide: as a service (inside Lambda or
  the local invoker) its allowed hosts, as above; elsewhere (a laptop) any http(s) host,
  local paths and loopback servers included.
Either way every connection goes only to addresses checked just before it: never the
instance or container metadata endpoints, link-local, private, shared or multicast
addresses; loopback only without a host list or for a host it names. Git requirements are
fetched through `fetch_source` too, so the same rules cover them.

The token is sent as HTTP Basic auth (dulwich's username/password), never put in a URL, a
config file, a log line or a message. dulwich exceptions are translated here, once, into
one-line `SourceError`s that show no credential (raw or base64 basic-auth) and no absolute
work-dir path.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from builder.errors import SourceError
from builder.hosts import (
    ALLOW_HOST_FIX,
    Resolver,
    check_address,
    check_redirect,
    checked_addresses,
    repository_refusal,
)
from builder.redact import REDACTOR, Redactor

logger = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")
_HTTP_STATUS = re.compile(r"unexpected http resp (\d{3})")
_CACHE_REF_PREFIX = b"refs/heads/fetched/"
_HTTP_TIMEOUT_S = 60
_FULL_HISTORY = 2**31 - 1  # the depth `git fetch --unshallow` asks for
_STALE_CHECKOUT_S = 6 * 3600  # checkouts left this long by a build that ended are removed


@dataclass(frozen=True)
class Checkout:
    """The files of one commit, ready to build. `owned`: `root` is a directory this fetch
    wrote for this request alone, for `remove_checkout` to delete; otherwise it is a local
    directory used in place, never deleted."""

    root: Path
    commit: str | None
    ref: str | None
    source: str
    fetched: bool
    owned: bool = False
    committed_at: int | None = None  # unix seconds of the commit (its committer time)


def remove_checkout(checkout: Checkout) -> None:
    """Delete what `fetch_source` wrote for `checkout` (after packaging); a local directory
    used in place is left alone."""
    if checkout.owned:
        shutil.rmtree(checkout.root, ignore_errors=True)


@dataclass(frozen=True)
class _Guard:
    """Where a fetch may connect: `allowed_hosts` None means no host list (a laptop)."""

    allowed_hosts: tuple[str, ...] | None
    resolve: Resolver = socket.getaddrinfo


@dataclass(frozen=True)
class _Remote:
    """Where to fetch from: `location` is what dulwich gets, `display` what people see;
    `guard` is None for a local repository."""

    location: str
    display: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    guard: _Guard | None = None

    @property
    def key(self) -> str:
        """The cache's name: one per repository, whatever the credentials."""
        parts = urlsplit(self.display)
        identity = (f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
                    if parts.scheme else self.display)
        return hashlib.sha256(identity.rstrip("/").encode()).hexdigest()[:16]


class _RefNotFound(Exception):
    pass


def source_host(source: str) -> str | None:
    """"host[:port]" of an http(s) URL (never credentials), else None."""
    if not _is_http_url(source):
        return None
    parts = urlsplit(source)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host or None


def fetch_source(source: str, ref: str | None, workdir: Path, *, token: str | None = None,
                 username: str = "x-access-token",
                 allowed_hosts: Sequence[str] | None = None,
                 resolve: Resolver | None = None) -> Checkout:
    """Make the files of `ref` of `source` (an http(s) git URL or a local path) available.

    `ref` is a branch, a tag, a full `refs/...` name or a full commit SHA; None means the
    remote HEAD (or, for a local repository, its working tree as it is). `allowed_hosts`
    and `resolve` (`socket.getaddrinfo`'s signature) decide where it may connect (module
    docstring).
    """
    hosts = _allowed_hosts(allowed_hosts)
    if hosts is not None:
        reason = repository_refusal(source, allowed_hosts=hosts, service=True)
        if reason:
            raise SourceError(reason, hint=ALLOW_HOST_FIX)
    if _is_http_url(source):
        guard = _Guard(hosts, resolve or socket.getaddrinfo)
        return _fetch_remote(_remote_for_url(source, token, username, guard), ref,
                             Path(workdir))
    if "://" in source or (_SCP_LIKE.match(source) and not Path(source).exists()):
        raise SourceError(f"unsupported source {_display_url(source)!r}: use an https URL "
                          "or a local path")
    return _fetch_local(source, ref, Path(workdir))


def _allowed_hosts(given: Sequence[str] | None) -> tuple[str, ...] | None:
    """The host list to apply: the one given, else the builder's own when it runs as a
    service, else none."""
    if given is not None:
        return tuple(given)
    from builder.settings import BuilderSettings

    settings = BuilderSettings.from_environ()
    return tuple(settings.allowed_hosts) if settings.service else None


# -- sources ------------------------------------------------------------------------------


def _is_http_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _display_url(url: str) -> str:
    """The URL without user info, query or fragment."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else url


def _remote_for_url(url: str, token: str | None, username: str,
                    guard: _Guard | None = None) -> _Remote:
    """Credentials go as Basic auth: the token if given, else those written in the URL.

    Either is registered with the log redactor, with its basic-auth encodings, in case
    anything below ever prints it.
    """
    parts = urlsplit(url)
    display = _display_url(url)
    if token:
        remote = _Remote(display, display, username, token, guard)
    elif parts.username is not None:
        remote = _Remote(display, display, unquote(parts.username),
                         unquote(parts.password or ""), guard)
    else:
        return _Remote(display, display, guard=guard)
    for form in _secret_forms(remote):
        REDACTOR.add(form)
    return remote


def _secret_forms(remote: _Remote) -> list[str]:
    """The password as it may travel: raw, URL-encoded, base64 of `username:password` (the
    Authorization header's value, which a hostile server can echo back)."""
    if not remote.password:
        return []
    pair = base64.b64encode(f"{remote.username or ''}:{remote.password}".encode()).decode()
    return [remote.password, quote(remote.password, safe=""), pair, pair.rstrip("=")]


def _fetch_local(source: str, ref: str | None, workdir: Path) -> Checkout:
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"invalid local path {source!r}: it does not exist")
    if not path.is_dir():
        raise SourceError(f"invalid local path {source!r}: it is not a directory")
    path = path.resolve()
    head, bare = _local_repo_state(path)
    if bare is None:
        if ref is not None:
            raise SourceError(f"ref {ref!r} given but {path} is not a git repository")
        return Checkout(root=path, commit=None, ref=None, source=str(path), fetched=False)
    if ref is None and not bare:
        return Checkout(root=path, commit=head, ref=None, source=str(path), fetched=False)
    return _fetch_remote(_Remote(str(path), str(path)), ref, workdir)


def _local_repo_state(path: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit or None, is bare) of the repository at `path`; (None, None) if none."""
    from dulwich.errors import NotGitRepository
    from dulwich.repo import Repo

    try:
        repo = Repo(str(path))
    except NotGitRepository:
        return None, None
    with repo:
        try:
            head = repo.refs[b"HEAD"].decode()
        except KeyError:
            head = None
        return head, repo.bare


def has_uncommitted_changes(path: Path) -> bool:
    """True when the working tree at `path` differs from its HEAD: staged, modified or
    untracked files that are not ignored (what a build of the tree as it is would see)."""
    from dulwich import porcelain

    try:
        status = porcelain.status(str(path))
    except Exception:  # noqa: BLE001 - not a repository, or unreadable: nothing to say
        return False
    return bool(any(status.staged.values()) or status.unstaged or status.untracked)


# -- fetch --------------------------------------------------------------------------------


def _fetch_remote(remote: _Remote, ref: str | None, workdir: Path) -> Checkout:
    if ref is not None and not ref.strip():
        raise SourceError("empty ref: give a branch, a tag or a commit SHA, or none for HEAD")
    cache, checkouts = workdir / "git" / remote.key, workdir / "src"
    with _disk_errors(remote, workdir):
        _prune_checkouts(checkouts)
        checkout = _fetch_and_check_out(cache, checkouts, remote, ref, workdir)
        if checkout is None:
            logger.info("the git cache of %s misses objects: starting it afresh",
                        remote.display)
            shutil.rmtree(cache)
            checkout = _fetch_and_check_out(cache, checkouts, remote, ref, workdir)
    if checkout is None:
        raise SourceError(f"the objects of {ref or 'HEAD'} from {remote.display} are "
                          "incomplete, even fetched afresh")
    return checkout


def _fetch_and_check_out(cache: Path, checkouts: Path, remote: _Remote, ref: str | None,
                         workdir: Path) -> Checkout | None:
    """A fresh checkout, or None if the cache turned out to miss objects of the commit."""
    with _open_cache(cache) as repo:
        commit, fetched = _update_cache(repo, remote, ref, workdir)
        checkouts.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="checkout-", dir=checkouts))
        try:
            _write_tree(repo.object_store, repo[commit].tree, root, "")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            return None
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        committed_at = repo[commit].commit_time
    return Checkout(root=root, commit=commit.decode(), ref=ref, source=remote.display,
                    fetched=fetched, owned=True, committed_at=committed_at)


def _prune_checkouts(checkouts: Path, now: float | None = None) -> None:
    """Remove checkouts older than `_STALE_CHECKOUT_S`, left by builds that never called
    `remove_checkout` (a crash, a timeout)."""
    if not checkouts.is_dir():
        return
    limit = (time.time() if now is None else now) - _STALE_CHECKOUT_S
    for entry in checkouts.iterdir():
        try:
            stale = entry.lstat().st_mtime < limit
        except OSError:
            continue
        if stale and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif stale:
            entry.unlink(missing_ok=True)


@contextmanager
def _open_cache(path: Path) -> Iterator[Any]:
    """The bare cache repository at `path`, created (or recreated, if unreadable) as needed."""
    from dulwich.errors import NotGitRepository
    from dulwich.repo import Repo

    repo = None
    if path.exists():
        try:
            repo = Repo(str(path))
        except (NotGitRepository, OSError, ValueError, KeyError) as exc:
            logger.info("discarding unreadable git cache %s (%s)", path.name,
                        type(exc).__name__)
            shutil.rmtree(path)
    if repo is None:
        path.mkdir(parents=True)
        repo = Repo.init_bare(str(path))
    with repo:
        yield repo


def _update_cache(repo: Any, remote: _Remote, ref: str | None,
                  workdir: Path | None = None) -> tuple[bytes, bool]:
    """Bring the wanted commit into the cache; return (commit SHA, transferred anything).

    Always asks the server for its refs with this request's credentials, also when the
    commit is already cached: that answer is the request's proof of access.
    """
    logger.info("fetching %s %s", remote.display, ref or "HEAD")
    started, packs_before = time.monotonic(), _pack_names(repo)
    wants = _Wants(ref, repo.object_store)
    with _translated_errors(remote, ref, workdir):
        _fetch_with_fallback(repo, remote, wants)
        commit = _peel_to_commit(repo, wants.target, remote, ref)
    repo.refs[_CACHE_REF_PREFIX + (wants.remote_name or b"sha/" + commit)] = commit
    if wants.sent:
        count = _count_new_objects(repo, packs_before)
        logger.info("fetched %d objects in %.1f s", count, time.monotonic() - started)
    else:
        logger.info("up to date")
    return commit, bool(wants.sent)


def _fetch_with_fallback(repo: Any, remote: _Remote, wants: _Wants) -> None:
    """Fetch `wants` at depth 1; if the server refuses a commit that is no ref's tip (git
    servers without uploadpack.allowReachableSHA1InWant, dulwich's), fetch the branches and
    tags in full and look for the commit there."""
    from dulwich.errors import GitProtocolError

    try:
        _client_fetch(repo, remote, wants, depth=1)
    except (GitProtocolError, KeyError):
        if not wants.untipped_sha:
            raise
        logger.info("the server will not send commit %s alone: fetching all branches and "
                    "tags", wants.target.decode())
        wants.everything = True
        _client_fetch(repo, remote, wants, depth=_FULL_HISTORY)
    if wants.target not in repo.object_store:
        raise _RefNotFound()


def _client_fetch(repo: Any, remote: _Remote, wants: _Wants, depth: int) -> None:
    client, path = _client_for(remote)
    client.fetch(path, repo, determine_wants=wants, depth=depth,
                 ref_prefix=wants.ref_prefix())


def _client_for(remote: _Remote) -> tuple[Any, str]:
    """dulwich's client for `remote`, made directly: never guessed from the location
    (dulwich's guess takes `http://[v6]/...` with credentials for an SSH location)."""
    from dulwich.client import LocalGitClient, Urllib3HttpGitClient
    from dulwich.config import ConfigDict

    if remote.guard is None:
        return LocalGitClient(), remote.location
    config = ConfigDict()
    config.set((b"http",), b"timeout", str(_HTTP_TIMEOUT_S).encode())
    parts = urlsplit(remote.location)
    base_url = f"{parts.scheme}://{parts.netloc}/"
    client = Urllib3HttpGitClient(
        base_url, config=config, username=remote.username, password=remote.password,
        timeout=_HTTP_TIMEOUT_S, pool_manager=_pool_manager(remote.guard, config, base_url))
    return client, parts.path


class _Wants:
    """dulwich's `determine_wants`: resolves the ref against the advertised refs.

    Afterwards `target` is the wanted object (a commit or an annotated tag), `remote_name`
    the ref it came from (None for a SHA that is no tip) and `sent` what was asked for.
    """

    def __init__(self, ref: str | None, object_store: Any) -> None:
        self.ref = ref
        self.object_store = object_store
        self.target = ref.lower().encode() if ref and _SHA.fullmatch(ref.lower()) else b""
        self.remote_name: bytes | None = None
        self.untipped_sha = False
        self.everything = False
        self.sent: list[bytes] = []

    def ref_prefix(self) -> list[bytes] | None:
        if self.everything or (self.ref and _SHA.fullmatch(self.ref.lower())):
            return None
        if self.ref is None or self.ref == "HEAD":
            return [b"HEAD"]
        if self.ref.startswith("refs/"):
            return [self.ref.encode()]
        return [b"refs/heads/" + self.ref.encode(), b"refs/tags/" + self.ref.encode()]

    def __call__(self, refs: Mapping[bytes, bytes], depth: int | None = None) -> list[bytes]:
        if self.everything:  # every tip, even those we have: their history is wanted
            self.sent = sorted({sha for name, sha in refs.items()
                                if name.startswith((b"refs/heads/", b"refs/tags/"))})
            return self.sent
        self.remote_name, self.target = _resolve(self.ref, refs)
        self.untipped_sha = self.remote_name is None
        self.sent = [] if self.target in self.object_store else [self.target]
        return self.sent


def _resolve(ref: str | None, refs: Mapping[bytes, bytes]) -> tuple[bytes | None, bytes]:
    """(ref name, SHA) that `ref` names among `refs`; (None, SHA) for a SHA that is no tip."""
    if ref is not None and _SHA.fullmatch(ref.lower()):
        sha = ref.lower().encode()
        tips = sorted(name for name, value in refs.items() if value == sha)
        return (tips[0] if tips else None), sha
    if ref is None or ref == "HEAD":
        candidates = [b"HEAD"]
    elif ref.startswith("refs/"):
        candidates = [ref.encode()]
    else:
        candidates = [b"refs/heads/" + ref.encode(), b"refs/tags/" + ref.encode()]
    for name in candidates:
        if refs.get(name):
            return name, refs[name]
    raise _RefNotFound()


def _peel_to_commit(repo: Any, sha: bytes, remote: _Remote, ref: str | None) -> bytes:
    from dulwich.objects import Commit, Tag

    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    if not isinstance(obj, Commit):
        raise SourceError(f"ref {ref!r} in {remote.display} does not point to a commit")
    return obj.id


def _pack_names(repo: Any) -> set[bytes]:
    return {pack.name() for pack in repo.object_store.packs}


def _count_new_objects(repo: Any, before: set[bytes]) -> int:
    return sum(len(pack) for pack in repo.object_store.packs if pack.name() not in before)


# -- connections --------------------------------------------------------------------------


def _pool_manager(guard: _Guard, config: Any, base_url: str) -> Any:
    """dulwich's urllib3 pool manager (proxy settings, TLS, user agent, timeout from
    `config`), made of classes that check every request URL (each redirect's target too)
    and connect only to addresses `builder.hosts` checked just before."""
    from dulwich.client import default_urllib3_manager

    managers = _guarded_classes(guard)
    return default_urllib3_manager(config, pool_manager_cls=managers["manager"],
                                   proxy_manager_cls=managers["proxy_manager"],
                                   base_url=base_url, timeout=_HTTP_TIMEOUT_S)


def _guarded_classes(guard: _Guard) -> dict[str, type]:
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(guard, self, super()._new_conn)

    class SecureConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(guard, self, super()._new_conn)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    pools = {"http": Pool, "https": SecurePool}

    class Manager(urllib3.PoolManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool_classes_by_scheme = pools

        def urlopen(self, method: str, url: str, redirect: bool = True,
                    **kw: Any) -> Any:
            _check_request(guard, url, behind_proxy=self.proxy is not None)
            return super().urlopen(method, url, redirect=redirect, **kw)

    class ProxyManager(urllib3.ProxyManager, Manager):
        pass

    return {"manager": Manager, "proxy_manager": ProxyManager}


def _check_request(guard: _Guard, url: str, *, behind_proxy: bool) -> None:
    """Before each request (urllib3 calls this again for each redirect it follows)."""
    check_redirect(url, allowed_hosts=guard.allowed_hosts)
    if not behind_proxy:
        return
    # The proxy connects and resolves: check what the name resolves to here, if it does.
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        records = list(guard.resolve(host, port, 0, socket.SOCK_STREAM))
    except (OSError, UnicodeError):
        return
    check_address(host, port, allowed_hosts=guard.allowed_hosts,
                  resolve=lambda *args: records)


def _connect(guard: _Guard, conn: Any, original: Callable[[], socket.socket]
             ) -> socket.socket:
    """urllib3's `_new_conn`, to the addresses checked and no others (a second lookup
    could answer differently). A connection to the configured proxy is left as it is."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    from urllib3.util.connection import create_connection

    if getattr(conn, "proxy", None) is not None:
        return original()
    host = getattr(conn, "_dns_host", None) or conn.host
    records = checked_addresses(host, conn.port, allowed_hosts=guard.allowed_hosts,
                                resolve=guard.resolve)
    error: Exception | None = None
    for record in records:
        try:
            return create_connection((str(record[4][0]), conn.port), conn.timeout,
                                     source_address=conn.source_address,
                                     socket_options=conn.socket_options)
        except TimeoutError as exc:
            error = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out: {exc}")
        except OSError as exc:
            error = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
    raise error  # type: ignore[misc]


# -- errors -------------------------------------------------------------------------------


@contextmanager
def _translated_errors(remote: _Remote, ref: str | None,
                       workdir: Path | None = None) -> Iterator[None]:
    """Turn dulwich's and the network's exceptions into one-line `SourceError`s."""
    from dulwich.client import HTTPProxyUnauthorized, HTTPUnauthorized
    from dulwich.errors import GitProtocolError, HangupException, NotGitRepository

    try:
        yield
    except _RefNotFound:
        raise SourceError(f"ref {ref!r} not found in {remote.display}",
                          hint=_ref_hint(ref)) from None
    except HTTPUnauthorized:
        raise _auth_error(remote) from None
    except HTTPProxyUnauthorized:
        raise SourceError(f"the HTTP proxy refused to fetch {remote.display}: check the "
                          "proxy credentials") from None
    except NotGitRepository:
        raise SourceError(f"repository not found: {remote.display} (is the URL right, and "
                          "may the token read it?)") from None
    except HangupException:
        raise SourceError(f"{remote.display} closed the connection while fetching "
                          f"{ref or 'HEAD'}") from None
    except GitProtocolError as exc:
        raise _protocol_error(exc, remote, ref, workdir) from None
    except (OSError, KeyError, ValueError) as exc:
        raise SourceError(f"fetching {ref or 'HEAD'} from {remote.display} failed: "
                          f"{_safe_text(exc, remote, workdir)}") from None


@contextmanager
def _disk_errors(remote: _Remote, workdir: Path) -> Iterator[None]:
    """The work dir's own failures (a full disk) as a `SourceError` without its path."""
    try:
        yield
    except OSError as exc:
        raise SourceError(f"writing the checkout of {remote.display} in the work dir "
                          f"failed: {_safe_text(exc, remote, workdir)}") from None


def _ref_hint(ref: str | None) -> str | None:
    if ref and re.fullmatch(r"[0-9a-fA-F]{4,39}", ref):
        return "abbreviated SHAs are not resolved: give the full 40-character SHA"
    return None


def _auth_error(remote: _Remote) -> SourceError:
    if remote.password:
        return SourceError(f"authentication failed for {remote.display}: check the token")
    return SourceError(f"authentication failed for {remote.display}: the repository needs "
                       "a token and none was given")


def _protocol_error(exc: Exception, remote: _Remote, ref: str | None,
                    workdir: Path | None = None) -> SourceError:
    status = _HTTP_STATUS.search(str(exc))
    if status and status.group(1) in ("401", "403"):
        return _auth_error(remote)
    if status and status.group(1) == "404":
        return SourceError(f"repository not found: {remote.display}")
    unreachable = _connection_problem(exc)
    if unreachable:
        host = source_host(remote.location) or remote.display
        return SourceError(f"cannot reach {host}: {unreachable}")
    return SourceError(f"fetching {ref or 'HEAD'} from {remote.display} failed: "
                       f"{_safe_text(exc, remote, workdir)}")


def _connection_problem(exc: BaseException) -> str | None:
    """What kept us from talking to the server, from urllib3's exception chain."""
    names = set()
    current: BaseException | None = exc
    while current is not None and len(names) < 10:
        names.add(type(current).__name__)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            names.add(type(reason).__name__)
        current = current.__cause__ or current.__context__
    text = str(exc).lower()
    if "NameResolutionError" in names or "name or service not known" in text:
        return "the host name does not resolve"
    if "refused" in text or "ConnectionRefusedError" in names:
        return "connection refused"
    if {"ConnectTimeoutError", "ReadTimeoutError", "TimeoutError"} & names:
        return "timed out"
    if "SSLError" in names:
        return "TLS handshake failed"
    if "NewConnectionError" in names or "MaxRetryError" in names:
        return "cannot connect"
    return None


def _safe_text(exc: BaseException, remote: _Remote, workdir: Path | None = None) -> str:
    """`exc` as one short line, without any credential (raw or encoded) or work-dir path."""
    text = " ".join(str(exc).split())
    if workdir is not None:
        for root in sorted({str(workdir), str(Path(workdir).resolve())}, key=len,
                           reverse=True):
            text = text.replace(root.rstrip("/") + "/", "<work dir>/").replace(root,
                                                                             "<work dir>")
    redactor = Redactor()
    for form in _secret_forms(remote):
        redactor.add(form)
    text = redactor(text)[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- checkout -----------------------------------------------------------------------------


def _write_tree(object_store: Any, tree_id: bytes, directory: Path, prefix: str) -> None:
    for entry in object_store[tree_id].iteritems():
        name = _safe_name(entry.path, prefix)
        target = directory / name
        if stat.S_ISDIR(entry.mode):
            target.mkdir()
            _write_tree(object_store, entry.sha, target, f"{prefix}{name}/")
        elif stat.S_ISLNK(entry.mode):
            os.symlink(os.fsdecode(object_store[entry.sha].as_raw_string()), target)
        elif entry.mode == 0o160000:
            logger.warning("submodule %s%s is not fetched: left empty", prefix, name)
            target.mkdir()
        else:
            with open(target, "wb") as out:
                for chunk in object_store[entry.sha].as_raw_chunks():
                    out.write(chunk)
            os.chmod(target, 0o755 if entry.mode & 0o111 else 0o644)


def _safe_name(raw: bytes, prefix: str) -> str:
    """A tree entry name that stays in its directory (a crafted tree could hold '..')."""
    name = os.fsdecode(raw)
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name \
            or name.lower() == ".git":
        raise SourceError(f"refusing unsafe path {prefix}{name!r} in the commit's tree")
    return name
