"""Requirement files, rewritten so that an installer can run them from a temporary directory.

`-r`/`-c` includes, `--find-links` and local paths become absolute and must resolve inside
the repository (a symlink or `../` may not reach the builder's own files); editables become
regular installs; git requirements are fetched by lambda3 itself (Lambda has no git) and
replaced by their checkout. The token for the source host goes only to that fetch, and
only over https to that host: never to a child process, file or message.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from builder.errors import InstallError, Lambda3Error
from builder.redact import REDACTOR

log = logging.getLogger(__name__)

FetchVcs = Callable[[str, "str | None", Path, "str | None"], Path]

_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVES = (".whl", ".tar.gz", ".zip")
_LOCATION_OPTIONS = ("-f", "--find-links", "-i", "--index-url", "--extra-index-url")
_OPTION = re.compile(r"^(--[a-z][a-z-]*|-[a-zA-Z])(?:\s*=\s*|\s+|(?=[^\s=]))?(.*)$")
_NAMED_URL = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)(.*)$")


def normalise(name: str) -> str:
    """PEP 503 name normalisation: `Foo_Bar.baz` -> `foo-bar-baz`."""
    return re.sub(r"[-_.]+", "-", name).lower()


class RequirementFiles:
    """Rewrites requirement files into `work` as the module docstring says, git requirements
    fetched with `fetch_vcs` (builder.source by default). Collects the names required."""

    def __init__(self, repo_root: Path, work: Path, *, token: str | None,
                 source_host: str | None, fetch_vcs: FetchVcs | None = None) -> None:
        self.work = work
        self.repo_root = repo_root.resolve()
        self.names: set[str] = set()        # normalised names the files require
        self.local_names: set[str] = set()  # those installed from a path or a git checkout
        self._roots = [self.repo_root]
        self._token, self._source_host = token, source_host
        self._fetch_vcs = fetch_vcs or _fetch_source
        self._written: dict[Path, Path] = {}
        self._fetched: dict[tuple[str, str | None], Path] = {}

    def rewrite(self, path: Path, *, collect: bool = True) -> Path:
        source = self._inside(path, None, None)
        if source not in self._written:
            out = self.work / f"requirements-{len(self._written)}.txt"
            self._written[source] = out
            lines = [self._line(text, source, number, collect)
                     for number, text in _logical_lines(source)]
            out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return self._written[source]

    def shown(self, path: Path) -> str:
        """How a requirement file is named in messages: relative to the repository."""
        resolved = Path(path).resolve()
        if resolved.is_relative_to(self.repo_root):
            return resolved.relative_to(self.repo_root).as_posix()
        return resolved.name

    def _line(self, line: str, source: Path, number: int, collect: bool) -> str:
        match = _OPTION.match(line)
        if not match:
            return self._requirement(line, source, number, collect)
        option, value = match[1], match[2].strip()
        if option in ("-r", "--requirement", "-c", "--constraint"):
            if "://" in value:
                return line
            nested = self.rewrite(self._path(value, source, number), collect=collect
                                  and option in ("-r", "--requirement"))
            return f"{option} {nested}"
        if option in ("-e", "--editable"):
            log.info("%s:%d: installing %s as a regular (not editable) package",
                     self.shown(source), number, REDACTOR(value))
            return self._requirement(value, source, number, collect)
        if option in _LOCATION_OPTIONS and value.startswith("file:"):
            return f"{option} {self._path(urlsplit(value).path, source, number).as_uri()}"
        if option in ("-f", "--find-links") and "://" not in value:
            return f"{option} {self._path(value, source, number)}"
        return line

    def _requirement(self, line: str, source: Path, number: int, collect: bool) -> str:
        named = _NAMED_URL.match(line)
        if named:
            name, extras, location, rest = named.groups()
            if collect:
                self.names.add(normalise(name))
            if "://" in location and not location.startswith(("file:", *_VCS_PREFIXES)):
                return line
            self.local_names.add(normalise(name))
            path = self._local(location, source, number)
            return f"{name}{extras or ''} @ {path.as_uri()}{rest}"
        if line.startswith(_VCS_PREFIXES) or _looks_like_path(line):
            location, _, rest = line.partition(" ")
            rest = f" {rest}" if rest else ""
            extras = re.search(r"\[[^\]]*\]$", location.split("#", 1)[0])
            if extras:
                location = location[:extras.start()] + location[extras.end():]
            path = self._local(location, source, number)
            egg = re.search(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)", location)
            if not egg:
                return f"{path}{extras[0] if extras else ''}{rest}"
            self.local_names.add(normalise(egg[1]))
            if collect:
                self.names.add(normalise(egg[1]))
            return f"{egg[1]}{extras[0] if extras else ''} @ {path.as_uri()}{rest}"
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if name and collect:
            self.names.add(normalise(name[0]))
        return line

    def _local(self, location: str, source: Path, number: int) -> Path:
        """A git URL fetched to a checkout, or a local path made absolute."""
        if location.startswith(_VCS_PREFIXES):
            return self._checkout(location, source, number)
        location = location.split("#", 1)[0]
        if location.startswith("file:"):
            location = urlsplit(location).path
        return self._path(location, source, number)

    def _path(self, value: str, source: Path, number: int) -> Path:
        return self._inside(source.parent / value, source, number)

    def _inside(self, path: Path, source: Path | None, number: int | None) -> Path:
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root) for root in self._roots):
            raise InstallError(f"{path} is outside the repository",
                               file=self.shown(source) if source else None, line=number,
                               hint="requirement files, includes and local paths must be "
                                    "inside the repository")
        return resolved

    def _token_may_go_to(self, url: str) -> bool:
        """The source host's token goes to that host only, over https (or plain http to
        this machine, as a local git server is)."""
        parts = urlsplit(url)
        if not self._source_host or _host(parts.netloc) != _host(self._source_host):
            return False
        if parts.username:
            return False  # the requirement carries its own credentials
        return parts.scheme == "https" or parts.hostname in ("127.0.0.1", "localhost", "::1")

    def _checkout(self, location: str, source: Path, number: int) -> Path:
        if not location.startswith(("git+https://", "git+http://")):
            raise InstallError(f"unsupported VCS requirement {REDACTOR(location.split('#')[0])}",
                               file=self.shown(source), line=number,
                               hint="Lambda has no git, ssh or other VCS tools: use "
                                    "git+https:// URLs (lambda3 fetches them) or an index")
        url, ref, subdirectory = _parse_git(location)
        key = (url, ref)
        if key not in self._fetched:
            token = self._token if self._token_may_go_to(url) else None
            log.info("%s:%d: fetching %s@%s", self.shown(source), number, REDACTOR(url),
                     ref or "HEAD")
            workdir = self.work / f"vcs-{len(self._fetched)}"
            workdir.mkdir()
            try:
                root = self._fetch_vcs(url, ref, workdir, token)
            except Lambda3Error as err:
                raise InstallError(f"could not fetch {REDACTOR(url)}@{ref or 'HEAD'}: "
                                   f"{err.message}", file=self.shown(source), line=number) from err
            self._fetched[key] = Path(root).resolve()
            self._roots.append(self._fetched[key])
        checkout = self._fetched[key]
        path = (checkout / subdirectory).resolve() if subdirectory else checkout
        if not path.is_relative_to(checkout):
            raise InstallError(f"subdirectory {subdirectory} is outside the checkout",
                               file=self.shown(source), line=number)
        return path



def _fetch_source(url: str, ref: str | None, workdir: Path, token: str | None) -> Path:
    from builder.source import fetch_source

    return fetch_source(url, ref, workdir, token=token).root



def _logical_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) with comments dropped and `\\` continuations joined, as pip does."""
    lines, pending, start = [], "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = re.sub(r"(^|\s+)#.*$", "", raw)
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1]
            continue
        text, pending = (pending + text).strip(), ""
        if text:
            lines.append((start, text))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def _looks_like_path(line: str) -> bool:
    first = line.split(" ", 1)[0]
    if "://" in first and not first.startswith("file:"):
        return False
    return first.startswith((".", "/", "file:")) or first.endswith(_ARCHIVES) or (
        "/" in first and not _NAMED_URL.match(line))


def _parse_git(location: str) -> tuple[str, str | None, str | None]:
    """`git+https://host/o/r.git@ref#egg=x&subdirectory=d` -> (https URL, ref, subdirectory)."""
    url, _, fragment = location.removeprefix("git+").partition("#")
    parts = urlsplit(url)
    path, ref = parts.path, None
    if "@" in path:
        path, ref = path.rsplit("@", 1)
    subdirectory = re.search(r"(?:^|&)subdirectory=([^&]+)", fragment)
    return (parts._replace(path=path, query="", fragment="").geturl(), ref or None,
            subdirectory[1] if subdirectory else None)


def _host(netloc: str) -> str:
    """`user:pw@Host:443` or `https://host/` -> `host:443` (lowercase, no credentials)."""
    if "://" in netloc:
        netloc = urlsplit(netloc).netloc
    return netloc.rsplit("@", 1)[-1].strip("/").lower()

