"""The build file (build.yaml, build.yml or build.json): loading, validation, path safety.

`load_spec` finds and parses the build file, validates it against build.schema.json
(with builder.schema, no dependency), normalises it into frozen dataclasses and checks
that every listed path exists inside the repository, so that a hostile build file is
refused before anything is built. Every error is a SpecError naming the file, the key
path (`layers.models.files[1]`), the line and what is allowed. `preinstall` commands are
not run here: files a layer's `preinstall` creates are checked once they exist, by
`collect_files`.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from builder.errors import SpecError
from builder.schema import JsonPath, SchemaError, format_path, validate_build_file

BUILD_FILES = ("build.yaml", "build.yml", "build.json")
MAX_LAYERS = 5  # Lambda attaches at most 5 layers to a function
MAX_BUILD_FILE_BYTES = 1 << 20
_MAX_NODES = 100_000  # far above any real build file; stops YAML alias bombs
_GLOB_CHARS = re.compile(r"[*?\[]")


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


@dataclass(frozen=True)
class DependenciesSpec:
    requirements: tuple[str, ...]
    name: str | None = None
    runtime_packages: str = "exclude"
    strip: bool = True
    keep: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    description: str | None = None
    license: str | None = None
    runtimes: tuple[str, ...] = ()


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
class Spec:
    file: str
    function: FunctionSpec
    dependencies: DependenciesSpec | None
    layers: tuple[LayerSpec, ...]
    # key path ("layers.models.files[1]") -> line in the build file, for later errors
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)

    def component_names(self) -> list[str]:
        names = ["function"]
        if self.dependencies is not None:
            names.append("dependencies")
        return names + [layer.key for layer in self.layers]

    def layer(self, key: str) -> LayerSpec:
        for layer in self.layers:
            if layer.key == key:
                return layer
        raise KeyError(key)

    def line_of(self, key: str) -> int | None:
        """The line of `key`, or of its nearest ancestor the file mentions."""
        lines = dict(self.lines)
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
    document, lines = parse_build_file(_read_text(path, name), name)
    doc = _Document(name, lines)
    _check_schema(document, doc)
    spec = _make_spec(document, doc)
    _check_paths(repo_root, spec)
    if spec.dependencies is not None:
        listed = isinstance(document["layers"]["dependencies"], list)
        at = "layers.dependencies" if listed else "layers.dependencies.requirements"
        _check_requirements(repo_root, spec, spec.dependencies.requirements, at)
    return spec


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


def _read_text(path: Path, name: str) -> str:
    if not path.is_file():
        raise SpecError("the build file is not a regular file", file=name)
    if path.stat().st_size > MAX_BUILD_FILE_BYTES:
        raise SpecError(f"the build file is larger than {MAX_BUILD_FILE_BYTES} bytes", file=name)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"the build file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        file=name) from None


def parse_build_file(text: str, file: str) -> tuple[Any, dict[JsonPath, int]]:
    """The document and a map from key paths to 1-based lines; JSON for *.json, else YAML."""
    if file.endswith(".json"):
        return _parse_json(text, file)
    return _parse_yaml(text, file)


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[JsonPath, int]]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = _node_lines(node, file) if node is not None else {}
        document = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise SpecError(f"invalid YAML: {detail}", file=file,
                        line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    return document, lines


def _parse_json(text: str, file: str) -> tuple[Any, dict[JsonPath, int]]:
    try:
        document = json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=file,
                        line=exc.lineno) from None
    except _DuplicateKey as exc:
        duplicate = exc.args[0]
    else:
        duplicate = None
    import yaml

    # JSON is (nearly) YAML: composing it again gives lines and catches duplicate keys.
    # Tabs are only ever whitespace in valid JSON, and YAML does not like them.
    try:
        node = yaml.compose(text.replace("\t", " "), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        node = None
    lines = _node_lines(node, file) if node is not None else {}
    if duplicate is not None:  # when YAML could not read it and so did not say where
        raise SpecError(f"duplicate key {duplicate!r}", file=file)
    return document, lines


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _DuplicateKey(name)
        result[name] = value
    return result


def _node_lines(root: Any, file: str) -> dict[JsonPath, int]:
    """Walk a composed YAML tree: key paths -> lines; refuse non-string and duplicate keys."""
    import yaml

    lines: dict[JsonPath, int] = {(): root.start_mark.line + 1}
    stack: list[tuple[Any, JsonPath]] = [(root, ())]
    visited = 0
    while stack:
        node, path = stack.pop()
        visited += 1
        if visited > _MAX_NODES:
            raise SpecError(f"the build file has more than {_MAX_NODES} values (YAML aliases "
                            "expanding too far?)", file=file)
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                stack.append((item, (*path, index)))
        elif isinstance(node, yaml.MappingNode):
            stack += _mapping_lines(node, path, lines, file)
    return lines


def _mapping_lines(node: Any, path: JsonPath, lines: dict, file: str) -> list:
    children = []
    key = format_path(path) if path else None
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`: the merged keys keep their parent's line
        if key_node.tag != "tag:yaml.org,2002:str":
            scalar = isinstance(key_node.value, str)
            shown = key_node.value if scalar else "a non-scalar"
            raise SpecError(f"{format_path(path)}: key {shown} is not a string", file=file,
                            line=line, key=key, hint=f"quote it: '{shown}'" if scalar else None)
        if (*path, key_node.value) in lines:
            first = lines[(*path, key_node.value)]
            raise SpecError(f"{format_path(path)}: duplicate key {key_node.value!r} (first at "
                            f"line {first})", file=file, line=line, key=key)
        lines[(*path, key_node.value)] = line
        children.append((value_node, (*path, key_node.value)))
    return children


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
    if where == ("layers", "dependencies") and error.keyword == "oneOf":
        wanted = "a list of requirements files or a mapping with 'requirements'"
        return error.message.replace("a list or a mapping", wanted), None
    return error.message, None


# -- building the dataclasses ------------------------------------------------------------


def _make_spec(document: Mapping[str, Any], doc: _Document) -> Spec:
    function = _make_function(document["function"], doc)
    dependencies = None
    layers = []
    for key, value in (document.get("layers") or {}).items():
        if key == "dependencies":
            dependencies = _make_dependencies(value, doc)
        else:
            layers.append(_make_layer(key, value, doc))
    _check_layer_names(dependencies, layers, doc)
    lines = tuple((format_path(path), line) for path, line in doc.lines.items() if path)
    return Spec(doc.file, function, dependencies, tuple(layers), lines)


def _make_function(raw: Mapping[str, Any], doc: _Document) -> FunctionSpec:
    at = ("function",)
    source_dir = _directory(raw.get("source_dir", ""), doc, (*at, "source_dir"))
    runtimes = tuple(raw.get("runtimes", ()))
    runtime = raw.get("runtime")
    if runtime is not None and runtimes and runtime not in runtimes:
        raise doc.error((*at, "runtime"), f"{runtime!r} is not one of function.runtimes "
                        f"({', '.join(runtimes)})")
    environment = raw.get("environment")
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
    )


def _make_dependencies(raw: Any, doc: _Document) -> DependenciesSpec:
    at = ("layers", "dependencies")
    if isinstance(raw, list):
        return DependenciesSpec(requirements=_entries(raw, doc, at, ""))
    return DependenciesSpec(
        requirements=_entries(raw["requirements"], doc, (*at, "requirements"), ""),
        name=raw.get("name"),
        runtime_packages=raw.get("runtime_packages", "exclude"),
        strip=raw.get("strip", True),
        keep=_globs(raw.get("keep", ()), doc, (*at, "keep")),
        exclude=_globs(raw.get("exclude", ()), doc, (*at, "exclude")),
        description=raw.get("description"),
        license=raw.get("license"),
        runtimes=tuple(raw.get("runtimes", ())),
    )


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


# -- paths: lexical checks ---------------------------------------------------------------


def _normalised(value: str, key: str, base: str, *, file: str, line: int | None = None) -> str:
    """`value` as a normalised relative posix path ("." for the base itself), or SpecError."""
    problem = None
    if "\x00" in value:
        problem = "contains a NUL character"
    elif "\\" in value:
        problem = "contains a backslash; use forward slashes (/)"
    elif value.startswith("/"):
        problem = f"is an absolute path; paths are relative to {base}"
    norm = posixpath.normpath(value) if value else "."
    if problem is None and (norm == ".." or norm.startswith("../")):
        problem = f"points outside {base}"
    if problem is None and ".git" in PurePosixPath(norm).parts:
        problem = "is inside .git, which is never packaged"
    if problem:
        raise SpecError(f"{key}: {value!r} {problem}", file=file, key=key, line=line)
    return norm


def _relative(value: str, doc: _Document, path: JsonPath, base: str = "the repository") -> str:
    return _normalised(value, format_path(path), base, file=doc.file, line=doc.line(path))


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
        if problem:
            raise doc.error((*path, index), f"{value!r} {problem}")
        patterns.append(value)
    return tuple(patterns)


# -- paths: on disk ----------------------------------------------------------------------


def resolve_in_repo(repo_root: Path, relative: str, *, file: str, key: str,
                    line: int | None = None, must_exist: bool = True) -> Path:
    """The real path of `relative` inside the repository, or SpecError.

    Refuses absolute paths, `..` escapes and any symlink on the way that points outside
    the repository; with `must_exist`, a path that is not there.
    """
    norm = _normalised(relative, key, "the repository", file=file, line=line)
    root = Path(repo_root).resolve()
    current = root
    for part in PurePosixPath(norm).parts:
        current = current / part
        if current.is_symlink():
            shown = current.relative_to(root).as_posix()
            current = _follow_link(current, root, _where(shown, relative), file, key, line)
    if must_exist and not current.exists():
        hint = "entries are paths, not glob patterns" if _GLOB_CHARS.search(relative) else None
        raise SpecError(f"{key}: {relative!r} not found", file=file, key=key, line=line, hint=hint)
    return current


def _where(shown: str, relative: str) -> str:
    norm = posixpath.normpath(relative)
    return repr(shown) if shown == norm else f"{shown!r} (in {relative!r})"


def _follow_link(link: Path, root: Path, shown: str, file: str, key: str,
                 line: int | None) -> Path:
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        target = link.resolve()  # dangling: judged by where it points
    except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13, OSError after
        raise SpecError(f"{key}: {shown} is a symlink loop", file=file, key=key,
                        line=line) from None
    if not target.is_relative_to(root):
        raise SpecError(f"{key}: {shown} is a symlink to {os.readlink(link)!r}, outside the "
                        "repository", file=file, key=key, line=line)
    return target


def iter_files(repo_root: Path, base: Path, *, file: str, key: str,
               line: int | None = None) -> Iterator[tuple[str, Path]]:
    """Every file under `base` (a folder or file in the repository, as resolve_in_repo
    returns) as (path relative to `base`, real path), in name order; a file as ("", path).

    Symlinks inside are followed when they stay in the repository and refused (SpecError
    naming the link) when they point outside, loop or dangle. `.git` folders are skipped.
    """
    root = Path(repo_root).resolve()
    base = Path(base).resolve()
    if not base.is_relative_to(root):
        raise SpecError(f"{key}: {str(base)!r} is outside the repository", file=file, key=key,
                        line=line)
    if base.is_file():
        yield "", base
        return
    walk = _Walk(root, file, key, line)
    yield from walk.directory(base, base.relative_to(root).as_posix(), "", frozenset({base}))


@dataclass
class _Walk:
    root: Path
    file: str
    key: str
    line: int | None

    def directory(self, path: Path, shown: str, rel: str, ancestors: frozenset
                  ) -> Iterator[tuple[str, Path]]:
        with os.scandir(path) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name == ".git":
                continue
            child_rel = f"{rel}/{entry.name}" if rel else entry.name
            child_shown = f"{shown}/{entry.name}" if shown != "." else entry.name
            yield from self.entry(Path(entry.path), child_shown, child_rel, ancestors)

    def entry(self, path: Path, shown: str, rel: str, ancestors: frozenset
              ) -> Iterator[tuple[str, Path]]:
        if path.is_symlink():
            path = _follow_link(path, self.root, repr(shown), self.file, self.key, self.line)
            if not path.exists():
                raise self.error(f"{shown!r} is a broken symlink")
        if path.is_dir():
            if path in ancestors:
                raise self.error(f"{shown!r} is a symlink loop")
            yield from self.directory(path, shown, rel, ancestors | {path})
        elif path.is_file():
            yield rel, path
        else:
            raise self.error(f"{shown!r} is not a regular file or folder")

    def error(self, message: str) -> SpecError:
        return SpecError(f"{self.key}: {message}", file=self.file, key=self.key, line=self.line)


def collect_files(repo_root: Path, spec: Spec, component: str) -> list[tuple[str, Path]]:
    """What goes into the zip of `component` ("function" or a custom layer's key):
    sorted (path in the zip, real path) pairs, `dest_dir` applied, `exclude` left out
    (matched as builder.strip.matches does for every glob of the build file)."""
    from builder.strip import matches

    if component == "function":
        part: FunctionSpec | LayerSpec = spec.function
        prefix, at = "", ("function",)
    else:
        part = spec.layer(component)
        prefix, at = part.dest_dir, ("layers", component)
    found: dict[str, Path] = {}
    for index, entry in enumerate(part.files):
        key = format_path((*at, "files", index))
        line = spec.line_of(key)
        real = resolve_in_repo(repo_root, _join(part.source_dir, entry), file=spec.file,
                               key=key, line=line)
        for rel, path in iter_files(repo_root, real, file=spec.file, key=key, line=line):
            name = _join(prefix, _join(entry, rel))
            if not matches(name, part.exclude):
                found.setdefault(name, path)
    return sorted(found.items())


def _join(base: str, rel: str) -> str:
    if not rel or rel == ".":
        return base
    return rel if base in ("", ".") else f"{base}/{rel}"


def _check_paths(repo_root: Path, spec: Spec) -> None:
    """Everything listed exists inside the repository (except what `preinstall` makes)."""
    _check_folder(repo_root, spec, "function.source_dir", spec.function.source_dir)
    collect_files(repo_root, spec, "function")
    for layer in spec.layers:
        at = format_path(("layers", layer.key))
        if not layer.preinstall:
            _check_folder(repo_root, spec, f"{at}.source_dir", layer.source_dir)
            collect_files(repo_root, spec, layer.key)
            continue
        for index, entry in enumerate(layer.files):  # may not exist until preinstall runs
            key = f"{at}.files[{index}]"
            resolve_in_repo(repo_root, _join(layer.source_dir, entry), file=spec.file,
                            key=key, line=spec.line_of(key), must_exist=False)


def _check_requirements(repo_root: Path, spec: Spec, requirements: Iterable[str],
                        at: str) -> None:
    for index, requirement in enumerate(requirements):
        key = f"{at}[{index}]"
        line = spec.line_of(key)
        path = resolve_in_repo(repo_root, requirement, file=spec.file, key=key, line=line)
        if not path.is_file():
            raise SpecError(f"{key}: {requirement!r} is not a file", file=spec.file, key=key,
                            line=line)


def _check_folder(repo_root: Path, spec: Spec, key: str, folder: str) -> None:
    line = spec.line_of(key)
    path = resolve_in_repo(repo_root, folder or ".", file=spec.file, key=key, line=line)
    if not path.is_dir():
        raise SpecError(f"{key}: {folder!r} is not a folder", file=spec.file, key=key, line=line)
