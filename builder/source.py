"""Fetch the source of a build: one git ref, shallow, cached per repository (dulwich only).

Lambda has no git binary, so this is pure-Python dulwich. For an http(s) URL (or a local
repository asked for a ref) the one wanted ref is fetched at depth 1 into a bare cache
repository, `workdir/git/<key>`, which is kept between calls: the next fetch tells the
server which commits it already has, so only new objects travel. The commit's tree is then
written to `workdir/src/<key>`, replacing whatever an earlier ref left there.

The token is sent as HTTP Basic auth (dulwich's username/password), never put in a URL, a
config file, a log line or a message. dulwich exceptions are translated here, once, into
one-line `SourceError`s.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from builder.errors import SourceError
from builder.redact import REDACTOR, Redactor

logger = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")
_HTTP_STATUS = re.compile(r"unexpected http resp (\d{3})")
_CACHE_REF_PREFIX = b"refs/heads/fetched/"
_HTTP_TIMEOUT_S = 60
_FULL_HISTORY = 2**31 - 1  # the depth `git fetch --unshallow` asks for


@dataclass(frozen=True)
class Checkout:
    """The files of one commit, ready to build."""

    root: Path
    commit: str | None
    ref: str | None
    source: str
    fetched: bool
    committed_at: int | None = None  # unix seconds of the commit (its committer time)


@dataclass(frozen=True)
class _Remote:
    """Where to fetch from: `location` is what dulwich gets, `display` what people see."""

    location: str
    display: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.display.encode()).hexdigest()[:16]


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
                 username: str = "x-access-token") -> Checkout:
    """Make the files of `ref` of `source` (an http(s) git URL or a local path) available.

    `ref` is a branch, a tag, a full `refs/...` name or a full commit SHA; None means the
    remote HEAD (or, for a local repository, its working tree as it is).
    """
    if _is_http_url(source):
        return _fetch_remote(_remote_for_url(source, token, username), ref, Path(workdir))
    if "://" in source or (_SCP_LIKE.match(source) and not Path(source).exists()):
        raise SourceError(f"unsupported source {_display_url(source)!r}: use an https URL "
                          "or a local path")
    return _fetch_local(source, ref, Path(workdir))


# -- sources ------------------------------------------------------------------------------


def _is_http_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _display_url(url: str) -> str:
    """The URL without user info, query or fragment."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else url


def _remote_for_url(url: str, token: str | None, username: str) -> _Remote:
    """Credentials go as Basic auth: the token if given, else those written in the URL.

    Either is registered with the log redactor, in case anything below ever prints it.
    """
    parts = urlsplit(url)
    display = _display_url(url)
    if token:
        REDACTOR.add(token)
        return _Remote(display, display, username, token)
    if parts.username is not None:
        password = unquote(parts.password or "")
        REDACTOR.add(password)
        return _Remote(display, display, unquote(parts.username), password)
    return _Remote(display, display)


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


# -- fetch --------------------------------------------------------------------------------


def _fetch_remote(remote: _Remote, ref: str | None, workdir: Path) -> Checkout:
    if ref is not None and not ref.strip():
        raise SourceError("empty ref: give a branch, a tag or a commit SHA, or none for HEAD")
    cache, root = workdir / "git" / remote.key, workdir / "src" / remote.key
    checkout = _fetch_and_check_out(cache, root, remote, ref)
    if checkout is None:
        logger.info("the git cache of %s misses objects: starting it afresh", remote.display)
        shutil.rmtree(cache)
        checkout = _fetch_and_check_out(cache, root, remote, ref)
    if checkout is None:
        raise SourceError(f"the objects of {ref or 'HEAD'} from {remote.display} are "
                          "incomplete, even fetched afresh")
    return checkout


def _fetch_and_check_out(cache: Path, root: Path, remote: _Remote,
                         ref: str | None) -> Checkout | None:
    """The checkout, or None if the cache turned out to miss objects of the commit."""
    with _open_cache(cache) as repo:
        commit, fetched = _update_cache(repo, remote, ref)
        try:
            _write_checkout(repo, commit, root)
        except KeyError:
            return None
        committed_at = repo[commit].commit_time
    return Checkout(root=root, commit=commit.decode(), ref=ref, source=remote.display,
                    fetched=fetched, committed_at=committed_at)


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


def _update_cache(repo: Any, remote: _Remote, ref: str | None) -> tuple[bytes, bool]:
    """Bring the wanted commit into the cache; return (commit SHA, transferred anything)."""
    if ref is not None and _SHA.fullmatch(ref.lower()) and _commit_in(repo, ref.lower()):
        logger.info("%s %s: up to date", remote.display, ref)
        return ref.lower().encode(), False
    logger.info("fetching %s %s", remote.display, ref or "HEAD")
    started, packs_before = time.monotonic(), _pack_names(repo)
    wants = _Wants(ref, repo.object_store)
    with _translated_errors(remote, ref):
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
    from dulwich.client import get_transport_and_path
    from dulwich.config import ConfigDict

    config = ConfigDict()
    config.set((b"http",), b"timeout", str(_HTTP_TIMEOUT_S).encode())
    client, path = get_transport_and_path(remote.location, config=config,
                                          username=remote.username, password=remote.password)
    client.fetch(path, repo, determine_wants=wants, depth=depth,
                 ref_prefix=wants.ref_prefix())


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


def _commit_in(repo: Any, sha: str) -> bool:
    from dulwich.objects import Commit

    try:
        return isinstance(repo[sha.encode()], Commit)
    except KeyError:
        return False


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


# -- errors -------------------------------------------------------------------------------


@contextmanager
def _translated_errors(remote: _Remote, ref: str | None) -> Iterator[None]:
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
        raise _protocol_error(exc, remote, ref) from None
    except (OSError, KeyError, ValueError) as exc:
        raise SourceError(f"fetching {ref or 'HEAD'} from {remote.display} failed: "
                          f"{_safe_text(exc, remote)}") from None


def _ref_hint(ref: str | None) -> str | None:
    if ref and re.fullmatch(r"[0-9a-fA-F]{4,39}", ref):
        return "abbreviated SHAs are not resolved: give the full 40-character SHA"
    return None


def _auth_error(remote: _Remote) -> SourceError:
    if remote.password:
        return SourceError(f"authentication failed for {remote.display}: check the token")
    return SourceError(f"authentication failed for {remote.display}: the repository needs "
                       "a token and none was given")


def _protocol_error(exc: Exception, remote: _Remote, ref: str | None) -> SourceError:
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
                       f"{_safe_text(exc, remote)}")


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


def _safe_text(exc: BaseException, remote: _Remote) -> str:
    """`exc` as one short line, with any credential removed."""
    redactor = Redactor()
    redactor.add(remote.password)
    text = redactor(" ".join(str(exc).split()))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- checkout -----------------------------------------------------------------------------


def _write_checkout(repo: Any, commit: bytes, root: Path) -> None:
    """Make `root` hold exactly the tree of `commit`: built aside, then swapped in."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=root.name + ".new-", dir=root.parent))
    try:
        _write_tree(repo.object_store, repo[commit].tree, staging, "")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if root.exists() or root.is_symlink():
        old = root.with_name(root.name + ".old-" + staging.name.rsplit("-", 1)[-1])
        os.replace(root, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staging, root)


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
