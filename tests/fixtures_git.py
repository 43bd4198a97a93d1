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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lambda3.embedded.gitserver import GitServer, commit_directory

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
