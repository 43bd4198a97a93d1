"""Installing requirement files into a directory for a Lambda target.

uv (the PyPI package) when it is importable, else `python -m pip`, always with
`--target`, a reusable cache and no bytecode. Natively (inside Lambda, on the target
runtime) it is a plain install; elsewhere the installer resolves for the target's platform
and Python, and every installed wheel is checked against the target afterwards
(builder.wheels).

Requirement files are rewritten into a temporary directory first (builder.requirements):
includes and local paths become absolute and must stay inside the repository, and git
requirements are fetched by lambda3 itself. The token for the source host goes only to
that fetch: never to a child process, file or message.

The boto3 closure the runtime provides is pinned as a constraint and left out of the
result, unless the requirements name boto3/botocore/s3transfer or ask to include it.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder import install_errors
from builder.errors import InstallError
from builder.install_errors import InstallFailure
from builder.nocompiler import NoCompiler
from builder.process import ProcessError, child_env, redact, run, scrubbed_env
from builder.pythons import find_python
from builder.requirements import FetchVcs, RequirementFiles, normalise
from builder.runtimes import SDK_ROOTS, Target, is_native, provided_versions
from builder.strip import rewrite_records
from builder.wheels import incompatible_distributions, installed_distributions, remove_distributions

log = logging.getLogger(__name__)

Runner = Callable[[list[str], dict[str, str], "Path | None"], subprocess.CompletedProcess]

_TAIL_LINES = 20
_CONSTRAINTS = "runtime-provided-constraints.txt"
_MAX_ATTEMPTS = 12  # uv names one package without a wheel per failed resolution
# Platforms `uv pip install --python-platform` knows (uv 0.13): manylinux_2_17, then 2_28+.
_UV_MANYLINUX = ((2, 17), (2, 28)) + tuple((2, minor) for minor in range(31, 41))
_SUMMARY = re.compile(r"^\s*(Resolved|Prepared|Installed|Built|Downloaded|Uninstalled|Audited"
                      r"|Successfully installed|warning|WARNING)\b")
_NO_WHEEL = re.compile(r"Wheels are required for `([A-Za-z0-9][A-Za-z0-9._-]*)`"
                       r"|is disabled, but attempted to build `([A-Za-z0-9][A-Za-z0-9._-]*)`"
                       r"|Building source distributions for `([A-Za-z0-9][A-Za-z0-9._-]*)` is")
# uv's `numpy==2.3.4 has no usable wheels`, `all versions of numpy have no usable wheels`
_NO_USABLE = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)((?:[<>=!~]=?[^\s,]+,?)*) (?:has|have) "
                        r"no usable wheels")
_NOT_COMPATIBLE = re.compile(r"The built wheel `([A-Za-z0-9_.]+)-[^`]*\.whl` is not compatible")
_HASH_MISMATCH = re.compile(r"Hash mismatch for `([^`]+)`"
                            r"|^\s+([A-Za-z0-9][A-Za-z0-9._-]*==\S+) from \S+", re.MULTILINE)
# uv wraps a long line: "Failed to build `name @" may end the line, its path on the next.
_FAILED_BUILD = re.compile(r"Failed to build `([A-Za-z0-9][A-Za-z0-9._-]*)(?:==| @(?:\s|$))"
                           r"|Failed building wheel for ([A-Za-z0-9][A-Za-z0-9._-]*)",
                           re.MULTILINE)


@dataclass(frozen=True)
class InstallResult:
    packages: tuple[tuple[str, str], ...]
    left_out: tuple[str, ...]
    installer: str
    mode: str
    from_source: tuple[str, ...] = ()  # built from an sdist or a local folder
    without_extensions: tuple[str, ...] = ()  # of those, built pure Python (C code optional)


def _runner_for(secret: str | None) -> Runner:
    """The default runner (builder.process.run): each line of output goes to the log as it
    arrives, redacted (`secret` too); the result holds the tails of stdout and stderr,
    checked by the caller."""
    def runner(argv: list[str], env: dict[str, str], cwd: Path | None
               ) -> subprocess.CompletedProcess:
        return run(argv, env=env, cwd=cwd, on_line=_log_line, secrets=[secret], step="install")
    return runner


run_command: Runner = _runner_for(None)


def installer_version(runner: Runner | None = None, *, installer: str | None = None) -> str:
    """`"uv 0.13.9"` or `"pip 24.0"`: the installer `install_requirements` would use."""
    return _Installer.choose(installer).version(runner or run_command)


def install_requirements(requirements: Sequence[Path], dest: Path, target: Target, *,
                         cache_dir: Path, repo_root: Path, runtime_packages: str = "exclude",
                         token: str | None = None, source_host: str | None = None,
                         native: bool | None = None, runner: Runner | None = None,
                         fetch_vcs: FetchVcs | None = None, keep_bin: bool = False,
                         installer: str | None = None,
                         generated: Sequence[tuple[Path, str]] = (), no_deps: bool = False,
                         exclude_newer: str | None = None,
                         index_env: Mapping[str, str] | None = None) -> InstallResult:
    """Install `requirements` into the empty directory `dest` for `target`.

    `generated`: (file, name shown) of requirement lists lambda3 wrote (builder.lockfiles);
    `no_deps`: they are the whole set (a lock), nothing else is resolved; `exclude_newer`:
    uv's cut-off date for what it resolves; `index_env`: the index settings and netrc of
    builder.indexes, for the installer's environment only. Where the requirements carry
    hashes, every file downloaded is checked against them."""
    if runtime_packages not in ("exclude", "include"):
        raise ValueError(f"runtime_packages must be 'exclude' or 'include': {runtime_packages!r}")
    dest, cache_dir = Path(dest).absolute(), Path(cache_dir).absolute()
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"install destination {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    runner = runner or _runner_for(token)
    tool = _Installer.choose(installer)
    version = tool.version(runner)
    native = is_native(target) if native is None else native
    with tempfile.TemporaryDirectory(prefix="lambda3-requirements-") as work:
        files = RequirementFiles(Path(repo_root), Path(work), token=token,
                                 source_host=source_host, fetch_vcs=fetch_vcs)
        rewritten = [files.rewrite(Path(r)) for r in requirements]
        rewritten += [files.rewrite_generated(path, shown) for path, shown in generated]
        provided = _runtime_provided(runtime_packages, files.names)
        if provided and not no_deps:  # a lock's pins are not re-resolved against the runtime's
            rewritten.append(_write_constraints(Path(work), provided))
        flags = _flags(tool.name, rewritten, files.local_names, no_deps, exclude_newer)
        job = _Job(tool=tool, target=target, native=native, dest=dest, cache_dir=cache_dir,
                   work=Path(work), requirements=rewritten, provided=provided,
                   local_names=files.local_names, env={**_child_env(token), **(index_env or {})},
                   runner=runner, secret=token, flags=flags, files=files,
                   shown=", ".join([*(files.shown(Path(r)) for r in requirements),
                                    *(shown for _, shown in generated)]))
        log.info("installing %s for %s with %s (%s)", job.shown, target.describe(), version,
                 job.mode)
        job.run()
        version = version if job.tool == tool else job.tool.version(runner)
    if no_deps:  # a lock's version wins: only what the runtime has in that version is left out
        have = {normalise(n): v for n, v in installed_distributions(dest)}
        provided = {n: v for n, v in provided.items() if have.get(n) == v}
    left_out = remove_distributions(dest, set(provided))
    _tidy(dest, keep_bin=keep_bin)
    packages = tuple(sorted(installed_distributions(dest)))
    log.info("installed %d distributions%s", len(packages),
             f"; left out (the runtime provides them): {', '.join(left_out)}" if left_out else "")
    installed = {name for name, _ in packages}
    return InstallResult(packages, tuple(left_out), version, job.mode,
                         tuple(sorted(set(job.built) & installed)),
                         tuple(sorted(set(job.pure_python) & installed)))


def run_preinstall(commands: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None,
                   runner: Runner | None = None, secret: str | None = None) -> None:
    """Run the user's preinstall lines, each as `/bin/sh -c LINE` in `cwd`, in the child
    environment of builder.process (nothing of `secret` or any credential reaches them)."""
    runner = runner or _runner_for(secret)
    environment = child_env(env, secrets=[secret])
    for command in commands:
        log.info("preinstall: %s", redact(command, [secret]))
        proc = runner(["/bin/sh", "-c", command], environment, Path(cwd))
        if proc.returncode != 0:
            raise ProcessError(proc.args, proc.stderr or proc.stdout or "", proc.returncode,
                               what="preinstall command", secrets=[secret], step="install",
                               hint="fix the command in the build spec's preinstall list")


def uv_platform(target: Target) -> str:
    """The newest manylinux level uv accepts that the target also accepts: uv knows no
    manylinux_2_26, so python3.10/3.11 (glibc 2.26) resolve for manylinux_2_17."""
    level = _uv_level(target)
    return f"{target.machine}-manylinux_{level[0]}_{level[1]}"


def _uv_level(target: Target) -> tuple[int, int]:
    return max(level for level in _UV_MANYLINUX if level <= target.manylinux)


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
    flags: tuple[str, ...] = ()
    files: RequirementFiles | None = None
    built: list[str] = field(default_factory=list)
    pure_python: list[str] = field(default_factory=list)
    _no_compiler: NoCompiler | None = None

    @property
    def strict(self) -> bool:
        """Whether the first attempt takes wheels only and sdists are opted into per package
        (uv, cross-platform: pip with --platform takes wheels only, full stop)."""
        return not self.native and self.tool.name == "uv"

    @property
    def mode(self) -> str:
        if self.native:
            return "native"
        version = self.target.python_version
        if self.tool.name == "uv":
            return (f"cross-platform: {uv_platform(self.target)}, Python {version}, "
                    "binary wheels (sdists only for packages with no wheel)")
        return (f"cross-platform: {self.target.pip_platforms()[0]}, Python {version}, "
                "binary wheels only")

    def run(self) -> None:
        """Install, adjusting and repeating until the result is usable.

        Cross-platform with uv, the first attempt takes wheels only (otherwise uv would
        compile the newest numpy rather than take the newest release with a wheel for the
        target). A package uv reports as having no usable wheel is looked up on the index:
        when its wheels only need a newer glibc the install fails at once; otherwise it may
        build from source, with a Python of the target's version and no compiler
        (builder.nocompiler), which is right for pure-Python sdists and for optional C
        speedups, and fails the install in seconds for the others. Natively, a package
        whose newest release fails to build (Lambda has no compiler) is retried wheel-only,
        which picks its newest release with a wheel.
        """
        wheels_only = sorted(self._options("only_binary"))
        from_source = self._first_from_source()
        for _ in range(_MAX_ATTEMPTS):
            proc = self.runner(self.command(wheels_only, from_source), self._env(), self.work)
            fresh = {n: spec for n, spec in self._no_wheel(proc).items()
                     if n not in from_source and n not in wheels_only}
            if fresh:
                if self._judge_on_index(fresh):
                    from_source = []  # switched to pip, which builds nothing cross-platform
                else:
                    log.info("%s: no wheel for %s; building from source", ", ".join(sorted(fresh)),
                             self.target.describe())
                    from_source += sorted(fresh)
                _empty(self.dest)
                continue
            unusable = self._unusable(proc)
            if not unusable and proc.returncode == 0:
                self._report_built(from_source)
                return
            built = sorted(set(unusable) & set(from_source))
            if built and (not self.native or set(built) & self._options("no_binary")):
                raise self._build_error(built, proc)
            stuck = sorted(set(unusable) & set(from_source + wheels_only))
            if stuck or (not unusable and wheels_only):
                raise self.needs_compiling(stuck or wheels_only, proc)
            if not unusable:
                raise self.failure(proc)
            log.warning("%s: the newest release needs compiling for %s; trying the newest "
                        "release with a wheel", ", ".join(unusable), self.target.describe())
            wheels_only += unusable
            _empty(self.dest)
        raise self.needs_compiling(wheels_only + from_source, proc)

    def _options(self, kind: str) -> set[str]:
        """Names the requirement lines gave `--no-binary`/`--only-binary` (builder.requirements)."""
        return set(getattr(self.files.options, kind)) if self.files else set()

    def _first_from_source(self) -> list[str]:
        asked = self._options("no_binary")
        if asked and not self.native and self.tool.name == "pip":
            log.warning("--no-binary %s: not applied: pip builds nothing for another platform",
                        ", ".join(sorted(asked)))
            return []
        return sorted(self.local_names | asked) if self.strict else sorted(asked)

    def _env(self) -> dict[str, str]:
        """The installer's environment; cross-platform with uv, sdists build without a
        compiler (builder.nocompiler)."""
        if not self.strict:
            return self.env
        if self._no_compiler is None:
            self._no_compiler = NoCompiler(self.work)
        return self._no_compiler.env(self.env)

    @property
    def python(self) -> str:
        """The interpreter uv builds sdists with: one of the target's version if found."""
        if self.native or self.tool.name != "uv":
            return sys.executable
        return find_python(self.target.python_version, self.tool.argv[0]) or sys.executable

    def _no_wheel(self, proc: subprocess.CompletedProcess) -> dict[str, str]:
        """Packages a wheels-only attempt failed on because they have no usable wheel, with
        the range uv looked in (`==2.3.4`; "" for all versions)."""
        if not self.strict or proc.returncode == 0:
            return {}
        text = proc.stderr or ""
        ranges = {normalise(name): spec for name, spec in _NO_USABLE.findall(text)}
        names = {normalise(next(filter(None, found))) for found in _NO_WHEEL.findall(text)}
        return {name: ranges.get(name, "") for name in names}

    def _judge_on_index(self, fresh: dict[str, str]) -> bool:
        """Raise when the index shows a package's wheels only need a newer glibc (a build
        would only fail after compiling for minutes); True after switching to pip for one
        whose wheels the target loads but uv cannot select (no manylinux_2_26 in uv)."""
        from builder.wheel_index import compiled_release, describe, index_url  # urllib: lazily

        index = index_url(self.env, self.files.index_url if self.files else None)
        for name, spec in sorted(fresh.items()):
            verdict = compiled_release(name, spec, self.target, index,
                                       selectable=_uv_level(self.target))
            if verdict is None:
                continue
            if verdict.loadable:
                return self._switch_to_pip(name, verdict.version)
            message, hint = describe(verdict, self.target)
            where = self.where(name)
            raise InstallFailure(message, file=where[0], line=where[1], hint=hint)
        return False

    def _switch_to_pip(self, name: str, version: str) -> bool:
        problem = (f"{name} {version} has wheels {self.target.runtime} loads, but uv knows no "
                   "manylinux platform between 2_17 and 2_28 to select them")
        try:
            pip = _Installer.choose("pip")
        except InstallError:
            pip = None
        if pip is None or self.local_names or self._options("no_binary"):
            where = self.where(name)
            raise InstallFailure(problem, file=where[0], line=where[1],
                                 hint=f"pin a release of {name} with manylinux2014 wheels")
        log.warning("%s: installing with pip, which is given every platform the target loads",
                    problem)
        self.tool = pip
        return True

    def _unusable(self, proc: subprocess.CompletedProcess) -> list[str]:
        if proc.returncode != 0:
            names = {normalise(a or b) for a, b in _FAILED_BUILD.findall(proc.stderr or "")}
            return sorted(names - (self.local_names if self.native else set()))
        return [] if self.native else incompatible_distributions(self.dest, self.target)

    def _build_error(self, built: list[str], proc: subprocess.CompletedProcess
                     ) -> InstallError:
        """Built from source and failed: "needs compiling" for a package whose build ran a
        compiler or made a wheel tied to this machine, else the package's own error."""
        compiled = self._compiled(built, proc)
        if compiled:
            return self.needs_compiling(sorted(compiled), proc)
        name = built[0]
        version = self.target.python_version if self.python != sys.executable or \
            self.native else f"{sys.version_info.major}.{sys.version_info.minor}"
        return install_errors.build_failed(name, version, self.where(name), self._text(proc))

    def _compiled(self, names: list[str], proc: subprocess.CompletedProcess) -> set[str]:
        if proc.returncode == 0:
            return set(names)  # built, but for this machine only
        text = proc.stderr or ""
        found = {normalise(wheel) for wheel in _NOT_COMPATIBLE.findall(text)}
        if self._no_compiler is not None:
            local = self.files.local_paths if self.files else {}
            found |= self._no_compiler.callers({n: local.get(n) for n in names})
        return found & set(names)

    def _report_built(self, from_source: list[str]) -> None:
        self.built = sorted(from_source)
        if self._no_compiler is None or not from_source:
            return
        local = self.files.local_paths if self.files else {}
        self.pure_python = sorted(self._no_compiler.callers(
            {n: local.get(n) for n in from_source}))
        for name in self.pure_python:
            log.warning("%s: built pure Python, without its optional C extension: a "
                        "cross-platform build compiles nothing for %s", name,
                        self.target.describe())

    def where(self, name: str) -> tuple[str | None, int | None]:
        """The user's file and line that asked for `name` (just the files for a dependency
        of another package)."""
        if self.files and name in self.files.origins:
            return self.files.origins[name]
        return self.shown, None

    def _text(self, proc: subprocess.CompletedProcess) -> str:
        """The installer's output, redacted, the temporary copies named as the user's files."""
        text = redact((proc.stderr or "").strip() or (proc.stdout or "").strip(), [self.secret])
        return self.files.translate(text) if self.files else text

    def command(self, wheels_only: Sequence[str], from_source: Sequence[str] = ()) -> list[str]:
        argv = [*self.tool.argv]
        if self.tool.name == "uv":
            argv += ["pip", "install", "--target", str(self.dest), "--cache-dir",
                     str(self.cache_dir), "--link-mode=hardlink", "--no-compile-bytecode",
                     "--python", self.python, "--no-python-downloads", "--no-progress",
                     "--color", "never"]
            if not self.native:
                argv += ["--python-platform", uv_platform(self.target),
                         "--python-version", self.target.python_version,
                         "--only-binary", ":all:"]
        else:
            argv += ["install", "--target", str(self.dest), "--cache-dir", str(self.cache_dir),
                     "--no-compile", "--no-input", "--disable-pip-version-check",
                     "--no-warn-script-location", "--progress-bar", "off"]
            if not self.native:
                argv += ["--only-binary=:all:", "--python-version", self.target.python_version,
                         "--implementation", "cp"]
                argv += [f"--platform={p}" for p in self.target.pip_platforms()]
        argv += self.flags
        for name, setting in self.files.options.config_settings if self.files else ():
            argv += ["--config-settings-package", f"{name}:{setting}"] \
                if self.tool.name == "uv" else ["--config-settings", setting]
        for path in self.requirements:
            argv += ["-c" if path.name == _CONSTRAINTS else "-r", str(path)]
        for name in from_source:
            argv += ["--no-binary", name]
        for name in wheels_only:
            argv += ["--only-binary", name]
        return argv

    def failure(self, proc: subprocess.CompletedProcess) -> Exception:
        mismatch = _HASH_MISMATCH.search(proc.stderr or "")
        if mismatch:
            return InstallFailure(
                f"hash mismatch for {mismatch[1] or mismatch[2]}: the file downloaded is not "
                "the one the lock or requirements file records", detail=self._text(proc),
                file=self.shown, hint="lock again if the package was re-published; otherwise "
                "the index serves another file than the one locked")
        hint = None
        if self.provided and any(name in (proc.stderr or "") for name in self.provided):
            pins = ", ".join(f"{n} {v}" for n, v in sorted(self.provided.items()))
            hint = (f"the runtime provides {pins}; to bring your own SDK, name boto3 in the "
                    "requirements or set runtime_packages: include")
        log.debug("install: %s failed with exit code %s: %s", self.tool.name, proc.returncode,
                  redact(" ".join(map(str, proc.args)), [self.secret]))
        text = self._text(proc)
        where = (self.files.located(proc.stderr or "") if self.files else None) or (
            self.shown, None)
        return install_errors.installer_failed(self.tool.name, text, where, hint)

    def needs_compiling(self, names: list[str], proc: subprocess.CompletedProcess
                        ) -> InstallError:
        name = names[0]
        asked = self.files.options.no_binary.get(name) if self.files else None
        return install_errors.needs_compiling(
            names, self.target, self.where(name),
            install_errors.package_output(self._text(proc), lines=6),
            local=name in self.local_names, asked=asked)


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


def _flags(installer: str, files: Sequence[Path], local: set[str], no_deps: bool,
           exclude_newer: str | None) -> tuple[str, ...]:
    """Options for hash checks, a locked set and a resolution date. Hashes present: uv
    checks every hash given and, unless a local package (which has no hash) is installed,
    requires one for every file (`--require-hashes`); a locked set installs with
    `--no-deps`, so every file is one the lock lists with its hashes. pip requires hashes
    for all once one is given, so it cannot install local packages with them."""
    hashed = any("--hash" in path.read_text(encoding="utf-8") for path in files)
    flags = ["--no-deps"] if no_deps else []
    if hashed and installer == "pip" and local:
        raise InstallError(f"pip cannot check hashes and install the local packages "
                           f"{', '.join(sorted(local))} in one go", hint="install uv "
                           "(the builder's toolchain has it), or drop the hashes")
    if hashed and installer == "uv" and not local:
        flags.append("--require-hashes")
    if exclude_newer and installer == "uv":
        flags += ["--exclude-newer", exclude_newer]
    elif exclude_newer:
        log.warning("exclude_newer %s is not applied: pip has no such option", exclude_newer)
    return tuple(flags)


def _write_constraints(work: Path, provided: dict[str, str]) -> Path:
    path = work / _CONSTRAINTS
    path.write_text("".join(f"{n}=={v}\n" for n, v in sorted(provided.items())),
                    encoding="utf-8")
    return path


def _child_env(secret: str | None) -> dict[str, str]:
    env = child_env(secrets=[secret])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_REQUIRE_VIRTUALENV"] = "false"
    return env


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


def _tail(proc: subprocess.CompletedProcess, secret: str | None) -> str:
    text = (proc.stderr or "").strip() or (proc.stdout or "").strip()
    return redact("\n".join(text.splitlines()[-_TAIL_LINES:]), [secret])


def _log_line(line: str) -> None:
    """One line of a child's output (already redacted), as it arrives: the installer's
    summary lines at INFO, the rest at DEBUG."""
    log.log(logging.INFO if _SUMMARY.match(line) else logging.DEBUG, "  %s", line)
