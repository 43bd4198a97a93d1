"""A small JSON Schema (draft 2020-12) validator for the subset build.schema.json uses.

The builder runs inside Lambda with only the standard library, boto3, dulwich and PyYAML,
so it cannot use the `jsonschema` package. This validator covers: type, properties,
required, additionalProperties, patternProperties, propertyNames, maxProperties, items,
minItems, uniqueItems, enum, const, pattern, minLength, maxLength, minimum, maximum,
oneOf, anyOf, not, $ref to #/$defs, and boolean schemas. Any other keyword raises
ValueError, so the schema cannot silently outgrow it.

Errors carry the JSON path of the offending value and say what is allowed, e.g.
`layers.models.files[1]: expected a string, got 3`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

JsonPath = tuple[str | int, ...]

_ANNOTATIONS = frozenset({
    "$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples",
    "markdownDescription", "deprecated", "readOnly", "writeOnly",
})
_TYPE_NAMES = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True)
class SchemaError:
    """One way the document breaks the schema.

    `path` is where the offending value sits; `at` is what to point the user at (the key
    itself for an unknown or badly named key), `keyword` the schema keyword that failed.
    """

    path: JsonPath
    message: str
    keyword: str
    at: JsonPath | None = None

    @property
    def key(self) -> str:
        return format_path(self.path)

    @property
    def location(self) -> JsonPath:
        return self.path if self.at is None else self.at

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def format_path(path: JsonPath) -> str:
    """`("layers", "models", "files", 1)` -> `layers.models.files[1]`; `()` -> `top level`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "top level"


def describe_value(value: Any) -> str:
    """A short, human rendering of a value for messages."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "an empty list" if not value else "a list"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, Mapping)
    if name == "array":
        return isinstance(value, (list, tuple))
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return name == "number" or isinstance(value, int) or value.is_integer()


def equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_type(a, "number") and is_type(b, "number"):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(equal, a, b))
    return type(a) is type(b) and a == b


def canonical(value: Any) -> Any:
    """A hashable key with JSON equality: canonical(a) == canonical(b) iff equal(a, b)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if is_type(value, "number"):
        return ("number", int(value) if is_type(value, "integer") else value)
    if isinstance(value, Mapping):
        return ("object", frozenset((key, canonical(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("array", tuple(canonical(item) for item in value))
    return (type(value).__name__, repr(value))


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    # ECMA-262 `$` (no multiline) matches only at the very end; Python's also before a
    # final newline, which would let "name\n" through.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


class Validator:
    """Validates instances against `schema`; `$ref`s resolve within it."""

    def __init__(self, schema: Mapping[str, Any]):
        self.schema = schema
        self._keywords: dict[str, Callable[..., Iterator[SchemaError]]] = {
            "type": self._type, "enum": self._enum, "const": self._const,
            "pattern": self._pattern, "minLength": self._min_length,
            "maxLength": self._max_length, "minimum": self._minimum, "maximum": self._maximum,
            "items": self._items, "minItems": self._min_items,
            "maxItems": self._max_items, "uniqueItems": self._unique,
            "required": self._required, "properties": self._properties,
            "patternProperties": self._pattern_properties,
            "additionalProperties": self._additional,
            "propertyNames": self._property_names, "maxProperties": self._max_properties,
            "oneOf": self._one_of, "anyOf": self._any_of, "not": self._not, "$ref": self._ref,
        }

    def errors(self, instance: Any, schema: Any = None, path: JsonPath = ()) -> list[SchemaError]:
        """Every error, in schema order; a value of the wrong type gets only its type error."""
        schema = self.schema if schema is None else schema
        if schema is True:
            return []
        if schema is False:
            return [SchemaError(path, f"{describe_value(instance)} is not allowed here", "false")]
        if "type" in schema:
            found = list(self._type(instance, schema["type"], schema, path))
            if found:
                return found
        found = []
        for keyword, value in schema.items():
            if keyword == "type" or keyword in _ANNOTATIONS:
                continue
            check = self._keywords.get(keyword)
            if check is None:
                raise ValueError(f"schema keyword {keyword!r} is not supported by builder.schema")
            found.extend(check(instance, value, schema, path))
        return found

    def is_valid(self, instance: Any, schema: Any = None) -> bool:
        return not self.errors(instance, schema)

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs (#/...) are supported, got {ref!r}")
        node: Any = self.schema
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def expected_types(self, schema: Any) -> list[str]:
        """The types a (sub)schema accepts, following $refs; [] when it does not say."""
        while isinstance(schema, Mapping) and "type" not in schema and "$ref" in schema:
            schema = self.resolve(schema["$ref"])
        if not isinstance(schema, Mapping) or "type" not in schema:
            return []
        kinds = schema["type"]
        return [kinds] if isinstance(kinds, str) else list(kinds)

    # -- scalar keywords ---------------------------------------------------------------

    def _type(self, value, kinds, schema, path):
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(is_type(value, kind) for kind in kinds):
            wanted = " or ".join(_TYPE_NAMES[kind] for kind in kinds)
            yield SchemaError(path, f"expected {wanted}, got {describe_value(value)}", "type")

    def _enum(self, value, options, schema, path):
        if not any(equal(value, option) for option in options):
            allowed = ", ".join(str(option) for option in options)
            yield SchemaError(path, f"{describe_value(value)} is not one of {allowed}", "enum")

    def _const(self, value, expected, schema, path):
        if not equal(value, expected):
            message = f"expected {json.dumps(expected)}, got {describe_value(value)}"
            yield SchemaError(path, message, "const")

    def _pattern(self, value, pattern, schema, path):
        if isinstance(value, str) and not _compile(pattern).search(value):
            if "title" in schema:
                message = f"{describe_value(value)} is not a valid {schema['title']}"
            else:
                message = f"{describe_value(value)} does not match {pattern}"
            yield SchemaError(path, message, "pattern")

    def _min_length(self, value, limit, schema, path):
        if isinstance(value, str) and len(value) < limit:
            wanted = "a non-empty string" if limit == 1 else f"at least {limit} characters"
            yield SchemaError(path, f"expected {wanted}, got {describe_value(value)}", "minLength")

    def _max_length(self, value, limit, schema, path):
        if isinstance(value, str) and len(value) > limit:
            message = f"expected at most {limit} characters, got {len(value)}"
            yield SchemaError(path, message, "maxLength")

    def _minimum(self, value, limit, schema, path):
        if is_type(value, "number") and value < limit:
            yield SchemaError(path, f"expected at least {limit}, got {value}", "minimum")

    def _maximum(self, value, limit, schema, path):
        if is_type(value, "number") and value > limit:
            yield SchemaError(path, f"expected at most {limit}, got {value}", "maximum")

    # -- arrays ------------------------------------------------------------------------

    def _items(self, value, item_schema, schema, path):
        if is_type(value, "array"):
            for index, item in enumerate(value):
                yield from self.errors(item, item_schema, (*path, index))

    def _min_items(self, value, limit, schema, path):
        if is_type(value, "array") and len(value) < limit:
            wanted = f"at least {limit} item" + ("" if limit == 1 else "s")
            yield SchemaError(path, f"expected {wanted}, got {describe_value(value)}", "minItems")

    def _max_items(self, value, limit, schema, path):
        if is_type(value, "array") and len(value) > limit:
            yield SchemaError(path, f"expected at most {limit} items, got {len(value)}",
                              "maxItems")

    def _unique(self, value, unique, schema, path):
        if not (unique and is_type(value, "array")):
            return
        first_at: dict[Any, int] = {}
        for index, item in enumerate(value):
            first = first_at.setdefault(canonical(item), index)
            if first != index:
                message = f"{describe_value(item)} is listed twice (also at [{first}])"
                yield SchemaError((*path, index), message, "uniqueItems")

    # -- objects -----------------------------------------------------------------------

    def _required(self, value, names, schema, path):
        if is_type(value, "object"):
            for name in names:
                if name not in value:
                    yield SchemaError(path, f"missing required key {name!r}", "required")

    def _properties(self, value, properties, schema, path):
        if is_type(value, "object"):
            for name, sub in properties.items():
                if name in value:
                    yield from self.errors(value[name], sub, (*path, name))

    def _pattern_properties(self, value, patterns, schema, path):
        if is_type(value, "object"):
            for pattern, sub in patterns.items():
                for name, item in value.items():
                    if isinstance(name, str) and _compile(pattern).search(name):
                        yield from self.errors(item, sub, (*path, name))

    def _additional(self, value, additional, schema, path):
        if not is_type(value, "object"):
            return
        known = schema.get("properties", {})
        patterns = [_compile(p) for p in schema.get("patternProperties", {})]
        for name, item in value.items():
            if name in known or any(p.search(str(name)) for p in patterns):
                continue
            if additional is False:
                yield SchemaError(path, self._unknown_key(name, schema), "additionalProperties",
                                  at=(*path, name))
            else:
                yield from self.errors(item, additional, (*path, name))

    def _unknown_key(self, name, schema) -> str:
        allowed = list(schema.get("properties", {}))
        allowed += [f"keys matching {p}" for p in schema.get("patternProperties", {})]
        return f"unknown key {name!r} (allowed: {', '.join(allowed) or 'none'})"

    def _property_names(self, value, name_schema, schema, path):
        if is_type(value, "object"):
            for name in value:
                for error in self.errors(name, name_schema, ()):
                    yield SchemaError(path, f"invalid key: {error.message}", "propertyNames",
                                      at=(*path, name))

    def _max_properties(self, value, limit, schema, path):
        if is_type(value, "object") and len(value) > limit:
            message = f"expected at most {limit} entries, got {len(value)}"
            yield SchemaError(path, message, "maxProperties")

    # -- combinators -------------------------------------------------------------------

    def _ref(self, value, ref, schema, path):
        yield from self.errors(value, self.resolve(ref), path)

    def _not(self, value, sub, schema, path):
        if self.is_valid(value, sub):
            yield SchemaError(path, f"{describe_value(value)} is not allowed here", "not")

    def _any_of(self, value, branches, schema, path):
        results = [self.errors(value, branch, path) for branch in branches]
        if all(results):
            yield from self._best_branch(value, branches, results, path, "anyOf")

    def _one_of(self, value, branches, schema, path):
        results = [self.errors(value, branch, path) for branch in branches]
        passing = [index for index, found in enumerate(results) if not found]
        if not passing:
            yield from self._best_branch(value, branches, results, path, "oneOf")
        elif len(passing) > 1:
            message = f"matches more than one alternative ({', '.join(map(str, passing))})"
            yield SchemaError(path, message, "oneOf")

    def _best_branch(self, value, branches, results, path, keyword):
        """The errors of the alternative the value was most likely meant for.

        That is a branch whose type the value has (fewest errors first); when the value has
        none of the types, one error saying which types are allowed.
        """
        fitting = [
            found for found in results
            if not any(e.path == path and e.keyword == "type" for e in found)
        ]
        if fitting:
            return min(fitting, key=len)
        kinds: list[str] = []
        for branch in branches:
            kinds += [kind for kind in self.expected_types(branch) if kind not in kinds]
        wanted = " or ".join(_TYPE_NAMES[kind] for kind in kinds) or "one of the alternatives"
        return [SchemaError(path, f"expected {wanted}, got {describe_value(value)}", keyword)]


@lru_cache(maxsize=1)
def build_schema() -> dict[str, Any]:
    """The build file's schema, shipped next to this module (cached: do not modify)."""
    from importlib import resources

    from builder.runtimes import ARCHITECTURES, RUNTIMES

    text = resources.files("builder").joinpath("build.schema.json").read_text("utf-8")
    schema = json.loads(text)
    # runtimes.py is what the builder can build for; the file copies it for editors.
    schema["$defs"]["runtime"]["enum"] = list(RUNTIMES)
    schema["$defs"]["architecture"]["enum"] = list(ARCHITECTURES)
    return schema


def validate_build_file(document: Any) -> list[SchemaError]:
    """Errors of a parsed build file against build.schema.json, [] when it is valid."""
    return Validator(build_schema()).errors(document)
