"""The build pipeline: fetch -> spec -> install -> strip -> package, no AWS involved.

`build(options)` turns a repository at a ref into the zips that would be deployed and
reports, for each component, its CodeSha256, sizes and file count. Installed dependency
trees are cached in the work dir, apart for each repository, keyed by the content of every
input that decides the installed files (requirement files and their includes, local wheels
and package folders, the target, the installer and its version), so an unchanged set is
neither installed nor zipped again.

A build file with several functions (`functions:`) is built function by function from one
fetch: each function gets its own zip and dependencies layer (in `<out>/<key>/`) and its own
`BuildOutput` in `BuildOutput.parts`; a custom layer several functions list is built once
(in `<out>/`), and the dependency and installer caches serve every function, so a function
whose inputs did not change costs a cache lookup.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from builder import limits
from builder.errors import InstallError, LimitError, SpecError
from builder.package import (
    Entry,
    ZipStats,
    ensure_free_space,
    entry_for,
    make_zip,
    no_space,
    walk_entries,
    zip_stats,
)
from builder.runtimes import (
    RuntimeBlocked,
    Target,
    deprecation_warning,
    is_native,
    make_target,
    provided_versions,
)
from builder.schema import format_path
from builder.timing import Timings

log = logging.getLogger(__name__)

DEFAULT_RUNTIME = "python3.12"
DEPS_CACHE_VERSION = "3"
DEPS_CACHE_KEEP = 8  # dependency sets kept per repository
MIN_INSTALL_SPACE = 64 * limits.MB  # free in the work dir before an install starts


@dataclass(frozen=True)
class BuildOptions:
    repository: str  # an https git URL, or a local path on a laptop
    workdir: Path
    ref: str | None = None
    out_dir: Path | None = None
    build_file: str | None = None
    components: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)
    refresh: bool = False
    # private index credentials, (host, "user:password"): builder.indexes
    index_credentials: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    codeartifact: object = field(default=None, repr=False)  # a boto3 client; None: made here
    functions: tuple[str, ...] = ()  # keys of the build file's functions to build; () all
    # called with the Spec of each function to build once the build file is read, before
    # anything is installed or run (the builder checks its allow-list there)
    check: Callable[[list], None] | None = field(default=None, compare=False, repr=False)
    today: date | None = None  # the date runtime deprecation is judged on; None: today

    @property
    def repository_key(self) -> str:
        """Which repository this is, without credentials: see `repository_key`."""
        return repository_key(self.repository)


def repository_key(source: str) -> str:
    """An https source as `https://host[:port]/path` (lowercase host, no credentials,
    query, fragment, trailing `/` or `.git`); a local one as its resolved path."""
    if not source.lower().startswith(("http://", "https://")):
        return str(Path(source).expanduser().resolve())
    parts = urlsplit(source)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    return f"{parts.scheme.lower()}://{host}{port}{path}"


@dataclass(frozen=True)
class Artifact:
    name: str  # "function", "dependencies" or a custom layer's key
    kind: str  # "function" or "layer"
    zip_path: Path
    stats: ZipStats
    reused: bool = False  # taken from the dependency cache, not installed this time

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "zip": str(self.zip_path),
            "code_sha256": self.stats.code_sha256,
            "size": self.stats.size,
            "unzipped_size": self.stats.unzipped_size,
            "files": self.stats.files,
        }


@dataclass
class BuildOutput:
    commit: str | None
    source: str
    spec: object  # builder.spec.Spec
    target: Target
    artifacts: list[Artifact]
    timings: Timings
    install: dict | None = None
    warnings: list[str] = field(default_factory=list)
    committed_at: int | None = None  # unix seconds of the commit
    key: str = "function"  # the function built: `function`, or its key in `functions:`
    parts: list[BuildOutput] = field(default_factory=list)  # one per function (functions:)

    def each(self) -> list[BuildOutput]:
        """One output per function built: the parts, or this output itself."""
        return self.parts or [self]

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_json(self) -> dict:
        data = {
            "commit": self.commit,
            "target": self.target.describe(),
            "components": [a.to_json() for a in self.artifacts],
            "install": self.install,
            "warnings": self.warnings,
            "timings": self.timings.as_dict(),
        }
        if self.parts:
            data["functions"] = [{"key": part.key, "target": part.target.describe(),
                                  "components": [a.to_json() for a in part.artifacts],
                                  "install": part.install} for part in self.parts]
        return data


def build(options: BuildOptions, *, runner=None, timings: Timings | None = None) -> BuildOutput:
    from builder.source import fetch_source, remove_checkout

    timings = timings or Timings()
    with timings.step("fetch"):
        checkout = fetch_source(options.repository, options.ref, options.workdir,
                                token=options.token)
    try:
        return _build_checkout(options, checkout, runner, timings)
    finally:
        remove_checkout(checkout)  # a fresh one per request; the zips are in out_dir


def _build_checkout(options: BuildOptions, checkout, runner, timings: Timings) -> BuildOutput:
    from builder.spec import load_spec

    with timings.step("spec"):
        spec = load_spec(checkout.root, options.build_file)
        selected = select_components(spec, options.components)
        views = [spec.for_function(key) for key in select_functions(spec, options.functions)]
        if options.check is not None:
            options.check(views)
    out_dir = options.out_dir or options.workdir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not spec.functions:
        return _build_function_part(options, checkout, spec, selected, out_dir, runner,
                                    timings, {})
    layers: dict[str, Artifact] = {}  # custom layers built once, whoever lists them
    parts = [_build_function_part(options, checkout, view, selected, out_dir / view.key,
                                  runner, timings, layers, layers_dir=out_dir)
             for view in views if selected & set(view.component_names())]
    if not parts:
        raise SpecError(f"none of the functions chosen ({', '.join(v.key for v in views)}) "
                        f"has the components asked for ({', '.join(sorted(selected))})",
                        file=spec.file, key="components")
    unique = {id(a): a for part in parts for a in part.artifacts}
    return BuildOutput(checkout.commit, checkout.source, spec, parts[0].target,
                       list(unique.values()), timings,
                       warnings=[f"{p.key}: {w}" for p in parts for w in p.warnings],
                       committed_at=checkout.committed_at, key="", parts=parts)


def _build_function_part(options: BuildOptions, checkout, spec, selected: set[str],
                         out_dir: Path, runner, timings: Timings, layers: dict[str, Artifact],
                         *, layers_dir: Path | None = None) -> BuildOutput:
    """One function's zips: its dependencies, the custom layers it lists (taken from
    `layers` when another function built them already), its own package."""
    target = target_of(spec)
    deprecated = runtime_warning(spec, target, options.today or date.today())
    out_dir.mkdir(parents=True, exist_ok=True)
    output = BuildOutput(checkout.commit, checkout.source, spec, target, [], timings,
                         committed_at=checkout.committed_at, key=spec.key)
    if deprecated:
        output.warnings.append(deprecated)
    context = _Context(options, checkout.root, out_dir, target, runner, timings, spec)
    if "dependencies" in selected and spec.dependencies is not None:
        artifact, output.install = _build_dependencies(context, spec)
        output.warnings.extend(output.install.get("warnings") or [])
        output.artifacts.append(artifact)
    for layer in spec.layers:
        if layer.key in selected:
            if layer.key not in layers:
                shared = replace(context, out_dir=layers_dir or out_dir)
                layers[layer.key] = _build_custom_layer(shared, layer)
            output.artifacts.append(layers[layer.key])
    if "function" in selected:
        output.artifacts.append(_build_function(context, spec))
    output.warnings.extend(check_limits(output.artifacts))
    return output


def select_components(spec, requested: Sequence[str]) -> set[str]:
    available = spec.component_names()
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise SpecError(
            f"unknown component {', '.join(map(repr, unknown))}; this build file has: "
            f"{', '.join(available)}",
            file=spec.file, key="components",
        )
    return set(requested or available)


def select_functions(spec, requested: Sequence[str]) -> tuple[str, ...]:
    """The keys to build, in build-file order; all when none are asked for."""
    available = spec.function_keys()
    unknown = [key for key in requested if key not in available]
    if unknown:
        raise SpecError(
            f"unknown function {', '.join(map(repr, unknown))}; this build file has: "
            f"{', '.join(available)}", file=spec.file, key="functions",
            hint="name functions by their key under `functions:` (`function` for the "
                 "single `function:` form)")
    return tuple(key for key in available if not requested or key in requested)


def runtime_warning(spec, target: Target, today: date) -> str | None:
    """A warning when the target runtime is deprecated on `today`; a SpecError at the
    build file's runtime once Lambda blocks updates on it."""
    try:
        return deprecation_warning(target.runtime, today)
    except RuntimeBlocked as blocked:
        at = format_path(spec.function_at)
        named = {key for key, _ in spec.lines}
        key = f"{at}.runtime" if f"{at}.runtime" in named or f"{at}.runtimes" not in named \
            else f"{at}.runtimes"
        raise SpecError(f"{key}: {blocked}", file=spec.file, key=key, line=spec.line_of(key),
                        hint="change the function's runtime in the build file") from None


def target_of(spec) -> Target:
    function = spec.function
    return make_target(function.runtime or DEFAULT_RUNTIME, function.architecture or "x86_64")


@dataclass(frozen=True)
class _Context:
    options: BuildOptions
    repo: Path
    out_dir: Path
    target: Target
    runner: object
    timings: Timings
    spec: object

    def stage(self, name: str) -> Path:
        path = self.options.workdir / "stage" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


def _build_function(ctx: _Context, spec) -> Artifact:
    entries = _collect(ctx.repo, spec, "function")
    with ctx.timings.step("package"):
        stats = make_zip(entries, ctx.out_dir / "function.zip")
    log.info("function: %d files, %s zipped", stats.files, limits.human(stats.size))
    return Artifact("function", "function", ctx.out_dir / "function.zip", stats)


def _build_custom_layer(ctx: _Context, layer) -> Artifact:
    from builder.install import run_preinstall

    if layer.preinstall:
        with ctx.timings.step("preinstall"):
            log.info("layer %s: running %d preinstall command(s)", layer.key, len(layer.preinstall))
            run_preinstall(layer.preinstall, ctx.repo, runner=ctx.runner,
                           secret=ctx.options.token)
    entries = _collect(ctx.repo, ctx.spec, layer.key)
    dest = ctx.out_dir / f"{layer.key}.zip"
    with ctx.timings.step("package"):
        stats = make_zip(entries, dest)
    log.info("layer %s: %d files, %s zipped", layer.key, stats.files, limits.human(stats.size))
    return Artifact(layer.key, "layer", dest, stats)


def _collect(repo: Path, spec, component: str) -> list[Entry]:
    """The component's files, path-checked by the spec (symlinks that a preinstall command
    made to outside the repository are refused here), without caches or bytecode."""
    from builder.paths import collect_files

    return [entry_for(name, path) for name, path in collect_files(repo, spec, component)
            if not _is_cache(name)]


def _is_cache(name: str) -> bool:
    return "__pycache__" in name.split("/") or name.endswith((".pyc", ".pyo"))


def _build_dependencies(ctx: _Context, spec) -> tuple[Artifact, dict]:
    deps = spec.dependencies
    key, requirement_files = _deps_cache_key(ctx, deps)
    cache_dir = _deps_cache_dir(ctx)
    cached_zip, cached_meta = cache_dir / f"{key}.zip", cache_dir / f"{key}.json"
    dest = ctx.out_dir / "dependencies.zip"
    if cached_zip.exists() and cached_meta.exists() and not ctx.options.refresh:
        _copy(cached_zip, dest)
        cached_meta.touch()
        log.info("dependencies: unchanged requirements, reusing the installed set (%s)", key[:12])
        info = json.loads(cached_meta.read_text())
        return Artifact("dependencies", "layer", dest, zip_stats(dest), reused=True), info
    ensure_free_space(ctx.options.workdir, MIN_INSTALL_SPACE, "installing the dependencies",
                      InstallError)
    info = _install_dependencies(ctx, deps, requirement_files, dest)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _prune(cache_dir, DEPS_CACHE_KEEP - 1)
    _copy(dest, cached_zip)
    cached_meta.write_text(json.dumps(info, sort_keys=True))
    return Artifact("dependencies", "layer", dest, zip_stats(dest)), info


def _install_dependencies(ctx: _Context, deps, inputs: _DepsInputs, dest: Path) -> dict:
    from builder.indexes import installer_environment
    from builder.install import install_requirements
    from builder.source import source_host
    from builder.strip import strip_tree

    stage = ctx.stage("dependencies")
    site = stage / "python"
    with ctx.timings.step("install"), installer_environment(inputs.indexes) as index_env:
        result = install_requirements(
            list(inputs.set.requirements), site, ctx.target,
            cache_dir=ctx.options.workdir / "cache" / "installer",
            repo_root=ctx.repo, runtime_packages=deps.runtime_packages,
            token=ctx.options.token, source_host=source_host(ctx.options.repository),
            runner=ctx.runner, fetch_vcs=inputs.fetch, generated=inputs.set.generated(),
            no_deps=inputs.set.locked, index_env=index_env,
            exclude_newer=None if inputs.set.locked else deps.exclude_newer,
        )
    log.info("dependencies: %d packages with %s, %s", len(result.packages), result.installer,
             result.mode)
    if result.left_out:
        log.info("dependencies: left to the runtime: %s", ", ".join(result.left_out))
    with ctx.timings.step("strip"):
        stripped = strip_tree(site, keep=deps.keep, exclude=deps.exclude) if deps.strip else None
    compiled = _compile_dependencies(ctx, site) if deps.bytecode else None
    with ctx.timings.step("package"):
        stats = make_zip(walk_entries(site, "python", bytecode=bool(compiled)), dest)
    log.info("dependencies: %d files, %s zipped, %s unzipped", stats.files,
             limits.human(stats.size), limits.human(stats.unzipped_size))
    info = asdict(result)
    info["warnings"] = inputs.set.warnings
    info["stripped"] = asdict(stripped) if stripped else None
    info["bytecode"] = compiled
    return info


def _compile_dependencies(ctx: _Context, site: Path) -> int | None:
    """Compile the installed tree for the target's Python, where this Python is that version
    (always inside Lambda): the number of modules compiled, or None with a warning."""
    from builder.bytecode import compile_bytecode
    from builder.install import scrubbed_env

    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != ctx.target.python_version:
        log.warning("dependencies: bytecode skipped: this build runs Python %s and the target "
                    "is Python %s (bytecode is per Python version; build inside Lambda or with "
                    "Python %s)", here, ctx.target.python_version, ctx.target.python_version)
        return None
    with ctx.timings.step("bytecode"):
        compiled = compile_bytecode(site, "/opt/python", env=scrubbed_env())
    log.info("dependencies: %d modules compiled to bytecode for Python %s", compiled, here)
    return compiled


def _copy(source: Path, dest: Path) -> None:
    """Copy a zip whole or not at all; no room for it is a PackageError with the figures."""
    size = source.stat().st_size
    dest.parent.mkdir(parents=True, exist_ok=True)
    ensure_free_space(dest.parent, size, f"copying {dest.name}")
    partial = dest.with_name(dest.name + ".partial")
    try:
        shutil.copyfile(source, partial)
        partial.replace(dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(dest.parent, size, f"copying {dest.name}") from None
        raise


def _deps_cache_dir(ctx: _Context) -> Path:
    """The cache of this repository's dependency sets: no other repository reads or
    replaces them."""
    name = hashlib.sha256(ctx.options.repository_key.encode()).hexdigest()[:32]
    return ctx.options.workdir / "cache" / "deps" / name


@dataclass(frozen=True)
class _DepsInputs:
    """What the dependency set is made from: requirements files and exported projects
    (builder.lockfiles), the git requirements' checkouts, the indexes."""

    set: object  # builder.lockfiles.DependencySet
    fetch: object  # builder.requirements.RecordingFetch
    indexes: object  # builder.indexes.Indexes


def _deps_inputs(ctx: _Context, deps) -> _DepsInputs:
    from builder.indexes import Indexes, parse_credentials
    from builder.lockfiles import Selection, dependency_set
    from builder.requirements import RecordingFetch

    entries = [ctx.repo / name for name in deps.requirements]
    work = ctx.stage("exports")
    found = dependency_set(entries, ctx.repo, Selection(deps.groups, deps.extras), work,
                           runner=ctx.runner)
    credentials = parse_credentials(dict(ctx.options.index_credentials))
    indexes = Indexes(deps.index_url, deps.extra_index_urls, credentials)
    if deps.codeartifact is not None:
        indexes = _codeartifact(ctx, deps, credentials)
    return _DepsInputs(found, RecordingFetch(ctx.options.workdir / "git-requirements"), indexes)


def _codeartifact(ctx: _Context, deps, credentials):
    """The CodeArtifact repository as the index, with a token of the builder's own role."""
    from builder.indexes import Indexes, codeartifact_index

    client = ctx.options.codeartifact
    if client is None:
        from builder.clients import Clients

        client = Clients.from_environ().client("codeartifact")
    url, credential = codeartifact_index(deps.codeartifact, client)
    return Indexes(url, deps.extra_index_urls, (*credentials, credential))


def _deps_cache_key(ctx: _Context, deps) -> tuple[str, _DepsInputs]:
    from builder.indexes import cache_identity
    from builder.install import installer_version
    from builder.source import source_host

    inputs = _deps_inputs(ctx, deps)
    repo = ctx.repo.resolve()
    digest = hashlib.sha256()
    closure = _requirement_closure(list(inputs.set.requirements), repo, inputs.fetch,
                                   ctx.options.token, source_host(ctx.options.repository))
    named = [(path.relative_to(repo).as_posix(), path) for path in closure]
    for name, item in named + inputs.set.key_inputs(repo):
        _hash_key_input(digest, name, item)
    settings = {
        "git": sorted(inputs.fetch.commits.items()), "indexes": cache_identity(inputs.indexes),
        "groups": list(deps.groups), "extras": list(deps.extras),
        "exclude_newer": deps.exclude_newer,
        "v": DEPS_CACHE_VERSION, "repository": ctx.options.repository_key,
        "target": ctx.target.describe(), "native": is_native(ctx.target),
        "installer": installer_version(ctx.runner), "provided": provided_versions(),
        "runtime_packages": deps.runtime_packages, "strip": deps.strip,
        "bytecode": sys.version if deps.bytecode else None,
        "keep": list(deps.keep), "exclude": list(deps.exclude),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest(), inputs


def _requirement_closure(files: list[Path], repo: Path, fetch=None, token: str | None = None,
                         source_host: str | None = None) -> list[Path]:
    """The requirements files, every file they include and every local wheel or package
    folder they install from, inside the repository, in a stable order; git requirements
    fetched with `fetch` (a RecordingFetch, which learns their commits)."""
    from builder.requirements import requirement_inputs

    return requirement_inputs(files, repo, fetch_vcs=fetch, token=token,
                              source_host=source_host)


def _hash_key_input(digest, name: str, item: Path | str) -> None:
    """A folder or archive as `_hash_input` reads it; a text file (requirements, pyproject,
    lock) or an export's text without the credentials of the URLs in it, so that a token
    in an index URL does not change the key."""
    from builder.indexes import strip_credentials

    if isinstance(item, Path) and (item.is_dir() or not item.is_file()
                                   or item.name.endswith((".whl", ".tar.gz", ".zip"))):
        _hash_input(digest, item, name)
        return
    text = item if isinstance(item, str) else item.read_bytes().decode("utf-8", "replace")
    digest.update(b"T" + name.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(strip_credentials(text).encode("utf-8", "surrogateescape") + b"\0")


def _hash_input(digest, path: Path, name: str) -> None:
    """Name and content of a file, or of every file under a folder (as an installer would
    read it: .git and bytecode left out), streamed."""
    if path.is_dir():
        for directory, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__"))
            for filename in sorted(f for f in filenames if not f.endswith((".pyc", ".pyo"))):
                child = Path(directory, filename)
                _hash_input(digest, child, f"{name}/{child.relative_to(path).as_posix()}")
        return
    digest.update(b"F" + name.encode("utf-8", "surrogateescape") + b"\0")
    if not path.is_file():
        digest.update(b"missing\0")
        return
    digest.update(str(path.stat().st_size).encode() + b"\0")
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def _prune(cache_dir: Path, keep: int = DEPS_CACHE_KEEP) -> None:
    """Keep the `keep` sets used last (first, to make room for the one being added)."""
    metas = sorted(cache_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for meta in metas[keep:]:
        meta.unlink(missing_ok=True)
        meta.with_suffix(".zip").unlink(missing_ok=True)


def check_limits(artifacts: Sequence[Artifact]) -> list[str]:
    """Raise on what cannot be deployed; return warnings for what needs S3."""
    function = next((a for a in artifacts if a.kind == "function"), None)
    layers = [a for a in artifacts if a.kind == "layer"]
    sized = [limits.Sized(a.name, a.stats.size, a.stats.unzipped_size) for a in layers]
    fn = limits.Sized("function", function.stats.size, function.stats.unzipped_size) \
        if function else None
    problems = limits.check_total(fn, sized)
    if problems:
        raise LimitError("; ".join(problems))
    return [
        f"{a.name} is {limits.human(a.stats.size)} zipped, over the "
        f"{limits.human(limits.DIRECT_UPLOAD_LIMIT)} direct-upload limit: it goes through S3"
        for a in artifacts if limits.needs_s3(a.stats.size)
    ]
