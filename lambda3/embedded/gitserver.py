"""A real git smart-HTTP server on 127.0.0.1, and a way to make commits without git.

`GitServer` serves local repositories with dulwich's WSGI git application in a thread,
optionally behind HTTP Basic auth, read-only (upload-pack only). Tests and the demo fetch
from it exactly as the builder fetches from GitHub. `commit_directory` snapshots a
directory as a commit (pure dulwich), so fixtures and the demo need no git binary.

    with GitServer(password="secret") as server:
        url = server.add_repo("owner/app", repo_dir)
"""
from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hmac
import logging
import os
import stat
import sys
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from lambda3.embedded.serving import serve_in_thread, stop_serving

logger = logging.getLogger(__name__)

SKIP_DIRS = frozenset({".git", "__pycache__"})
_REALM = 'Basic realm="lambda3-git", charset="UTF-8"'


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _served_repo(path: Path) -> Any:
    """A dulwich `Repo` whose upload-pack, like git's, never resends what the client has.

    dulwich's server ignores the client's "have" lines in a shallow fetch and sends the
    whole tree again; git's (GitHub's) leaves out the objects of the commits the client
    has. This does the same, so incremental shallow fetches can be observed in tests.
    """
    return _served_repo_class()(str(path))


@functools.cache
def _served_repo_class() -> type:
    from dulwich.repo import Repo

    class ServedRepo(Repo):
        def find_missing_objects(self, determine_wants: Any, graph_walker: Any,
                                 progress: Any = None, **kwargs: Any) -> Any:
            common: list[bytes] = []
            ack = graph_walker.ack

            def recording_ack(sha: bytes) -> Any:
                common.append(sha)
                return ack(sha)

            graph_walker.ack = recording_ack
            finder = super().find_missing_objects(determine_wants, graph_walker, progress,
                                                  **kwargs)
            if finder is not None and common:
                _skip_objects_of(self.object_store, common, finder)
            return finder

    return ServedRepo


def _skip_objects_of(object_store: Any, commits: list[bytes], finder: Any) -> None:
    from dulwich.objects import Commit

    have = set()
    for sha in commits:
        obj = object_store[sha]
        if isinstance(obj, Commit):
            have.add(sha)
            have.update(object_store.get_reachability_provider().get_tree_objects([obj.tree]))
    finder.sha_done.update(have)
    finder.remote_has.update(have)


class _Backend:
    """Maps "/owner/repo.git" to a repository path; opens a fresh `Repo` per request."""

    def __init__(self) -> None:
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()

    def add(self, prefix: str, path: Path) -> None:
        with self._lock:
            self._paths[prefix] = path

    def open_repository(self, path: str | bytes) -> Any:
        from dulwich.errors import NotGitRepository

        key = path.decode() if isinstance(path, bytes) else path
        with self._lock:
            repo_path = self._paths.get(key)
        if repo_path is None:
            raise NotGitRepository(f"no repository at {key}")
        return _served_repo(repo_path)


class GitServer:
    """A dulwich smart-HTTP git server in a thread (a context manager).

    If `password` is set every request needs HTTP Basic auth with that password (and with
    `username` too when it is set); others get 401 with a WWW-Authenticate header.
    `requests` logs (method, path with query string, status) of every request.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 username: str | None = None, password: str | None = None) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.requests: list[tuple[str, str, int]] = []
        self._backend = _Backend()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"GitServer(host={self.host!r}, port={self.port!r}, auth={bool(self._password)})"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> GitServer:
        if self._server is not None:
            return self
        from dulwich.web import WSGIRequestHandlerLogger, make_wsgi_chain

        git_app = make_wsgi_chain(self._backend, handlers={b"git-receive-pack": None})
        self._server = make_server(self.host, self.port, self._wrap(git_app),
                                   server_class=_ThreadingWSGIServer,
                                   handler_class=WSGIRequestHandlerLogger)
        self.port = self._server.server_port
        self._thread = serve_in_thread(self._server, f"git-server-{self.port}")
        logger.info("git server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        stop_serving(self._server, self._thread)
        self._server = self._thread = None

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- repositories ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("GitServer is not started")
        return f"http://{self.host}:{self.port}"

    def add_repo(self, name: str, path: Path) -> str:
        """Serve the repository at `path` as /<name>.git (also after start); return its URL."""
        name = name.strip("/").removesuffix(".git")
        if not name or ".." in name.split("/"):
            raise ValueError(f"invalid repository name: {name!r}")
        self._backend.add(f"/{name}.git", Path(path))
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        return f"{self.base_url}/{name.strip('/').removesuffix('.git')}.git"

    # -- WSGI ------------------------------------------------------------------------------

    def _wrap(self, app: Any) -> Any:
        def logged_app(environ: dict[str, Any], start_response: Any) -> Any:
            path = environ.get("PATH_INFO", "")
            if environ.get("QUERY_STRING"):
                path += "?" + environ["QUERY_STRING"]
            method, logged = environ.get("REQUEST_METHOD", ""), []

            def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                logged.append(len(self.requests))
                self.requests.append((method, path, int(status.split()[0])))
                return start_response(status, headers, exc_info)

            if not self._authorized(environ.get("HTTP_AUTHORIZATION", "")):
                recording_start_response("401 Unauthorized", [
                    ("WWW-Authenticate", _REALM), ("Content-Type", "text/plain"),
                    ("Content-Length", "13")])
                return [b"unauthorized\n"]
            return self._logged_body(app(environ, recording_start_response), logged,
                                     (method, path, 500))

        return logged_app

    def _logged_body(self, body: Any, logged: list[int], failed: tuple[str, str, int]) -> Any:
        """Pass the response on; a failure while streaming it is logged as a 500."""
        try:
            yield from body
        except Exception:
            if logged:
                self.requests[logged[-1]] = failed
            else:
                self.requests.append(failed)
            raise

    def _authorized(self, header: str) -> bool:
        if self._password is None:
            return True
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        user_ok = self.username is None or hmac.compare_digest(user, self.username)
        return user_ok and hmac.compare_digest(password.encode(), self._password.encode())


def serve(repos: dict[str, Path], *, host: str = "127.0.0.1", port: int = 0,
          username: str | None = None, password: str | None = None) -> GitServer:
    """Start a `GitServer` serving `repos` ({"owner/repo": path}); the caller stops it."""
    server = GitServer(host=host, port=port, username=username, password=password).start()
    for name, path in repos.items():
        server.add_repo(name, path)
    return server


# -- commits without git --------------------------------------------------------------------


def commit_directory(src: Path, repo: Path, message: str, *, branch: str = "main",
                     tag: str | None = None, author: str = "lambda3 <lambda3@example.invalid>",
                     timestamp: int | None = None) -> str:
    """Commit a snapshot of the whole directory `src` on `branch` of the repository `repo`.

    `repo` is created (non-bare) if missing. Every file under `src` is taken, with its exec
    bit and symlinks as symlinks; `.git` and `__pycache__` directories are skipped. The
    working tree and index of `repo` are not touched. `tag` adds an annotated tag on the
    new commit (moved if it exists). `timestamp` (seconds since the epoch) fixes author,
    committer and tagger times, which makes the SHA reproducible. Returns the commit SHA.
    """
    from dulwich.objects import Commit, Tag

    when = int(time.time()) if timestamp is None else timestamp
    branch_ref = f"refs/heads/{branch}".encode()
    with _open_or_init(Path(repo), branch) as r:
        tree_id = _store_tree(r.object_store, Path(src), root=True)
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [r.refs[branch_ref]] if branch_ref in r.refs else []
        commit.author = commit.committer = author.encode()
        commit.author_time = commit.commit_time = when
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = message.encode() + (b"" if message.endswith("\n") else b"\n")
        r.object_store.add_object(commit)
        r.refs[branch_ref] = commit.id
        if tag:
            tag_obj = Tag()
            tag_obj.name = tag.encode()
            tag_obj.object = (Commit, commit.id)
            tag_obj.tagger = author.encode()
            tag_obj.tag_time, tag_obj.tag_timezone = when, 0
            tag_obj.message = commit.message
            r.object_store.add_object(tag_obj)
            r.refs[f"refs/tags/{tag}".encode()] = tag_obj.id
        _point_unborn_head(r, branch_ref)
        return commit.id.decode()


def _open_or_init(path: Path, branch: str) -> Any:
    from dulwich.errors import NotGitRepository
    from dulwich.repo import Repo

    try:
        return Repo(str(path))
    except NotGitRepository:
        path.mkdir(parents=True, exist_ok=True)
        return Repo.init(str(path), default_branch=branch.encode())


def _point_unborn_head(r: Any, branch_ref: bytes) -> None:
    """A repository whose HEAD names a branch that does not exist gets HEAD -> `branch`."""
    from dulwich.refs import SYMREF

    head = r.refs.read_ref(b"HEAD") or b""
    if head.startswith(SYMREF) and head[len(SYMREF):] not in r.refs:
        r.refs.set_symbolic_ref(b"HEAD", branch_ref)


def _store_tree(object_store: Any, directory: Path, *, root: bool = False) -> bytes | None:
    """Add the blobs and trees of `directory` to `object_store`; return the tree id.

    Empty subdirectories give None (git records no empty trees).
    """
    from dulwich.objects import Blob, Tree

    tree = Tree()
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            name = entry.name.encode()
            if entry.is_symlink():
                blob = Blob.from_string(os.fsencode(os.readlink(entry.path)))
                object_store.add_object(blob)
                tree.add(name, stat.S_IFLNK, blob.id)
            elif entry.is_dir():
                if entry.name in SKIP_DIRS:
                    continue
                sub_id = _store_tree(object_store, Path(entry.path), root=False)
                if sub_id is not None:
                    tree.add(name, stat.S_IFDIR, sub_id)
            elif entry.is_file():
                blob = Blob.from_string(Path(entry.path).read_bytes())
                object_store.add_object(blob)
                executable = entry.stat().st_mode & stat.S_IXUSR
                tree.add(name, 0o100755 if executable else 0o100644, blob.id)
    if not root and not len(tree):
        return None
    object_store.add_object(tree)
    return tree.id


def main(argv: list[str] | None = None) -> int:
    """`python -m lambda3.embedded.gitserver owner/repo=PATH ...`: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve git repositories over smart HTTP.")
    parser.add_argument("repos", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--password-env", metavar="VAR",
                        help="require HTTP Basic auth with the password in this variable")
    args = parser.parse_args(argv)
    password = os.environ.get(args.password_env) if args.password_env else None
    pairs = dict(item.split("=", 1) for item in args.repos)
    with serve({k: Path(v) for k, v in pairs.items()}, host=args.host, port=args.port,
               password=password) as server:
        for name in pairs:
            print(server.url_for(name), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
