"""Installing requirement files into a directory for a Lambda target.

uv (the PyPI package) when it is importable, else `python -m pip`, always with
`--target`, a reusable cache and no bytecode. Natively (inside Lambda, on the target
runtime) it is a plain install; elsewhere the installer resolves for the target's platform
and Python, and every installed wheel is checked against the target afterwards.

Requirement files are rewritten into a temporary directory first: includes and local
paths become absolute (and must stay inside the repository), and git requirements are
fetched by lambda3 itself (Lambda has no git) and replaced by the checkout. The token
for the source host goes only to that fetch: never to a child process, file or message.

The boto3 closure the runtime provides is pinned as a constraint and left out of the
result, unless the requirements name boto3/botocore/s3transfer or ask to include it.
"""
from __future__ import annotations

import csv
import email.parser
import importlib.util
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from builder.errors import InstallError, Lambda3Error
from builder.redact import REDACTOR
from builder.runtimes import SDK_ROOTS, Target, is_native, provided_versions
from builder.strip import rewrite_records

log = logging.getLogger(__name__)

Runner = Callable[[list[str], dict[str, str], "Path | None"], subprocess.CompletedProcess]
FetchVcs = Callable[[str, "str | None", Path, "str | None"], Path]

_TAIL_LINES = 20
_CONSTRAINTS = "runtime-provided-constraints.txt"
_MAX_ATTEMPTS = 5
_AWS_KEPT = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE", "AWS_EXECUTION_ENV"})
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "API_KEY", "APIKEY",
                 "PRIVATE_KEY", "ACCESS_KEY")
# Platforms `uv pip install --python-platform` knows (uv 0.13): manylinux_2_17, then 2_28+.
_UV_MANYLINUX = ((2, 17), (2, 28)) + tuple((2, minor) for minor in range(31, 41))
_SUMMARY = re.compile(r"^\s*(Resolved|Prepared|Installed|Built|Downloaded|Uninstalled|Audited"
                      r"|Successfully installed|warning|WARNING)\b")
_FAILED_BUILD = re.compile(r"Failed to build `([A-Za-z0-9][A-Za-z0-9._-]*)=="
                           r"|Failed building wheel for ([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class InstallResult:
    packages: tuple[tuple[str, str], ...]
    left_out: tuple[str, ...]
    installer: str
    mode: str


def run_command(argv: list[str], env: dict[str, str], cwd: Path | None
                ) -> subprocess.CompletedProcess:
    """The default runner: captured text output, checked by the caller."""
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)


def scrubbed_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without AWS credentials, tokens, secrets and passwords.

    Index settings (PIP_INDEX_URL, UV_INDEX_URL, PIP_EXTRA_INDEX_URL, ...), proxies, PATH,
    HOME, TMPDIR and locale pass through, credentials in an index URL included: the user put
    them there for the installer.
    """
    source = os.environ if base is None else base
    return {name: value for name, value in source.items() if not _is_secret_name(name)}


def _is_secret_name(name: str) -> bool:
    upper = name.upper()
    if upper.startswith("AWS_") and upper not in _AWS_KEPT:
        return True
    return any(word in upper for word in _SECRET_WORDS)


def normalise(name: str) -> str:
    """PEP 503 name normalisation: `Foo_Bar.baz` -> `foo-bar-baz`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installer_version(runner: Runner | None = None, *, installer: str | None = None) -> str:
    """`"uv 0.13.9"` or `"pip 24.0"`: the installer `install_requirements` would use."""
    return _Installer.choose(installer).version(runner or run_command)


def install_requirements(requirements: Sequence[Path], dest: Path, target: Target, *,
                         cache_dir: Path, repo_root: Path, runtime_packages: str = "exclude",
                         token: str | None = None, source_host: str | None = None,
                         native: bool | None = None, runner: Runner | None = None,
                         fetch_vcs: FetchVcs | None = None, keep_bin: bool = False,
                         installer: str | None = None) -> InstallResult:
    """Install `requirements` into the empty directory `dest` for `target`."""
    if runtime_packages not in ("exclude", "include"):
        raise ValueError(f"runtime_packages must be 'exclude' or 'include': {runtime_packages!r}")
    dest, cache_dir = Path(dest).absolute(), Path(cache_dir).absolute()
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"install destination {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    runner = runner or run_command
    tool = _Installer.choose(installer)
    version = tool.version(runner)
    native = is_native(target) if native is None else native
    with tempfile.TemporaryDirectory(prefix="lambda3-requirements-") as work:
        files = _RequirementFiles(Path(repo_root), Path(work), token=token,
                                 source_host=source_host, fetch_vcs=fetch_vcs or _fetch_source)
        rewritten = [files.rewrite(Path(r)) for r in requirements]
        provided = _runtime_provided(runtime_packages, files.names)
        if provided:
            rewritten.append(_write_constraints(Path(work), provided))
        job = _Job(tool=tool, target=target, native=native, dest=dest, cache_dir=cache_dir,
                   work=Path(work), requirements=rewritten, provided=provided,
                   local_names=files.local_names, env=_child_env(token), runner=runner,
                   shown=", ".join(files.shown(Path(r)) for r in requirements), secret=token)
        log.info("installing %s for %s with %s (%s)", job.shown, target.describe(), version,
                 job.mode)
        job.run()
    left_out = _remove_distributions(dest, set(provided))
    _tidy(dest, keep_bin=keep_bin)
    packages = tuple(sorted(_distributions(dest)))
    log.info("installed %d distributions%s", len(packages),
             f"; left out (the runtime provides them): {', '.join(left_out)}" if left_out else "")
    return InstallResult(packages, tuple(left_out), version, job.mode)


def run_preinstall(commands: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None,
                   runner: Runner | None = None) -> None:
    """Run the user's preinstall lines, each through /bin/sh, in `cwd`, with a scrubbed env."""
    runner = runner or run_command
    child_env = scrubbed_env(env)
    for command in commands:
        log.info("preinstall: %s", REDACTOR(command))
        proc = runner(["/bin/sh", "-c", command], child_env, Path(cwd))
        _log_output(proc, None)
        if proc.returncode != 0:
            raise InstallError(
                f"preinstall command failed with exit code {proc.returncode}: {command}\n"
                + _tail(proc, None), hint="fix the command in the build spec's preinstall list")


def incompatible_distributions(dest: Path, target: Target) -> list[str]:
    """Installed distributions (normalised names) whose wheel tags `target` cannot load."""
    bad = []
    for wheel in sorted(Path(dest).glob("*.dist-info/WHEEL")):
        tags = [line.split(":", 1)[1].strip()
                for line in wheel.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.startswith("Tag:")]
        if tags and not any(wheel_tag_supported(tag, target) for tag in tags):
            bad.append(_name_version(wheel.parent)[0])
    return bad


def wheel_tag_supported(tag: str, target: Target) -> bool:
    """Whether a wheel tag (`cp311-abi3-manylinux_2_17_x86_64`, compressed sets allowed)
    runs on the target's Python, CPU and glibc."""
    try:
        interpreters, abis, platforms = (part.split(".") for part in tag.split("-"))
    except ValueError:
        return False
    return any(_python_supported(i, a, target) and _platform_supported(p, target)
               for i in interpreters for a in abis for p in platforms)


def _python_supported(interpreter: str, abi: str, target: Target) -> bool:
    minor = int(target.python_version.split(".")[1])
    match = re.fullmatch(r"(py|cp)3(\d*)", interpreter)
    if not match:
        return False
    kind, version = match[1], int(match[2]) if match[2] else None
    if abi == "none":
        return version == minor if kind == "cp" else version is None or version <= minor
    if abi == "abi3":
        return kind == "cp" and version is not None and version <= minor
    return kind == "cp" and version == minor and abi == f"cp3{minor}"


def _platform_supported(platform: str, target: Target) -> bool:
    if platform == "any":
        return True
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if match:
        level, machine = (int(match[1]), int(match[2])), match[3]
    else:
        name, _, machine = platform.partition("_")
        if name not in legacy:
            return False  # linux_x86_64 (built here), musllinux, macOS, Windows
        level = legacy[name]
    return machine == target.machine and level <= target.manylinux


def uv_platform(target: Target) -> str:
    """The newest manylinux level uv accepts that the target also accepts: uv knows no
    manylinux_2_26, so python3.10/3.11 (glibc 2.26) resolve for manylinux_2_17."""
    level = max(level for level in _UV_MANYLINUX if level <= target.manylinux)
    return f"{target.machine}-manylinux_{level[0]}_{level[1]}"


@dataclass(frozen=True)
class _Installer:
    name: str  # "uv" or "pip"
    argv: tuple[str, ...]

    @classmethod
    def choose(cls, installer: str | None) -> _Installer:
        uv = _find_uv() if installer in (None, "uv") else None
        if uv:
            return cls("uv", (uv,))
        if installer == "uv":
            raise InstallError("uv was asked for but is not installed")
        if installer not in (None, "pip"):
            raise ValueError(f"installer must be 'uv' or 'pip', not {installer!r}")
        if importlib.util.find_spec("pip") is None:  # what this runtime itself can import
            raise InstallError("neither uv nor pip is available in this runtime")
        return cls("pip", (sys.executable, "-m", "pip"))

    def version(self, runner: Runner) -> str:
        argv = [*self.argv, "--version"]
        proc = runner(argv, scrubbed_env(), None)
        words = (proc.stdout or "").split()
        if proc.returncode != 0 or len(words) < 2:
            raise InstallError(f"{self.name} is not usable: {' '.join(argv)} failed\n"
                               + _tail(proc, None))
        return f"{words[0]} {words[1]}"


def available_installers(runner: Runner | None = None) -> dict[str, str | None]:
    """Which installers this runtime can use: {"uv": "uv 0.13.9" or None, "pip": ...}."""
    runner = runner or run_command
    found: dict[str, str | None] = {}
    for name in ("uv", "pip"):
        try:
            installer = _Installer.choose(name)
            found[name] = installer.version(runner) if installer.name == name else None
        except (InstallError, OSError):
            found[name] = None
    return found


def _find_uv() -> str | None:
    if importlib.util.find_spec("uv") is None:
        return None
    import uv

    try:
        return uv.find_uv_bin()
    except FileNotFoundError:
        return None


def _fetch_source(url: str, ref: str | None, workdir: Path, token: str | None) -> Path:
    from builder.source import fetch_source

    return fetch_source(url, ref, workdir, token=token).root


@dataclass
class _Job:
    """One installation: builds the command, runs it, checks what it installed."""

    tool: _Installer
    target: Target
    native: bool
    dest: Path
    cache_dir: Path
    work: Path
    requirements: list[Path]  # -r files, then the -c file of runtime-provided pins
    provided: dict[str, str]
    local_names: set[str]
    env: dict[str, str]
    runner: Runner
    shown: str
    secret: str | None

    @property
    def mode(self) -> str:
        if self.native:
            return "native"
        version = self.target.python_version
        if self.tool.name == "uv":
            return (f"cross-platform: {uv_platform(self.target)}, Python {version}, "
                    "binary wheels (pure-Python sdists allowed)")
        return (f"cross-platform: {self.target.pip_platforms()[0]}, Python {version}, "
                "binary wheels only")

    def run(self) -> None:
        """Install. A package whose newest release needs compiling for the target (its
        build failed, or it built a wheel the target cannot load) is retried wheel-only,
        which picks its newest release that has a wheel for the target."""
        only_binary: list[str] = []
        for _ in range(_MAX_ATTEMPTS):
            proc = self.runner(self.command(only_binary), self.env, self.work)
            _log_output(proc, self.secret)
            unusable = self._unusable(proc)
            if not unusable and proc.returncode == 0:
                return
            if not unusable and not only_binary:
                raise self.failure(proc)
            if not unusable or set(unusable) <= set(only_binary):
                break
            log.warning("%s: the newest release needs compiling for %s; trying the newest "
                        "release with a wheel", ", ".join(unusable), self.target.describe())
            only_binary += [name for name in unusable if name not in only_binary]
            _empty(self.dest)
        raise self.needs_compiling(unusable or only_binary, proc)

    def _unusable(self, proc: subprocess.CompletedProcess) -> list[str]:
        if proc.returncode != 0:
            names = {normalise(a or b) for a, b in _FAILED_BUILD.findall(proc.stderr or "")}
            return sorted(names - self.local_names)
        return [] if self.native else incompatible_distributions(self.dest, self.target)

    def command(self, only_binary: Sequence[str]) -> list[str]:
        argv = [*self.tool.argv]
        if self.tool.name == "uv":
            argv += ["pip", "install", "--target", str(self.dest), "--cache-dir",
                     str(self.cache_dir), "--link-mode=copy", "--no-compile-bytecode",
                     "--python", sys.executable, "--no-python-downloads", "--no-progress",
                     "--color", "never"]
            if not self.native:
                argv += ["--python-platform", uv_platform(self.target),
                         "--python-version", self.target.python_version]
        else:
            argv += ["install", "--target", str(self.dest), "--cache-dir", str(self.cache_dir),
                     "--no-compile", "--no-input", "--disable-pip-version-check",
                     "--no-warn-script-location", "--progress-bar", "off"]
            if not self.native:
                argv += ["--only-binary=:all:", "--python-version", self.target.python_version,
                         "--implementation", "cp"]
                argv += [f"--platform={p}" for p in self.target.pip_platforms()]
        for path in self.requirements:
            argv += ["-c" if path.name == _CONSTRAINTS else "-r", str(path)]
        for name in only_binary:
            argv += ["--only-binary", name]
        return argv

    def failure(self, proc: subprocess.CompletedProcess) -> InstallError:
        hint = None
        if self.provided and any(name in (proc.stderr or "") for name in self.provided):
            pins = ", ".join(f"{n} {v}" for n, v in sorted(self.provided.items()))
            hint = (f"the runtime provides {pins}; to bring your own SDK, name boto3 in the "
                    "requirements or set runtime_packages: include")
        return InstallError(
            f"{self.tool.name} failed with exit code {proc.returncode}: "
            f"{_clean(shlex.join(self.command([])), self.secret)}\n" + _tail(proc, self.secret),
            file=self.shown, hint=hint)

    def needs_compiling(self, names: list[str], proc: subprocess.CompletedProcess
                        ) -> InstallError:
        major, minor = self.target.manylinux
        return InstallError(
            f"package {', '.join(names)} needs compiling for the target (no wheel for "
            f"manylinux_{major}_{minor}_{self.target.machine} / Python "
            f"{self.target.python_version})\n" + _tail(proc, self.secret), file=self.shown,
            hint="pin a version with a wheel or build inside Lambda")


class _RequirementFiles:
    """Rewrites requirement files into `work`: `-r`/`-c` includes, `--find-links` and local
    paths made absolute (they must resolve inside the repository: a symlink or `../` may not
    reach the builder's own files), editables made regular installs, and git requirements
    fetched with `fetch_vcs` and replaced by their checkout. Collects the names required."""

    def __init__(self, repo_root: Path, work: Path, *, token: str | None,
                 source_host: str | None, fetch_vcs: FetchVcs) -> None:
        self.work = work
        self.repo_root = repo_root.resolve()
        self.names: set[str] = set()        # normalised names the files require
        self.local_names: set[str] = set()  # those installed from a path or a git checkout
        self._roots = [self.repo_root]
        self._token, self._source_host, self._fetch_vcs = token, source_host, fetch_vcs
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


_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVES = (".whl", ".tar.gz", ".zip")
_LOCATION_OPTIONS = ("-f", "--find-links", "-i", "--index-url", "--extra-index-url")
_OPTION = re.compile(r"^(--[a-z][a-z-]*|-[a-zA-Z])(?:\s*=\s*|\s+|(?=[^\s=]))?(.*)$")
_NAMED_URL = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)(.*)$")


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


def _runtime_provided(runtime_packages: str, names: set[str]) -> dict[str, str]:
    """The pins to constrain to and leave out, or {} when the SDK is the user's own."""
    if runtime_packages == "include":
        log.info("keeping the AWS SDK packages: runtime_packages is 'include'")
        return {}
    named = sorted(names & set(SDK_ROOTS))
    if named:
        log.info("keeping the AWS SDK packages: the requirements name %s", ", ".join(named))
        return {}
    return {normalise(n): v for n, v in provided_versions().items()}


def _write_constraints(work: Path, provided: dict[str, str]) -> Path:
    path = work / _CONSTRAINTS
    path.write_text("".join(f"{n}=={v}\n" for n, v in sorted(provided.items())),
                    encoding="utf-8")
    return path


def _child_env(secret: str | None) -> dict[str, str]:
    env = scrubbed_env()
    if secret:
        env = {k: v for k, v in env.items() if secret not in v}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_REQUIRE_VIRTUALENV"] = "false"
    return env


def _name_version(dist_info: Path) -> tuple[str, str]:
    try:
        text = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
        headers = email.parser.HeaderParser().parsestr(text)
        if headers["Name"] and headers["Version"]:
            return normalise(headers["Name"]), headers["Version"]
    except OSError:
        pass
    name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
    return normalise(name), version


def _distributions(dest: Path) -> list[tuple[str, str]]:
    return [_name_version(d) for d in sorted(dest.glob("*.dist-info"))]


def _remove_distributions(dest: Path, names: set[str]) -> list[str]:
    """Remove the named distributions: exactly the files their RECORD lists."""
    removed = []
    for dist_info in sorted(dest.glob("*.dist-info")):
        name, _ = _name_version(dist_info)
        if name in names:
            _remove_recorded(dest, dist_info)
            removed.append(name)
    return sorted(removed)


def _remove_recorded(dest: Path, dist_info: Path) -> None:
    root = dest.resolve()
    record = dist_info / "RECORD"
    lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
    rows = list(csv.reader(lines))
    parents = set()
    for row in rows:
        path = (dest / row[0]).resolve() if row and row[0] else None
        if path and path.is_relative_to(root) and path != root and path.is_file():
            path.unlink()
            parents.update(p for p in path.parents if p.is_relative_to(root) and p != root)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    shutil.rmtree(dist_info, ignore_errors=True)


def _tidy(dest: Path, *, keep_bin: bool) -> None:
    """Remove what ties the tree to this machine: bin/ scripts with local shebangs, uv's
    `.lock`, and direct_url.json files recording local paths (they would change the zip
    every build)."""
    if not keep_bin:
        shutil.rmtree(dest / "bin", ignore_errors=True)
    (dest / ".lock").unlink(missing_ok=True)
    for direct_url in dest.glob("*.dist-info/direct_url.json"):
        try:
            url = json.loads(direct_url.read_text(encoding="utf-8")).get("url", "")
        except (OSError, ValueError, AttributeError):
            continue
        if url.startswith("file:"):
            direct_url.unlink()
    rewrite_records(dest)


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _clean(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return REDACTOR(text)


def _tail(proc: subprocess.CompletedProcess, secret: str | None) -> str:
    text = (proc.stderr or "").strip() or (proc.stdout or "").strip()
    return _clean("\n".join(text.splitlines()[-_TAIL_LINES:]), secret)


def _log_output(proc: subprocess.CompletedProcess, secret: str | None) -> None:
    for stream in (proc.stdout, proc.stderr):
        for line in (stream or "").splitlines():
            line = _clean(line, secret)
            log.log(logging.INFO if _SUMMARY.match(line) else logging.DEBUG, "  %s", line)
