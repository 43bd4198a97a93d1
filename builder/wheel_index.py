"""Which wheels a release on the package index has, and what that means for a target.

When a wheels-only install finds no usable wheel for a package, this decides, from the
index's file list (the simple API, JSON or HTML, at the installer's index), whether
building it from source could help: a release with only an sdist may be pure Python; a
release with binary wheels, none of which the target loads (glibc too new, another Python
or CPU), is compiled code, so the build would only fail after minutes. Then the answer
says what its wheels need, the newest release with a wheel the target loads, and which
runtimes would take the release asked for.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from builder.redact import REDACTOR
from builder.runtimes import RUNTIMES, Target, make_target
from builder.wheels import wheel_tag_supported

log = logging.getLogger(__name__)

PYPI = "https://pypi.org/simple"
_TIMEOUT = 8.0
_MAX_BYTES = 32 << 20
_JSON = "application/vnd.pypi.simple.v1+json"
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-(?P<tag>[^-]+-[^-]+-[^-]+)"
                    r"\.whl$", re.IGNORECASE)
_SDIST = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*)\.(?:tar\.gz|zip)$", re.IGNORECASE)
_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|rc|alpha|beta|c|pre|preview)[-_.]?(\d*))?"
                      r"(?:[-_.]?(?:post|rev|r)[-_.]?(\d*))?(?:[-_.]?dev[-_.]?(\d*))?$",
                      re.IGNORECASE)
_CLAUSE = re.compile(r"(===|==|!=|~=|>=|<=|>|<)\s*([A-Za-z0-9._*+!-]+)")


@dataclass(frozen=True)
class Verdict:
    """A compiled release the target cannot load, and what would work instead."""

    name: str
    version: str
    glibc: tuple[int, int] | None  # what its wheels for the target's Python and CPU need
    loadable: bool                 # a wheel the target loads after all (uv cannot pick it)
    newest_loadable: str | None    # the newest release with a wheel the target loads
    runtimes: tuple[str, ...]      # the runtimes (same CPU) that would take this release


def index_url(env: Mapping[str, str], configured: str | None = None) -> str:
    """The index the installer reads: the requirement files' `--index-url`, else uv's or
    pip's setting in the environment, else PyPI."""
    for value in (configured, env.get("UV_DEFAULT_INDEX"), env.get("UV_INDEX_URL"),
                  env.get("PIP_INDEX_URL")):
        if value:
            return value.split()[0]
    return PYPI


def compiled_release(name: str, spec: str, target: Target, index: str, *,
                     selectable: tuple[int, int] | None = None) -> Verdict | None:
    """A Verdict when the newest release of `name` that `spec` allows has wheels for the
    target's Python and CPU (so it is compiled code) that the target's glibc is too old
    for, or that the target loads but uv cannot select; None when it has no wheel for that
    Python and CPU (building it may work) or the index cannot tell. `selectable`: the
    newest manylinux level the installer can ask for (uv: 2_17 for glibc 2.26)."""
    files = project_files(index, name)
    if not files:
        return None
    return judge(name, spec, target, files, selectable=selectable)


def judge(name: str, spec: str, target: Target, files: list[tuple[str, str | None]], *,
          selectable: tuple[int, int] | None = None) -> Verdict | None:
    releases = _releases(files, target)
    allowed = [v for v in releases if _allows(spec, v)]
    finals = [v for v in allowed if _final(v)]
    if not allowed:
        return None
    version = max(finals or allowed, key=_key)
    tags = releases[version]
    loadable = any(wheel_tag_supported(tag, target) for tag in tags)
    if loadable and selectable and any(wheel_tag_supported(tag, target, glibc=selectable)
                                       for tag in tags):
        return None  # the installer could select one: the index does not explain it
    glibc = _glibc_needed(tags, target)
    if not loadable and glibc is None:
        return None  # an sdist only, or no wheel for this Python and CPU: building may work
    newest = [v for v, t in releases.items() if _final(v)
              and any(wheel_tag_supported(tag, target) for tag in t)]
    runtimes = tuple(r for r in RUNTIMES if any(
        wheel_tag_supported(tag, make_target(r, target.architecture)) for tag in tags))
    return Verdict(name, version, glibc, loadable, max(newest, key=_key) if newest else None,
                   runtimes)


def describe(verdict: Verdict, target: Target) -> tuple[str, str]:
    """(message, hint) for a Verdict whose release the target cannot load."""
    v, (major, minor) = verdict, target.manylinux
    need = f"glibc {v.glibc[0]}.{v.glibc[1]} (manylinux_{v.glibc[0]}_{v.glibc[1]})"
    newest = (f"the newest release with a wheel {target.runtime} loads is {v.newest_loadable}"
              if v.newest_loadable else f"no release has a wheel {target.runtime} loads")
    others = [r for r in v.runtimes if r != target.runtime]
    takes = f"; {_runtimes(others, ' or ')} would take {v.version}" if others else ""
    message = (f"package {v.name} {v.version} needs compiling for the target: its wheels for "
               f"Python {target.python_version} {target.architecture} need {need} and "
               f"{target.runtime} has glibc {major}.{minor}; {newest}{takes}")
    fixes = [f"pin {v.name}=={v.newest_loadable}"] if v.newest_loadable else []
    if others:
        fixes.append(f"use a {_runtimes(others, ' or ')} runtime")
    return message, " or ".join(fixes) or "build inside Lambda"


def _runtimes(runtimes: list[str], joiner: str) -> str:
    """`python3.12+` for the newest runtimes from one on, else the names joined."""
    if len(runtimes) > 1 and tuple(runtimes) == RUNTIMES[-len(runtimes):]:
        return f"{runtimes[0]}+"
    return joiner.join(runtimes)


def _glibc_needed(tags: list[str], target: Target) -> tuple[int, int] | None:
    """The lowest manylinux level among wheels for the target's Python and CPU."""
    levels = []
    for tag in tags:
        interpreters, abis, platforms = tag.split("-")
        for platform in platforms.split("."):
            match = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{target.machine}", platform)
            if match and wheel_tag_supported(f"{interpreters}-{abis}-{platform}", target,
                                             glibc=(99, 0)):
                levels.append((int(match[1]), int(match[2])))
    return min(levels) if levels else None


def _releases(files: list[tuple[str, str | None]], target: Target) -> dict[str, list[str]]:
    """version -> wheel tags of that release (an empty list: an sdist only), for the
    files whose Requires-Python admits the target's Python."""
    releases: dict[str, list[str]] = {}
    for filename, requires_python in files:
        if requires_python and not _allows(requires_python, target.python_version):
            continue
        wheel = _WHEEL.match(filename)
        if wheel:
            releases.setdefault(wheel["version"], []).append(wheel["tag"].lower())
            continue
        sdist = _SDIST.match(filename)
        if sdist:
            releases.setdefault(sdist["version"], [])
    return {v: tags for v, tags in releases.items() if _VERSION.match(v)}


def _key(version: str) -> tuple:
    """A sort key for the PEP 440 versions releases have (epochs and local parts aside)."""
    match = _VERSION.match(version)
    if not match:
        return ((), (-9, 0), -1, 0)
    release = tuple(int(p) for p in match[1].split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre, post, dev = match[2], match[4], match[5]
    if pre is not None:
        phase = ({"a": -3, "alpha": -3, "b": -2, "beta": -2}.get(pre.lower(), -1),
                 int(match[3] or 0))
    else:
        phase = (-4, 0) if dev is not None and post is None else (0, 0)
    return (release, phase, int(post or 0) if post is not None else -1,
            int(dev or 0) if dev is not None else 1 << 30)


def _final(version: str) -> bool:
    match = _VERSION.match(version)
    return bool(match) and match[2] is None and match[5] is None


def _allows(spec: str, version: str) -> bool:
    """Whether `version` is in uv's range text (`>=2.3.0,<3`, `==2.3.4`; empty: any)."""
    if "|" in spec:
        return True  # a union uv printed: not narrowed here
    key = _key(version)
    for op, wanted in _CLAUSE.findall(spec):
        if wanted.endswith(".*"):
            prefix = _key(wanted[:-2])[0]
            inside = key[0][:len(prefix)] == prefix or (
                len(key[0]) < len(prefix) and key[0] + (0,) * (len(prefix) - len(key[0]))
                == prefix)
            if (op == "==") != inside:
                return False
            continue
        other = _key(wanted)
        ok = {"==": key == other, "===": version == wanted, "!=": key != other,
              ">=": key >= other, "<=": key <= other, ">": key > other, "<": key < other,
              "~=": key >= other and key[0][:max(1, len(_key(wanted)[0]) - 1)]
              == other[0][:max(1, len(other[0]) - 1)]}[op]
        if not ok:
            return False
    return True


def project_files(index: str, name: str) -> list[tuple[str, str | None]] | None:
    """(file name, Requires-Python) of every file of `name` on the index that is not
    yanked; None when the index cannot be read."""
    if not index.lower().startswith(("https://", "http://")):
        return None
    url = index.rstrip("/") + f"/{name}/"
    try:
        body, content_type = _get(url)
    except (OSError, ValueError) as exc:
        log.debug("index: could not read %s: %s", REDACTOR(url), exc)
        return None
    if content_type.startswith(_JSON) or body.lstrip().startswith(b"{"):
        data = json.loads(body)
        return [(f["filename"], f.get("requires-python")) for f in data.get("files", [])
                if not f.get("yanked")]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.files


def _get(url: str) -> tuple[bytes, str]:
    parts = urlsplit(url)
    headers = {"Accept": f"{_JSON}, text/html;q=0.1"}
    if parts.username:
        credentials = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        url = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) only
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
        body = response.read(_MAX_BYTES + 1)
        if len(body) > _MAX_BYTES:
            raise ValueError("index page too large")
        return body, response.headers.get("Content-Type", "")


class _Anchors(HTMLParser):
    """The file names of a PEP 503 HTML page (yanked links left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href") and "data-yanked" not in found:
            path = urlsplit(urljoin("/", found["href"])).path
            self.files.append((path.rsplit("/", 1)[-1], found.get("data-requires-python")))
