"""The build file's text: read, parsed as YAML or JSON, with the line of every key path.

Only the reading and parsing: the document it gives is validated and turned into a
`builder.spec.Spec` by `builder.spec.load_spec`. Both formats refuse duplicate and
non-string keys; a file over MAX_BUILD_FILE_BYTES, nested deeper than MAX_DEPTH or (YAML
alias bombs) holding more than MAX_VALUES values is refused before it is built into
objects, and every parse failure is a SpecError with the line where it is known.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from builder.errors import SpecError
from builder.schema import JsonPath, format_path

MAX_BUILD_FILE_BYTES = 1 << 20
MAX_DEPTH = 64  # nested lists and mappings; real build files use 4
MAX_VALUES = 100_000  # far above any real build file; stops YAML alias bombs
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def read_build_file(path: Path, name: str) -> str:
    """The text of the build file at `path` (`name` in messages): a regular file, UTF-8."""
    if not path.is_file():
        raise SpecError("the build file is not a regular file", file=name)
    try:
        if path.stat().st_size > MAX_BUILD_FILE_BYTES:
            raise SpecError(f"the build file is larger than {MAX_BUILD_FILE_BYTES} bytes",
                            file=name)
        with open(path, "rb") as handle:
            data = handle.read(MAX_BUILD_FILE_BYTES + 1)  # it may have grown since
        if len(data) > MAX_BUILD_FILE_BYTES:
            raise SpecError(f"the build file is larger than {MAX_BUILD_FILE_BYTES} bytes",
                            file=name)
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"the build file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        file=name) from None
    except OSError as exc:
        raise SpecError(f"the build file cannot be read: {exc.strerror}", file=name) from None


def parse_build_file(text: str, file: str) -> tuple[Any, dict[JsonPath, int]]:
    """The document and a map from key paths to 1-based lines; JSON for *.json, else YAML."""
    if len(text) > MAX_BUILD_FILE_BYTES:
        raise SpecError(f"the build file is larger than {MAX_BUILD_FILE_BYTES} bytes", file=file)
    try:
        if file.endswith(".json"):
            return _parse_json(text, file)
        return _parse_yaml(text, file)
    except RecursionError:
        raise _too_deep(file, None) from None
    except (ValueError, UnicodeError, OverflowError) as exc:
        reason = str(exc).split(";")[0][:200]
        raise SpecError(f"a value of the build file cannot be read: {reason}", file=file,
                        hint="quote it to make it a string") from None


def _too_deep(file: str, line: int | None) -> SpecError:
    return SpecError(f"the build file nests lists and mappings more than {MAX_DEPTH} deep",
                     file=file, line=line, hint="a build file needs only a few levels")


def _check_yaml_depth(text: str, file: str) -> None:
    """Walk the YAML events (no recursion, no objects built) and refuse deep nesting."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(file, event.start_mark.line + 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_json_depth(text: str, file: str) -> None:
    depth, outside = 0, _JSON_STRING.sub('""', text)  # JSON strings hold no raw newline
    for match in _BRACKETS.finditer(outside):
        depth += 1 if match[0] in "[{" else -1
        if depth > MAX_DEPTH:
            raise _too_deep(file, outside.count("\n", 0, match.start()) + 1)


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[JsonPath, int]]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        _check_yaml_depth(text, file)
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
    _check_json_depth(text, file)
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
        if visited > MAX_VALUES:
            raise SpecError(f"the build file has more than {MAX_VALUES} values (YAML aliases "
                            "expanding too far?)", file=file)
        if len(path) > MAX_DEPTH:  # reached through aliases: the text itself was flat enough
            raise _too_deep(file, node.start_mark.line + 1)
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
