"""The build file (build.yaml, build.yml or build.json): loading, validation, the dataclasses.

`load_spec` finds the build file, parses it (builder.buildfile), validates it against
build.schema.json (with builder.schema, no dependency), normalises it into frozen
dataclasses and checks that every listed path exists inside the repository (with
builder.paths), so that a hostile build file is refused before anything is built. Every
error is a SpecError naming the file, the key path (`layers.models.files[1]`), the line and
what is allowed. `preinstall` commands are not run here: files a layer's `preinstall`
creates are checked once they exist, by `builder.paths.collect_files`.

A build file declares one function (`function:`) or several (`functions:`, by key, each with
its own files, settings and `dependencies`, and the top-level custom layers it lists). Either
way the build goes function by function over `Spec.for_function(key)`: a `Spec` of that one
function in the `function:` shape, whose `function_at` says where its section is.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from builder.buildfile import parse_build_file, read_build_file
from builder.errors import SpecError
from builder.paths import collect_files, compile_glob, join_path, normalise_path, resolve_in_repo
from builder.runtimes import RESERVED_ENVIRONMENT
from builder.schema import JsonPath, SchemaError, format_path, validate_build_file

BUILD_FILES = ("build.yaml", "build.yml", "build.json")
MAX_LAYERS = 5  # Lambda attaches at most 5 layers to a function
MAX_PATTERNS = 100  # globs in one keep or exclude list


@dataclass(frozen=True)
class FunctionSpec:
    files: tuple[str, ...]
    source_dir: str = ""
    runtimes: tuple[str, ...] = ()
    runtime: str | None = None
    architecture: str | None = None
    handler: str | None = None
    role: str | None = None
    memory: int | None = None
    timeout: int | None = None
    environment: tuple[tuple[str, str], ...] | None = None
    description: str | None = None
    license: str | None = None
    exclude: tuple[str, ...] = ()
    # settings carried by CreateFunction / UpdateFunctionConfiguration; None: left as is
    ephemeral_storage: int | None = None  # MB
    tracing: str | None = None  # Active | PassThrough
    logging: tuple[tuple[str, str], ...] | None = None  # LoggingConfig keys -> values
    kms_key: str | None = None
    dead_letter: str | None = None
    vpc: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # (subnets, security groups)
    snap_start: bool | None = None
    # unversioned, each its own plan step; None: left as is
    tags: tuple[tuple[str, str | None], ...] | None = None  # None value: remove the tag
    reserved_concurrency: int | None = None
    recursion: str | None = None  # PutFunctionRecursionConfig: Allow | Terminate
    # on the alias the deploy moves (unqualified without one); None: left as is
    provisioned_concurrency: int | None = None  # 0: none
    function_url: FunctionUrlSpec | None = None
    # layer version ARNs from outside the build file, in attach order; given, they are the
    # function's whole set of outside layers; None: the outside layers are left as they are
    outside_layers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FunctionUrlSpec:
    """`function_url:`; `remove`: `function_url: false` deletes it. A key not given keeps
    the URL's current value (on create, Lambda's default: AWS_IAM, BUFFERED, no CORS)."""

    auth: str | None = None  # AWS_IAM | NONE
    invoke_mode: str | None = None  # BUFFERED | RESPONSE_STREAM
    cors: tuple[tuple[str, Any], ...] | None = None  # Lambda's Cors keys; () clears it
    remove: bool = False


_CORS_KEYS = (("allow_origins", "AllowOrigins"), ("allow_methods", "AllowMethods"),
              ("allow_headers", "AllowHeaders"), ("expose_headers", "ExposeHeaders"),
              ("allow_credentials", "AllowCredentials"), ("max_age", "MaxAge"))
_LOGGING_KEYS = (("format", "LogFormat"), ("application_level", "ApplicationLogLevel"),
                 ("system_level", "SystemLogLevel"), ("log_group", "LogGroup"))
SNAP_START_MIN_PYTHON = (3, 12)


@dataclass(frozen=True)
class DependenciesSpec:
    requirements: tuple[str, ...]
    name: str | None = None
    runtime_packages: str = "exclude"
    strip: bool = True
    bytecode: bool = False
    keep: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    description: str | None = None
    license: str | None = None
    runtimes: tuple[str, ...] = ()
    # pyproject.toml projects (builder.lockfiles) and indexes (builder.indexes)
    groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    exclude_newer: str | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    codeartifact: Any = None  # builder.indexes.CodeArtifact


@dataclass(frozen=True)
class LayerSpec:
    key: str
    files: tuple[str, ...]
    name: str | None = None
    source_dir: str = ""
    dest_dir: str = ""
    preinstall: tuple[str, ...] = ()
    description: str | None = None
    runtimes: tuple[str, ...] = ()
    license: str | None = None
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionEntry:
    """One function of the `functions:` form: its package and settings, its own
    dependencies layer and the keys of the top-level custom layers it lists."""

    key: str
    function: FunctionSpec
    name: str | None = None  # the Lambda function; default <repository name>-<key>
    dependencies: DependenciesSpec | None = None
    layers: tuple[str, ...] = ()
    release: Any = field(default=None, compare=False, repr=False)  # its own, else the file's


@dataclass(frozen=True)
class Spec:
    file: str
    function: FunctionSpec | None  # None in the `functions:` form (see for_function)
    dependencies: DependenciesSpec | None
    layers: tuple[LayerSpec, ...]
    # key path ("layers.models.files[1]") -> line in the build file, for later errors
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    # builder.rollout.ReleaseSettings: rollout, alarms, max_error_rate, checks, prune
    release: Any = field(default=None, compare=False, repr=False)
    functions: tuple[FunctionEntry, ...] = ()  # the `functions:` form
    key: str = "function"  # which function this is: `function`, or its key in `functions:`
    name: str | None = None  # its `name:` in `functions:`
    function_at: tuple[str, ...] = ("function",)  # key path of its section
    dependencies_at: tuple[str, ...] = ("layers", "dependencies")

    def function_keys(self) -> tuple[str, ...]:
        """`("function",)` for the `function:` form, else the keys of `functions:`."""
        return tuple(entry.key for entry in self.functions) or (self.key,)

    def for_function(self, key: str) -> Spec:
        """The one function `key` as a `function:`-shaped Spec: its dependencies as
        `dependencies` and the layers it lists, in its order, as `layers`."""
        from dataclasses import replace

        if not self.functions:
            if key != self.key:
                raise KeyError(key)
            return self
        entry = next((e for e in self.functions if e.key == key), None)
        if entry is None:
            raise KeyError(key)
        return replace(self, function=entry.function, dependencies=entry.dependencies,
                       layers=tuple(self.layer(name) for name in entry.layers), functions=(),
                       release=entry.release if entry.release is not None else self.release,
                       key=key, name=entry.name, function_at=("functions", key),
                       dependencies_at=("functions", key, "dependencies"))

    def each_function(self) -> list[Spec]:
        return [self.for_function(key) for key in self.function_keys()]

    def component_names(self) -> list[str]:
        if self.functions:
            names = [n for view in self.each_function() for n in view.component_names()]
            return list(dict.fromkeys(names))
        names = ["function"]
        if self.dependencies is not None:
            names.append("dependencies")
        return names + [layer.key for layer in self.layers]

    def layer(self, key: str) -> LayerSpec:
        for layer in self.layers:
            if layer.key == key:
                return layer
        raise KeyError(key)

    @cached_property
    def _line_map(self) -> dict[str, int]:
        return dict(self.lines)

    def line_of(self, key: str) -> int | None:
        """The line of `key`, or of its nearest ancestor the file mentions."""
        lines = self._line_map
        while key:
            if key in lines:
                return lines[key]
            key = re.sub(r"(\.[^.\[\]]+|\[[^\]]*\])\Z", "", key) if "." in key or "[" in key else ""
        return None


# -- loading -----------------------------------------------------------------------------


def load_spec(repo_root: Path, build_file: str | None = None) -> Spec:
    """Find, parse, validate and path-check the build file of the checkout at `repo_root`."""
    repo_root = Path(repo_root)
    name = _find_build_file(repo_root, build_file)
    path = resolve_in_repo(repo_root, name, file=name, key="build file")
    document, lines = parse_build_file(read_build_file(path, name), name)
    doc = _Document(name, lines)
    _check_schema(document, doc)
    spec = _make_spec(document, doc)
    for view in spec.each_function():
        _check_paths(repo_root, view)
    spec = _with_release(repo_root, document, spec)
    for view in spec.each_function():
        if view.dependencies is not None:
            _check_dependencies(repo_root, document, view)
    return spec


def _check_dependencies(repo_root: Path, document: Mapping[str, Any], spec: Spec) -> None:
    raw: Any = document
    for part in spec.dependencies_at:
        raw = raw[part]
    at = format_path(spec.dependencies_at)
    at = at if isinstance(raw, list) else f"{at}.requirements"
    _check_requirements(repo_root, spec, spec.dependencies.requirements, at)


def _with_release(repo_root: Path, document: Mapping[str, Any], spec: Spec) -> Spec:
    """The release keys (rollout, alarms, max_error_rate, checks, post_checks, prune); check
    events read from inside the repository. A function of `functions:` that gives any of
    RELEASE_KEYS has its own: those keys replace the top level's, one by one."""
    from dataclasses import replace

    from builder.rollout import RELEASE_KEYS, RolloutError, release_settings

    def reader(at: tuple[str, ...]):
        def read(relative: str, key: str) -> str:
            path = format_path((*at, key))
            return resolve_in_repo(repo_root, relative, file=spec.file, key=path,
                                   line=spec.line_of(path)).read_text(encoding="utf-8")
        return read

    def settings(keys: Mapping[str, Any], at: tuple[str, ...] = ()):
        try:
            return release_settings(keys, reader(at), at="".join(f"{p}." for p in at))
        except RolloutError as error:  # a build-file error: its file, key and line
            raise SpecError(error.message, file=spec.file, key=error.key, hint=error.hint,
                            line=spec.line_of(error.key) if error.key else None) from None

    top = settings(document)
    entries = []
    for entry in spec.functions:
        own = {k: v for k, v in document["functions"][entry.key].items() if k in RELEASE_KEYS}
        release = settings({**document, **own}, ("functions", entry.key)) if own else None
        entries.append(replace(entry, release=release))
    return replace(spec, release=top, functions=tuple(entries))


def _find_build_file(repo_root: Path, build_file: str | None) -> str:
    if build_file is not None:
        path = resolve_in_repo(repo_root, build_file, file=build_file, key="--build-file")
        if not path.is_file():
            raise SpecError(f"--build-file: {build_file!r} is not a file", file=build_file)
        return posixpath.normpath(build_file)
    found = [n for n in BUILD_FILES if (repo_root / n).exists() or (repo_root / n).is_symlink()]
    if not found:
        raise SpecError(f"no build file: looked for {', '.join(BUILD_FILES)} at the repository "
                        "root", hint="add one, or name it with --build-file")
    if len(found) > 1:
        raise SpecError(f"found both {found[0]} and {found[1]} at the repository root",
                        file=found[0], hint="keep one, or choose one with --build-file")
    return found[0]



@dataclass
class _Document:
    """The build file being read: its name and where each key path is."""

    file: str
    lines: dict[JsonPath, int]

    def line(self, path: JsonPath) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def error(self, path: JsonPath, message: str, *, at: JsonPath | None = None,
              hint: str | None = None) -> SpecError:
        key = format_path(path) if path else None
        return SpecError(f"{format_path(path)}: {message}", file=self.file, key=key,
                         line=self.line(path if at is None else at), hint=hint)


# -- schema ------------------------------------------------------------------------------


def _check_schema(document: Any, doc: _Document) -> None:
    if document is None:
        raise SpecError("the build file is empty; it needs a `function` section with `files`",
                        file=doc.file, line=1)
    errors = validate_build_file(document)
    if not errors:
        return
    errors.sort(key=lambda e: doc.line(e.location) or 0)
    first = errors[0]
    message, hint = _explain(first)
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    raise doc.error(first.path, message, at=first.location, hint=hint)


def _explain(error: SchemaError) -> tuple[str, str | None]:
    """The schema's message, with a reason where the bare rule would puzzle."""
    where = error.location
    if where == ("function", "name") and error.keyword == "additionalProperties":
        return error.message, "the function's name is given on the command line, not here"
    if where == ("layers", "function") and error.keyword == "propertyNames":
        return ("a layer cannot be called 'function'",
                "'function' names the function's own package; choose another key")
    if where == ("layers",) and error.keyword == "maxProperties":
        return (error.message.replace("entries", "layers"),
                f"Lambda attaches at most {MAX_LAYERS} layers to a function")
    if where == () and error.keyword == "oneOf":
        return ("has both `function` and `functions`",
                "use `function:` for one function or `functions:` for several, not both")
    if where[-1:] == ("dependencies",) and error.keyword == "oneOf":
        wanted = "a list of requirements files or a mapping with 'requirements'"
        return error.message.replace("a list or a mapping", wanted), None
    return error.message, None


# -- building the dataclasses ------------------------------------------------------------


def _make_spec(document: Mapping[str, Any], doc: _Document) -> Spec:
    dependencies = None
    layers = []
    for key, value in (document.get("layers") or {}).items():
        if key == "dependencies":
            dependencies = _make_dependencies(value, doc)
        else:
            layers.append(_make_layer(key, value, doc))
    _check_layer_names(dependencies, layers, doc)
    lines = tuple((format_path(path), line) for path, line in doc.lines.items() if path)
    if "functions" in document:
        return _make_functions(document, dependencies, tuple(layers), lines, doc)
    function = _make_function(document["function"], doc)
    count = len(layers) + (dependencies is not None) + len(function.outside_layers or ())
    if count > MAX_LAYERS:
        raise doc.error(("function", "layers"), f"{count} layers with those of the build file; "
                        f"Lambda attaches at most {MAX_LAYERS} to a function",
                        hint="attach fewer layers, or merge layers of the build file")
    return Spec(doc.file, function, dependencies, tuple(layers), lines)


def _make_functions(document: Mapping[str, Any], dependencies: DependenciesSpec | None,
                    layers: tuple[LayerSpec, ...], lines, doc: _Document) -> Spec:
    """The `functions:` form: each entry's function, dependencies and listed layers."""
    if dependencies is not None:
        raise doc.error(("layers", "dependencies"), "a top-level dependencies layer is for "
                        "the `function:` form", hint="give each function of `functions:` "
                        "its own `dependencies:`, or put shared code in a custom layer")
    raw_functions = document["functions"] or {}
    if not raw_functions:
        raise doc.error(("functions",), "lists no function",
                        hint="add at least one: functions: {api: {files: [app.py]}}")
    keys = {layer.key for layer in layers}
    entries = tuple(_make_entry(key, raw, keys, doc) for key, raw in raw_functions.items())
    _check_function_names(entries, doc)
    listed = {name for entry in entries for name in entry.layers}
    for layer in layers:
        if layer.key not in listed:
            raise doc.error(("layers", layer.key), "is listed by no function",
                            hint=f"add it to a function's `layers: [{layer.key}]`, or remove it")
    return Spec(doc.file, None, None, layers, lines, functions=entries)


def _make_entry(key: str, raw: Mapping[str, Any], layer_keys: set[str],
                doc: _Document) -> FunctionEntry:
    at = ("functions", key)
    listed = tuple(name for name in raw.get("layers", ()) if not is_layer_arn(name))
    for index, name in enumerate(raw.get("layers", ())):
        if not is_layer_arn(name) and name not in layer_keys:
            known = ", ".join(sorted(layer_keys)) or "none"
            raise doc.error((*at, "layers", index), f"{name!r} is not a custom layer of "
                            f"this build file (layers: {known})",
                            hint="define it under the top-level `layers:`")
    dependencies = raw.get("dependencies")
    entry = FunctionEntry(
        key=key, function=_make_function(raw, doc, at), name=raw.get("name"),
        dependencies=None if dependencies is None else
        _make_dependencies(dependencies, doc, (*at, "dependencies")), layers=listed)
    count = len(raw.get("layers", ())) + (dependencies is not None)
    if count > MAX_LAYERS:
        raise doc.error((*at, "layers"), f"{count} layers with its dependencies; Lambda "
                        f"attaches at most {MAX_LAYERS} to a function")
    return entry


def _check_function_names(entries: tuple[FunctionEntry, ...], doc: _Document) -> None:
    """Two functions cannot share a name, nor two dependencies layers."""
    for kind, named in (("function", lambda e: e.name),
                        ("layer", lambda e: e.dependencies and e.dependencies.name)):
        seen: dict[str, str] = {}
        for entry in entries:
            name = named(entry)
            if not name:
                continue
            at = ("functions", entry.key, "name") if kind == "function" else (
                "functions", entry.key, "dependencies", "name")
            if name in seen:
                raise doc.error(at, f"{kind} name {name!r} is already used by "
                                f"functions.{seen[name]}")
            seen[name] = entry.key


def _make_function(raw: Mapping[str, Any], doc: _Document,
                   at: JsonPath = ("function",)) -> FunctionSpec:
    source_dir = _directory(raw.get("source_dir", ""), doc, (*at, "source_dir"))
    runtimes = tuple(raw.get("runtimes", ()))
    runtime = raw.get("runtime")
    if runtime is not None and runtimes and runtime not in runtimes:
        raise doc.error((*at, "runtime"), f"{runtime!r} is not one of "
                        f"{format_path((*at, 'runtimes'))} ({', '.join(runtimes)})")
    environment = raw.get("environment")
    for name in sorted(environment or ()):
        if name in RESERVED_ENVIRONMENT:
            raise doc.error((*at, "environment", name), f"{name} is reserved: Lambda sets it "
                            "and refuses it in a function's environment",
                            hint=f"remove {name} from {format_path((*at, 'environment'))}")
    _check_snap_start(raw, runtime or (runtimes[0] if runtimes else None), doc, at)
    _check_provisioned(raw, doc, at)
    logging = raw.get("logging")
    levels = [k for k in ("application_level", "system_level") if k in (logging or {})]
    if levels and logging.get("format") != "JSON":
        raise doc.error((*at, "logging", levels[0]), "log levels apply only to logs in JSON "
                        "format (Lambda: \"To use log-level filtering, your function must use "
                        "the JSON log format\")", hint="add format: JSON to "
                        f"{format_path((*at, 'logging'))}, or remove the levels")
    vpc = raw.get("vpc")
    return FunctionSpec(
        files=_entries(raw["files"], doc, (*at, "files"), source_dir),
        source_dir=source_dir,
        runtimes=runtimes,
        runtime=runtime or (runtimes[0] if runtimes else None),
        architecture=raw.get("architecture"),
        handler=raw.get("handler"),
        role=raw.get("role"),
        memory=_integer(raw.get("memory")),
        timeout=_integer(raw.get("timeout")),
        environment=None if environment is None else tuple(sorted(environment.items())),
        description=raw.get("description"),
        license=raw.get("license"),
        exclude=_globs(raw.get("exclude", ()), doc, (*at, "exclude")),
        ephemeral_storage=_integer(raw.get("ephemeral_storage")),
        tracing=raw.get("tracing"),
        logging=None if logging is None else tuple(
            (api, logging[key]) for key, api in _LOGGING_KEYS if key in logging),
        kms_key=raw.get("kms_key"),
        dead_letter=raw.get("dead_letter"),
        vpc=None if vpc is None else (tuple(vpc["subnets"]), tuple(vpc["security_groups"])),
        snap_start=raw.get("snap_start"),
        tags=None if raw.get("tags") is None else tuple(sorted(raw["tags"].items())),
        reserved_concurrency=_integer(raw.get("reserved_concurrency")),
        recursion=None if raw.get("recursion") is None else raw["recursion"].capitalize(),
        provisioned_concurrency=_integer(raw.get("provisioned_concurrency")),
        function_url=_function_url(raw.get("function_url")),
        outside_layers=_outside_layers(raw, at),
    )


def _function_url(raw: Any) -> FunctionUrlSpec | None:
    if raw is None:
        return None
    if raw is False:
        return FunctionUrlSpec(remove=True)
    given = {} if raw is True else raw
    cors = given.get("cors")
    return FunctionUrlSpec(
        auth=given.get("auth"), invoke_mode=given.get("invoke_mode"),
        cors=None if cors is None else () if cors is False else tuple(
            (api, tuple(cors[key]) if isinstance(cors[key], list) else cors[key])
            for key, api in _CORS_KEYS if key in cors))


def _outside_layers(raw: Mapping[str, Any], at: JsonPath) -> tuple[str, ...] | None:
    """`function.layers` (ARNs only), or the ARNs among a `functions:` entry's `layers`."""
    listed = raw.get("layers")
    if listed is None:
        return None
    arns = tuple(item for item in listed if is_layer_arn(item))
    return arns if at == ("function",) or arns else None


def is_layer_arn(text: str) -> bool:
    return text.startswith("arn:")


def _check_snap_start(raw: Mapping[str, Any], runtime: str | None, doc: _Document,
                      at: JsonPath) -> None:
    """Lambda's SnapStart rules, before anything is built or published."""
    if not raw.get("snap_start"):
        return
    storage = raw.get("ephemeral_storage")
    if storage is not None and storage > 512:
        raise doc.error((*at, "ephemeral_storage"), f"{storage} MB with snap_start; Lambda: "
                        "\"SnapStart doesn't support ephemeral storage greater than 512 MB\"",
                        hint="set ephemeral_storage to 512 or less, or remove snap_start")
    check_snap_start_runtime(runtime, doc.file, doc.line((*at, "snap_start")),
                             format_path((*at, "snap_start")))


def _check_provisioned(raw: Mapping[str, Any], doc: _Document, at: JsonPath) -> None:
    """Lambda's rules on provisioned concurrency, before anything is built or published."""
    wanted = raw.get("provisioned_concurrency")
    if not wanted:
        return
    if raw.get("snap_start"):
        raise doc.error((*at, "provisioned_concurrency"), "provisioned concurrency with "
                        "snap_start; Lambda: \"SnapStart doesn't support provisioned "
                        "concurrency\"", hint="remove provisioned_concurrency or snap_start")
    reserved = raw.get("reserved_concurrency")
    if reserved is not None and wanted > reserved:
        raise doc.error((*at, "provisioned_concurrency"), f"{wanted} is more than the "
                        f"function's reserved_concurrency ({reserved}); Lambda allocates "
                        "provisioned concurrency out of the reserved concurrency",
                        hint=f"set provisioned_concurrency to {reserved} or less, or raise "
                             "reserved_concurrency")


def check_snap_start_runtime(runtime: str | None, file: str | None, line: int | None,
                             key: str) -> None:
    """SnapStart for Python needs python3.12 or later (`runtime` None: not known yet)."""
    if runtime is None:
        return
    version = tuple(int(part) for part in runtime.removeprefix("python").split("."))
    if version < SNAP_START_MIN_PYTHON:
        raise SpecError(f"{key}: SnapStart is not available on {runtime}; Lambda supports "
                        "SnapStart for Python on python3.12 and later", file=file, line=line,
                        key=key, hint="use runtime python3.12 or later, or remove snap_start")


def _make_dependencies(raw: Any, doc: _Document,
                       at: JsonPath = ("layers", "dependencies")) -> DependenciesSpec:
    if isinstance(raw, list):
        return DependenciesSpec(requirements=_entries(raw, doc, at, ""))
    return DependenciesSpec(
        requirements=_entries(raw["requirements"], doc, (*at, "requirements"), ""),
        name=raw.get("name"),
        runtime_packages=raw.get("runtime_packages", "exclude"),
        strip=raw.get("strip", True),
        bytecode=raw.get("bytecode", False),
        keep=_globs(raw.get("keep", ()), doc, (*at, "keep")),
        exclude=_globs(raw.get("exclude", ()), doc, (*at, "exclude")),
        description=raw.get("description"),
        license=raw.get("license"),
        runtimes=tuple(raw.get("runtimes", ())),
        groups=tuple(raw.get("groups", ())),
        extras=tuple(raw.get("extras", ())),
        exclude_newer=raw.get("exclude_newer"),
        **_indexes(raw, doc, at),
    )


def _indexes(raw: Mapping[str, Any], doc: _Document, at: JsonPath) -> dict[str, Any]:
    """`index_url`, `extra_index_urls` (refused when a URL holds credentials) and
    `codeartifact`."""
    from builder.indexes import check_index_url

    urls = {"index_url": raw.get("index_url"),
            "extra_index_urls": tuple(raw.get("extra_index_urls", ()))}
    listed = [(("index_url",), urls["index_url"])] if urls["index_url"] else []
    listed += [(("extra_index_urls", i), u) for i, u in enumerate(urls["extra_index_urls"])]
    for path, url in listed:
        problem = check_index_url(url, format_path((*at, *path)))
        if problem:
            raise doc.error((*at, *path), problem.split(": ", 1)[1])
    if "codeartifact" in raw:
        from builder.indexes import CodeArtifact

        if urls["index_url"]:
            raise doc.error((*at, "codeartifact"), "names the index, and so does index_url",
                            hint="keep one of them (more indexes go in extra_index_urls)")
        urls["codeartifact"] = CodeArtifact(**raw["codeartifact"])
    return urls


def _make_layer(key: str, raw: Mapping[str, Any], doc: _Document) -> LayerSpec:
    at = ("layers", key)
    source_dir = _directory(raw.get("source_dir", ""), doc, (*at, "source_dir"))
    return LayerSpec(
        key=key,
        files=_entries(raw["files"], doc, (*at, "files"), source_dir),
        name=raw.get("name"),
        source_dir=source_dir,
        dest_dir=_directory(raw.get("dest_dir", ""), doc, (*at, "dest_dir"), "the layer"),
        preinstall=tuple(raw.get("preinstall", ())),
        description=raw.get("description"),
        runtimes=tuple(raw.get("runtimes", ())),
        license=raw.get("license"),
        exclude=_globs(raw.get("exclude", ()), doc, (*at, "exclude")),
    )


def _check_layer_names(dependencies: DependenciesSpec | None, layers: list[LayerSpec],
                       doc: _Document) -> None:
    named: dict[str, JsonPath] = {}
    if dependencies is not None and dependencies.name:
        named[dependencies.name] = ("layers", "dependencies", "name")
    for layer in layers:
        if layer.name is None:
            continue
        if layer.name in named:
            first = format_path(named[layer.name])
            raise doc.error(("layers", layer.key, "name"),
                            f"layer name {layer.name!r} is already used by {first}")
        named[layer.name] = ("layers", layer.key, "name")


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)




def _relative(value: str, doc: _Document, path: JsonPath, base: str = "the repository") -> str:
    return normalise_path(value, format_path(path), base, file=doc.file, line=doc.line(path))


def _directory(value: str, doc: _Document, path: JsonPath, base: str = "the repository") -> str:
    norm = _relative(value, doc, path, base)
    return "" if norm == "." else norm


def _entries(values: Iterable[str], doc: _Document, path: JsonPath, source_dir: str
             ) -> tuple[str, ...]:
    base = f"source_dir {source_dir!r}" if source_dir else "the repository"
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        norm = _relative(value, doc, (*path, index), base)
        if norm in seen:
            raise doc.error((*path, index), f"{value!r} is the same path as [{seen[norm]}]")
        seen[norm] = index
    return tuple(seen)


def _globs(values: Iterable[str], doc: _Document, path: JsonPath) -> tuple[str, ...]:
    values = list(values)
    if len(values) > MAX_PATTERNS:
        raise doc.error(path, f"{len(values)} patterns; at most {MAX_PATTERNS} are allowed",
                        hint="a pattern with ** or a folder name covers many files")
    patterns = []
    for index, value in enumerate(values):
        problem = None
        if "\\" in value:
            problem = "contains a backslash; use forward slashes (/)"
        elif value.startswith(("/", "./")):
            problem = ("is anchored; a pattern without / matches a name at any depth, one with "
                       "/ (e.g. 'tests/**') matches from the top")
        elif ".." in value.split("/"):
            problem = "contains '..'; patterns cannot reach outside"
        elif not _compiles(value):
            problem = "has an invalid [...] character class"
        if problem:
            raise doc.error((*path, index), f"{value!r} {problem}")
        patterns.append(value)
    return tuple(patterns)



def _compiles(pattern: str) -> bool:
    try:
        compile_glob(pattern.strip("/"))
    except re.error:
        return False
    return True


def _check_paths(repo_root: Path, spec: Spec) -> None:
    """Everything listed exists inside the repository (except what `preinstall` makes)."""
    _check_folder(repo_root, spec, f"{format_path(spec.function_at)}.source_dir",
                  spec.function.source_dir)
    collect_files(repo_root, spec, "function")
    for layer in spec.layers:
        at = format_path(("layers", layer.key))
        if not layer.preinstall:
            _check_folder(repo_root, spec, f"{at}.source_dir", layer.source_dir)
            collect_files(repo_root, spec, layer.key)
            continue
        for index, entry in enumerate(layer.files):  # may not exist until preinstall runs
            key = f"{at}.files[{index}]"
            resolve_in_repo(repo_root, join_path(layer.source_dir, entry), file=spec.file,
                            key=key, line=spec.line_of(key), must_exist=False)


def _check_requirements(repo_root: Path, spec: Spec, requirements: Iterable[str],
                        at: str) -> None:
    for index, requirement in enumerate(requirements):
        key = f"{at}[{index}]"
        line = spec.line_of(key)
        path = resolve_in_repo(repo_root, requirement, file=spec.file, key=key, line=line)
        if not path.is_file() and not (path / "pyproject.toml").is_file():
            raise SpecError(f"{key}: {requirement!r} is not a file (nor a folder holding "
                            "pyproject.toml)", file=spec.file, key=key, line=line)


def _check_folder(repo_root: Path, spec: Spec, key: str, folder: str) -> None:
    line = spec.line_of(key)
    path = resolve_in_repo(repo_root, folder or ".", file=spec.file, key=key, line=line)
    if not path.is_dir():
        raise SpecError(f"{key}: {folder!r} is not a folder", file=spec.file, key=key, line=line)
