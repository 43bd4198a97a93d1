"""Fixtures for the git side of the tests: a real smart-HTTP git server and repositories.

- `git_token`: a canary secret; tests assert it never shows up where it must not.
- `git_server`: a started `GitServer` on 127.0.0.1 that requires `git_token`.
- `make_repo`: a factory of `RepoBuilder`s, repositories whose commits are made with
  `commit_directory` from a work directory the test writes into.

    repo = make_repo({"app.py": "print(1)\\n"}, tag="v1")
    url = git_server.add_repo("owner/app", repo.path)
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lambda3.embedded.gitserver import GitServer, commit_directory
from lambda3.embedded.serving import serve_in_thread, stop_serving

FIRST_COMMIT_TIME = 1_700_000_000


@dataclass
class RepoBuilder:
    """A repository at `path` and the directory `work` its commits snapshot."""

    path: Path
    work: Path
    clock: int = FIRST_COMMIT_TIME
    commits: list[str] = field(default_factory=list)

    def write(self, files: Mapping[str, str | bytes] | None = None, *,
              executables: Iterable[str] = (), symlinks: Mapping[str, str] | None = None,
              remove: Iterable[str] = ()) -> None:
        """Change the work directory: write files, make some executable, add symlinks."""
        for name in remove:
            target = self.work / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        for name, content in (files or {}).items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)
        for name in executables:
            os.chmod(self.work / name, 0o755)
        for name, points_to in (symlinks or {}).items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(points_to, self.work / name)

    def commit(self, message: str = "update", *, branch: str = "main", tag: str | None = None,
               **changes: object) -> str:
        """Apply `changes` (the arguments of `write`) and commit; returns the SHA.

        Commit times advance one minute per commit, so SHAs are the same on every run.
        """
        if changes:
            self.write(**changes)  # type: ignore[arg-type]
        self.clock += 60
        sha = commit_directory(self.work, self.path, message, branch=branch, tag=tag,
                               timestamp=self.clock)
        self.commits.append(sha)
        return sha

    def set_ref(self, name: str, sha: str) -> None:
        """Point `name` (e.g. "refs/tags/light") at `sha`: a lightweight tag or a branch."""
        from dulwich.repo import Repo

        with Repo(str(self.path)) as repo:
            repo.refs[name.encode()] = sha.encode()

    def set_head(self, branch: str) -> None:
        from dulwich.repo import Repo

        with Repo(str(self.path)) as repo:
            repo.refs.set_symbolic_ref(b"HEAD", f"refs/heads/{branch}".encode())


@pytest.fixture
def git_token() -> str:
    return "canary-" + secrets.token_hex(12)


@pytest.fixture
def git_server(git_token: str) -> Iterator[GitServer]:
    with GitServer(password=git_token) as server:
        yield server


@pytest.fixture
def make_repo(tmp_path: Path):
    """`make_repo(files=None, *, name="repo", message=..., branch="main", tag=None,
    executables=(), symlinks=None)` -> RepoBuilder, with a first commit if files are given."""
    made: set[str] = set()

    def factory(files: Mapping[str, str | bytes] | None = None, *, name: str = "repo",
                message: str = "initial commit", branch: str = "main", tag: str | None = None,
                executables: Iterable[str] = (),
                symlinks: Mapping[str, str] | None = None) -> RepoBuilder:
        if name in made:
            raise ValueError(f"make_repo: {name!r} already made in this test")
        made.add(name)
        work = tmp_path / "git-work" / name
        work.mkdir(parents=True)
        builder = RepoBuilder(path=tmp_path / "git-repos" / name, work=work)
        if files or symlinks:
            builder.commit(message, branch=branch, tag=tag, files=files,
                           executables=executables, symlinks=symlinks)
        return builder

    return factory


# -- servers for the security tests ---------------------------------------------------------


class TokenGitServer:
    """dulwich's smart-HTTP git server on 127.0.0.1 where each repository has its own
    token (Basic auth, any username): a request for one repository with another's token
    gets 401. `requests` logs (method, path, status)."""

    def __init__(self) -> None:
        self._repos: dict[str, tuple[Path, str]] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._server = self._thread = None

    def __enter__(self) -> TokenGitServer:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from dulwich.web import make_wsgi_chain

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

        git_app = make_wsgi_chain(self, handlers={b"git-receive-pack": None})
        self._server = make_server("127.0.0.1", 0, self._guarded(git_app),
                                   handler_class=Quiet)
        self._thread = serve_in_thread(self._server, "token-git-server")
        return self

    def __exit__(self, *exc: object) -> None:
        stop_serving(self._server, self._thread)

    def add_repo(self, name: str, path: Path, token: str) -> str:
        self._repos[f"/{name}.git"] = (Path(path), token)
        return f"http://127.0.0.1:{self._server.server_port}/{name}.git"

    def open_repository(self, path: str | bytes):  # dulwich's Backend
        from dulwich.errors import NotGitRepository
        from dulwich.repo import Repo

        path = path.decode() if isinstance(path, bytes) else path
        if path not in self._repos:
            raise NotGitRepository(path)
        return Repo(str(self._repos[path][0]))

    def _guarded(self, app):
        def guarded(environ, start_response):
            path = environ.get("PATH_INFO", "")
            repo = next((p for p in self._repos if path.startswith(p + "/")), None)
            status = [0]

            def recording(line, headers, exc_info=None):
                status[0] = int(line.split()[0])
                self.requests.append((environ["REQUEST_METHOD"], path, status[0]))
                return start_response(line, headers, exc_info)

            if repo is None or not _basic_password_is(environ, self._repos[repo][1]):
                recording("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="t"'),
                                               ("Content-Length", "0")])
                return [b""]
            return app(environ, recording)

        return guarded


def _basic_password_is(environ, token: str) -> bool:
    import base64
    import binascii
    import hmac

    scheme, _, encoded = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return scheme.lower() == "basic" and hmac.compare_digest(
        decoded.partition(":")[2].encode(), token.encode())


class ScriptedHttpServer:
    """A plain HTTP server on `host` (a loopback address) answering every request with
    `answer(path, headers) -> (status, headers, body)`; `seen` logs (path, headers), header
    names in lowercase. An IPv6 `host` ("::1") listens on IPv6."""

    def __init__(self, answer, host: str = "127.0.0.1") -> None:
        self.answer, self.host, self.seen = answer, host, []

    def __enter__(self) -> ScriptedHttpServer:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                received = {name.lower(): value for name, value in self.headers.items()}
                outer.seen.append((self.path, received))
                status, headers, body = outer.answer(self.path, received)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        self._server = Server((self.host, 0), Handler)
        self.port = self._server.server_port
        self._thread = serve_in_thread(self._server, "scripted-http-server")
        return self

    def __exit__(self, *exc: object) -> None:
        stop_serving(self._server, self._thread)

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def token_git_server() -> Iterator[TokenGitServer]:
    with TokenGitServer() as server:
        yield server
