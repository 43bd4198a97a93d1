"""The action's dependencies on the runner: the hash-locked wheels, unpacked into one folder.

Standard library only, so it runs on any python3 (3.10 or later) before anything is
installed: no venv, no pip, no uv. For each `name==version` of the lock (uv's
`--generate-hashes` format) it reads the package index's simple page (PEP 503), takes the
pure-Python wheel whose sha256 the lock lists, downloads it (all in parallel), checks the
sha256 and unpacks it. Unpacking a `py3-none-any` wheel is what `pip install --target` does
for it; anything else is refused. botocore's models are unpacked only for the services the
action calls. The folder is built beside its final place, then renamed into it, and records
the lock's sha256: a folder left by an earlier job (a self-hosted runner's tool cache, or
one restored by actions/cache) is used as it is.

    python3 install.py key LOCK   # `key=`, `path=`, `restore=` lines for $GITHUB_OUTPUT
    ensure(LOCK)                  # entrypoint.py: makes `path` unless it is there; returns it

The index is `$PIP_INDEX_URL` when set (a mirror: the hashes still decide), else PyPI.
"""
from __future__ import annotations

import hashlib
import html
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PYPI = "https://pypi.org/simple"
MARKER = ".lambda3-lock-sha256"
MIN_PYTHON = (3, 10)
# The AWS services the action's code may call (tests/unit/test_action_install.py checks it
# against the modules lambda3/action/run.py can import). botocore's models of the 400 others
# are 1,900 of its 2,060 files: unpacking (or restoring) them took 1.8 s of the 2 s here.
BOTOCORE_SERVICES = frozenset({"cloudwatch", "codeartifact", "iam", "lambda", "logs", "s3", "sts"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(;[^\\]*)?")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_PURE = re.compile(r"-(py3|py2\.py3)-none-any\.whl$")
# A file on a PEP 503 simple page: its URL and the sha256 in the URL's fragment.
_LINK = re.compile(r"""href=["']([^"'#]+)#sha256=([0-9a-f]{64})["']""")


class InstallError(Exception):
    pass


def read_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """{name: (version, sha256s)} from a `--generate-hashes` requirements file."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pin = _PIN.match(line)
        if pin:
            if pin.group(3):
                raise InstallError(f"the lock pins {pin.group(1)} with a marker "
                                   f"({pin.group(3).strip()}); this installer takes none")
            current = _normalize(pin.group(1))
            pins[current] = (pin.group(2), set())
        elif current is None or not _HASH.search(line):
            raise InstallError(f"the lock has a line this installer does not read: {line!r}")
        pins[current][1].update(_HASH.findall(line))
    missing = [name for name, (_, hashes) in pins.items() if not hashes]
    if missing or not pins:
        raise InstallError(f"the lock has no hashes for {', '.join(missing) or 'anything'}")
    return pins


def cache_key(lock_text: str) -> str:
    digest = hashlib.sha256(lock_text.encode()).hexdigest()[:20]
    version = ".".join(map(str, sys.version_info[:2]))
    return f"lambda3-action-{platform.system()}-{platform.machine()}-py{version}-{digest}"


def target_path(lock_text: str, environ=os.environ) -> Path:
    base = environ.get("RUNNER_TOOL_CACHE") or environ.get("RUNNER_TEMP") or tempfile.gettempdir()
    return Path(base) / "lambda3-action" / cache_key(lock_text)


def is_ready(target: Path, lock_text: str) -> bool:
    try:
        return (target / MARKER).read_text() == _sha256(lock_text.encode())
    except OSError:
        return False


def install(lock_text: str, target: Path, *, index: str, fetch=None) -> list[str]:
    """Make `target` hold the locked wheels, unpacked; the wheels' names, in lock order.
    Downloads run in parallel; unpacking, which is CPU and file-system bound, runs here."""
    fetch = fetch or fetch_url
    pins = read_lock(lock_text)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        with ThreadPoolExecutor(max_workers=min(8, len(pins))) as pool:
            wheels = [pool.submit(_download, name, *pin, index=index, fetch=fetch)
                      for name, pin in pins.items()]
            names = []
            for future in wheels:
                filename, data = future.result()
                unpack(data, staging, filename)
                names.append(filename)
        (staging / MARKER).write_text(_sha256(lock_text.encode()))
        _move_into_place(staging, target, lock_text)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def _download(name: str, version: str, hashes: set[str], *, index: str,
              fetch) -> tuple[str, bytes]:
    filename, url = find_wheel(name, version, hashes, index=index, fetch=fetch)
    data = fetch(url)
    if _sha256(data) not in hashes:
        raise InstallError(f"{filename} from {_host(url)} does not match the lock's sha256")
    return filename, data


def find_wheel(name: str, version: str, hashes: set[str], *, index: str,
               fetch) -> tuple[str, str]:
    """(filename, url) of the pure-Python wheel of name==version whose sha256 is locked."""
    page_url = f"{index.rstrip('/')}/{name}/"
    page = fetch(page_url, accept="text/html").decode("utf-8", "replace")
    for href, sha in _LINK.findall(page):
        url = urllib.parse.urljoin(page_url, html.unescape(href))
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        if sha in hashes and _PURE.search(filename) and \
                filename.startswith(f"{name.replace('-', '_')}-{version}-"):
            return filename, url
    raise InstallError(f"{_host(page_url)} has no pure-Python wheel of {name}=={version} "
                       "with a sha256 the lock lists")


def unpack(data: bytes, into: Path, filename: str) -> None:
    """Unpack a pure-Python wheel as `pip install --target` lays it out, without the
    `.data/scripts` that pip would put in `bin/` and botocore's models of the services
    outside BOTOCORE_SERVICES."""
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        members = []
        for member in wheel.namelist():
            parts = Path(member).parts
            if parts[0].endswith(".data") and parts[1:2] == ("scripts",):
                continue  # command-line scripts: the action runs none
            if member.startswith("/") or ".." in parts or parts[0].endswith(".data"):
                raise InstallError(f"{filename} holds {member!r}, which a pure-Python "
                                   "wheel unpacked here may not")
            if parts[:2] == ("botocore", "data") and len(parts) > 3 \
                    and parts[2] not in BOTOCORE_SERVICES:
                continue  # the model of a service the action never calls
            members.append(member)
        wheel.extractall(into, members)


def _move_into_place(staging: Path, target: Path, lock_text: str) -> None:
    if is_ready(target, lock_text):
        return  # another job finished first
    if target.exists():
        shutil.rmtree(target)  # incomplete or from another lock
    try:
        staging.rename(target)
    except OSError:
        if not is_ready(target, lock_text):
            raise


def fetch_url(url: str, accept: str = "*/*", attempts: int = 3) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in {"https", "http"}:
        raise InstallError(f"refusing to download {url}: only http(s) indexes are read")
    request = urllib.request.Request(url, headers={"Accept": accept,  # noqa: S310 - checked
                                                   "User-Agent": "lambda3-action"})
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                return answer.read()
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
        if attempt < attempts:
            time.sleep(attempt)
    raise InstallError(f"could not download {url}: {problem}")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def ensure(lock: Path, environ=os.environ, say=print, fetch=None) -> Path:
    """The folder holding the locked set, unpacked first unless an earlier job left it."""
    if sys.version_info < MIN_PYTHON:
        raise InstallError(f"lambda3's action needs python3 3.10 or later on PATH; this is "
                           f"{platform.python_version()} (run actions/setup-python first)")
    lock_text = lock.read_text()
    target = target_path(lock_text, environ)
    if not is_ready(target, lock_text):
        started = time.perf_counter()
        try:
            names = install(lock_text, target, index=environ.get("PIP_INDEX_URL") or PYPI,
                            fetch=fetch)
        except (OSError, zipfile.BadZipFile) as exc:
            raise InstallError(f"installing the action's dependencies failed: {exc}") from None
        say(f"lambda3: unpacked {len(names)} locked wheels in "
            f"{time.perf_counter() - started:.1f} s: {' '.join(names)}")
    return target


def main(argv: list[str], environ=os.environ) -> int:
    """`key LOCK`: the `key=`, `path=` and `restore=` lines of the cache step's outputs;
    `restore` is false when the folder is already there, or when LAMBDA3_CACHE is false."""
    if len(argv) != 2 or argv[0] != "key":
        print("usage: install.py key LOCK", file=sys.stderr)
        return 2
    lock_text = Path(argv[1]).read_text()
    target = target_path(lock_text, environ)
    wanted = environ.get("LAMBDA3_CACHE", "true").strip().lower() != "false"
    restore = str(wanted and not is_ready(target, lock_text)).lower()
    print(f"key={cache_key(lock_text)}\npath={target}\nrestore={restore}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
