"""builder.schema and builder/build.schema.json, cross-checked against the `jsonschema` package."""
from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from builder.runtimes import ARCHITECTURES, RUNTIMES
from builder.schema import (
    Validator,
    build_schema,
    describe_value,
    format_path,
    validate_build_file,
)
from builder.spec import MAX_LAYERS

SCHEMA_FILE = Path(__file__).parents[2] / "builder" / "build.schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text())
REFERENCE = jsonschema.Draft202012Validator(SCHEMA)

FULL = {
    "version": 1,
    "function": {
        "files": ["app.py", "lib"],
        "source_dir": "src",
        "runtimes": ["python3.12", "python3.13"],
        "runtime": "python3.13",
        "architecture": "arm64",
        "handler": "app.handler",
        "role": "arn:aws:iam::123456789012:role/service/fn-role",
        "memory": 512,
        "timeout": 30,
        "environment": {"STAGE": "prod", "LOG_LEVEL": ""},
        "description": "the function",
        "license": "MIT",
        "exclude": ["**/*.pyc", "tests"],
    },
    "layers": {
        "dependencies": {
            "requirements": ["requirements.txt"],
            "name": "deps",
            "runtime_packages": "include",
            "strip": False,
            "keep": ["pkg/data/**"],
            "exclude": ["**/tests/**"],
            "description": "packages",
            "license": "various",
            "runtimes": ["python3.12"],
        },
        "models": {
            "files": ["nltk_data"],
            "name": "models-layer",
            "description": "data",
            "runtimes": ["python3.12"],
            "source_dir": "data",
            "dest_dir": "python",
            "preinstall": ["mkdir -p nltk_data"],
            "license": "CC-BY",
            "exclude": ["*.tmp"],
        },
    },
}

GOOD = [
    {"function": {"files": ["app.py"]}},
    {"function": {"files": ["app.py"], "runtimes": ["python3.12"]}, "layers": None},
    {"function": {"files": ["app.py"]}, "layers": {}},
    {"function": {"files": ["app.py"]}, "layers": {"dependencies": ["requirements.txt"]}},
    {"function": {"files": ["a"], "memory": 128, "timeout": 900}},
    {"function": {"files": ["a"], "memory": 10240, "timeout": 1}},
    {"function": {"files": ["a"], "memory": 1024.0}},
    {"function": {"files": ["a"], "environment": {}}},
    {"function": {"files": ["a"], "handler": "pkg/sub/mod.fn"}},
    {"function": {"files": ["a"], "handler": "pkg.mod.fn"}},
    {"function": {"files": ["a"]}, "layers": {f"l{i}": {"files": ["x"]} for i in range(5)}},
    {"function": {"files": ["a"]}, "layers": {"A_b-9": {"files": ["x"], "preinstall": []}}},
    FULL,
]

BAD = [
    None,
    [],
    "function",
    {},
    {"function": None},
    {"function": {}},
    {"function": {"files": []}},
    {"function": {"files": "app.py"}},
    {"function": {"files": ["a", 3]}},
    {"function": {"files": ["a", "a"]}},
    {"function": {"files": [""]}},
    {"function": {"files": ["a"], "runtimez": ["python3.12"]}},
    {"function": {"files": ["a"], "name": "fn"}},
    {"function": {"files": ["a"], "runtimes": ["python2.7"]}},
    {"function": {"files": ["a"], "runtimes": []}},
    {"function": {"files": ["a"], "runtimes": "python3.12"}},
    {"function": {"files": ["a"], "runtime": "python3.9"}},
    {"function": {"files": ["a"], "architecture": "x86"}},
    {"function": {"files": ["a"], "handler": "app"}},
    {"function": {"files": ["a"], "handler": "app.handler()"}},
    {"function": {"files": ["a"], "role": "my-role"}},
    {"function": {"files": ["a"], "memory": 64}},
    {"function": {"files": ["a"], "memory": 10241}},
    {"function": {"files": ["a"], "memory": "512"}},
    {"function": {"files": ["a"], "memory": True}},
    {"function": {"files": ["a"], "memory": 512.5}},
    {"function": {"files": ["a"], "timeout": 0}},
    {"function": {"files": ["a"], "timeout": 901}},
    {"function": {"files": ["a"], "environment": {"DEBUG": True}}},
    {"function": {"files": ["a"], "environment": {"1X": "a"}}},
    {"function": {"files": ["a"], "environment": {"A": "a"}}},
    {"function": {"files": ["a"], "environment": ["A=1"]}},
    {"function": {"files": ["a"], "description": "x" * 257}},
    {"function": {"files": ["a"], "exclude": "*.pyc"}},
    {"function": {"files": ["a"], "exclude": [""]}},
    {"function": {"files": ["a"]}, "version": 2},
    {"function": {"files": ["a"]}, "version": True},
    {"function": {"files": ["a"]}, "extra": 1},
    {"function": {"files": ["a"]}, "layers": []},
    {"function": {"files": ["a"]}, "layers": {"dependencies": "requirements.txt"}},
    {"function": {"files": ["a"]}, "layers": {"dependencies": None}},
    {"function": {"files": ["a"]}, "layers": {"dependencies": []}},
    {"function": {"files": ["a"]}, "layers": {"dependencies": {"name": "x"}}},
    {"function": {"files": ["a"]}, "layers": {"dependencies": {"requirements": ["r"], "x": 1}}},
    {"function": {"files": ["a"]},
     "layers": {"dependencies": {"requirements": ["r"], "runtime_packages": "drop"}}},
    {"function": {"files": ["a"]},
     "layers": {"dependencies": {"requirements": ["r"], "strip": "yes"}}},
    {"function": {"files": ["a"]}, "layers": {"function": {"files": ["x"]}}},
    {"function": {"files": ["a"]}, "layers": {"my layer": {"files": ["x"]}}},
    {"function": {"files": ["a"]}, "layers": {"x" * 65: {"files": ["x"]}}},
    {"function": {"files": ["a"]}, "layers": {"m": {"files": ["x"], "name": "a.b"}}},
    {"function": {"files": ["a"]}, "layers": {"m": ["x"]}},
    {"function": {"files": ["a"]}, "layers": {"m": {"description": "no files"}}},
    {"function": {"files": ["a"]}, "layers": {"m": {"files": ["x"], "preinstall": "make"}}},
    {"function": {"files": ["a"]}, "layers": {"m": {"files": ["x"], "preinstall": [""]}}},
    {"function": {"files": ["a"]}, "layers": {"m": {"files": ["x"], "requirements": ["r"]}}},
    {"function": {"files": ["a"]}, "layers": {f"l{i}": {"files": ["x"]} for i in range(6)}},
]


def reference_valid(document) -> bool:
    return REFERENCE.is_valid(document)


# -- the schema file ---------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] and SCHEMA["title"] and SCHEMA["description"]


def _every_property(schema, path="$"):
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, sub in schema.items():
            yield from _every_property(sub, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, sub in enumerate(schema):
            yield from _every_property(sub, f"{path}[{index}]")


def test_every_key_and_definition_is_described():
    undescribed = [path for path, sub in _every_property(SCHEMA) if "description" not in sub]
    undescribed += [name for name, sub in SCHEMA["$defs"].items() if "description" not in sub]
    assert undescribed == []


def test_schema_lists_the_runtimes_and_architectures_the_builder_knows():
    assert tuple(SCHEMA["$defs"]["runtime"]["enum"]) == RUNTIMES
    assert tuple(SCHEMA["$defs"]["architecture"]["enum"]) == ARCHITECTURES
    assert SCHEMA["$defs"]["layers"]["maxProperties"] == MAX_LAYERS


def test_build_schema_is_the_shipped_file():
    assert build_schema() == SCHEMA


# -- agreement with jsonschema -----------------------------------------------------------


@pytest.mark.parametrize("document", GOOD, ids=range(len(GOOD)))
def test_good_documents_are_valid_for_both(document):
    assert reference_valid(document)
    assert validate_build_file(document) == []


@pytest.mark.parametrize("document", BAD, ids=range(len(BAD)))
def test_bad_documents_are_invalid_for_both(document):
    assert not reference_valid(document)
    assert validate_build_file(document) != []


_REPLACEMENTS = [
    None, True, False, 0, 1, 3, 127, 128, 900, 901, 10240, 10241, 1.5, 512.0, "", "x",
    "python3.12", "python3.9", "arm64", "x86", "app.handler", "exclude", "include",
    "requirements.txt", "arn:aws:iam::123456789012:role/r", "function", "a b", [], ["x"],
    ["x", "x"], [1], ["python3.13"], {}, {"files": ["x"]}, {"requirements": ["r"]},
    {"UNKNOWN": 1}, {"files": ["x"], "bogus": 1},
]


def _mutate(document, rng: random.Random):
    """A copy of `document` with one value replaced, one key removed or one key added."""
    document = copy.deepcopy(document)
    containers = []

    def walk(node):
        if isinstance(node, dict):
            containers.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            containers.append(node)
            for value in node:
                walk(value)

    walk(document)
    node = rng.choice(containers)
    action = rng.choice(["replace", "replace", "remove", "add"])
    if isinstance(node, dict) and node and action == "remove":
        del node[rng.choice(sorted(node))]
    elif isinstance(node, dict) and action == "add":
        node[rng.choice(["name", "files", "runtime", "zzz", "dependencies", "m2"])] = (
            copy.deepcopy(rng.choice(_REPLACEMENTS)))
    elif node:
        key = rng.choice(sorted(node) if isinstance(node, dict) else range(len(node)))
        node[key] = copy.deepcopy(rng.choice(_REPLACEMENTS))
    return document


def test_random_mutations_agree_with_jsonschema():
    rng = random.Random(20240601)
    seen = {True: 0, False: 0}
    for _ in range(1500):
        document = _mutate(rng.choice([FULL, *GOOD]), rng)
        expected = reference_valid(document)
        assert (validate_build_file(document) == []) == expected, document
        seen[expected] += 1
    assert seen[True] > 100 and seen[False] > 100


# -- messages ----------------------------------------------------------------------------


def messages(document) -> list[str]:
    return [str(error) for error in validate_build_file(document)]


def test_wrong_item_type_names_the_path_and_the_value():
    document = {"function": {"files": ["a"]},
                "layers": {"models": {"files": ["x", 3]}}}
    assert messages(document) == ["layers.models.files[1]: expected a string, got 3"]


def test_enum_lists_what_is_allowed():
    document = {"function": {"files": ["a"], "architecture": "x86"}}
    assert messages(document) == ["function.architecture: 'x86' is not one of x86_64, arm64"]
    document = {"function": {"files": ["a"], "runtimes": ["python3.12", "python2.7"]}}
    assert messages(document) == [
        "function.runtimes[1]: 'python2.7' is not one of " + ", ".join(RUNTIMES)]


def test_unknown_key_lists_the_allowed_keys_and_points_at_the_key():
    [error] = validate_build_file({"function": {"files": ["a"], "runtimez": []}})
    assert str(error).startswith("function: unknown key 'runtimez' (allowed: files, source_dir, "
                                 "runtimes, runtime, architecture, handler, role, memory,")
    assert error.path == ("function",)
    assert error.location == ("function", "runtimez")


def test_missing_required_key():
    assert messages({"function": {"runtimes": ["python3.12"]}}) == [
        "function: missing required key 'files'"]
    assert messages({}) == ["top level: missing required key 'function'"]


def test_wrong_top_level_type():
    assert messages(["function"]) == ["top level: expected a mapping, got a list"]
    assert messages(None) == ["top level: expected a mapping, got null (an empty value)"]


def test_numbers_say_the_range():
    assert messages({"function": {"files": ["a"], "memory": 64}}) == [
        "function.memory: expected at least 128, got 64"]
    assert messages({"function": {"files": ["a"], "timeout": 1000}}) == [
        "function.timeout: expected at most 900, got 1000"]
    assert messages({"function": {"files": ["a"], "memory": True}}) == [
        "function.memory: expected an integer, got true"]


def test_pattern_errors_use_the_title_to_say_what_is_allowed():
    [error] = validate_build_file({"function": {"files": ["a"], "handler": "app"}})
    assert error.key == "function.handler"
    assert error.message.startswith("'app' is not a valid handler: module.function")


def test_bad_layer_keys_point_at_the_key():
    errors = validate_build_file({"function": {"files": ["a"]},
                                  "layers": {"my layer": {"files": ["x"]}}})
    assert [str(e) for e in errors] == [
        "layers: invalid key: 'my layer' is not a valid layer key (1-64 letters, digits, _ or -)"]
    assert errors[0].location == ("layers", "my layer")
    [error] = validate_build_file({"function": {"files": ["a"]},
                                   "layers": {"function": {"files": ["x"]}}})
    assert error.keyword == "propertyNames" and error.location == ("layers", "function")


def test_too_many_layers():
    document = {"function": {"files": ["a"]},
                "layers": {f"l{i}": {"files": ["x"]} for i in range(6)}}
    assert messages(document) == ["layers: expected at most 5 entries, got 6"]


def test_duplicates_point_at_the_second_one():
    assert messages({"function": {"files": ["a", "b", "a"]}}) == [
        "function.files[2]: 'a' is listed twice (also at [0])"]


def test_one_of_reports_the_branch_the_value_has_the_type_of():
    base = {"function": {"files": ["a"]}}
    assert messages({**base, "layers": {"dependencies": ["r", 3]}}) == [
        "layers.dependencies[1]: expected a string, got 3"]
    assert messages({**base, "layers": {"dependencies": {"requirements": ["r"], "strip": 1}}}) == [
        "layers.dependencies.strip: expected true or false, got 1"]
    assert messages({**base, "layers": {"dependencies": {"requirements": ["r"],
                                                         "bytecode": "yes"}}}) == [
        "layers.dependencies.bytecode: expected true or false, got 'yes'"]
    assert messages({**base, "layers": {"dependencies": {"requirement": ["r"]}}}) == [
        "layers.dependencies: missing required key 'requirements'",
        "layers.dependencies: unknown key 'requirement' (allowed: requirements, name, "
        "runtime_packages, strip, bytecode, keep, exclude, description, license, runtimes, "
        "groups, extras, exclude_newer, index_url, extra_index_urls, codeartifact)",
    ]


def test_one_of_with_no_branch_of_the_right_type_says_which_types_are_allowed():
    document = {"function": {"files": ["a"]}, "layers": {"dependencies": "requirements.txt"}}
    assert messages(document) == [
        "layers.dependencies: expected a list or a mapping, got 'requirements.txt'"]


def test_environment_values_must_be_strings():
    document = {"function": {"files": ["a"], "environment": {"DEBUG": True, "OK": "1"}}}
    assert messages(document) == ["function.environment.DEBUG: expected a string, got true"]


# -- the validator on its own ------------------------------------------------------------


def test_format_path():
    assert format_path(()) == "top level"
    assert format_path(("layers", "models", "files", 1)) == "layers.models.files[1]"
    assert format_path(("layers", "a b")) == 'layers["a b"]'
    assert format_path((0, "x")) == "[0].x"


def test_describe_value():
    assert describe_value("x" * 100).endswith("...'")
    assert describe_value({}) == "a mapping"
    assert describe_value([]) == "an empty list"
    assert describe_value(2.5) == "2.5"


def test_booleans_are_not_numbers_and_whole_floats_are_integers():
    validator = Validator({"type": "integer"})
    assert validator.is_valid(3) and validator.is_valid(3.0)
    assert not validator.is_valid(True) and not validator.is_valid(3.5)
    assert not Validator({"const": 1}).is_valid(True)
    assert Validator({"const": 1}).is_valid(1.0)
    assert not Validator({"enum": [False]}).is_valid(0)


def test_pattern_end_anchor_does_not_accept_a_trailing_newline():
    # ECMA-262 semantics (what JSON Schema specifies); Python's `$` would accept "ab\n".
    validator = Validator({"type": "string", "pattern": "^[a-z]+$"})
    assert validator.is_valid("ab")
    assert not validator.is_valid("ab\n")


def test_pattern_properties_any_of_not_and_boolean_schemas():
    schema = {
        "type": "object",
        "properties": {"a": True, "b": False},
        "patternProperties": {"^x-": {"type": "integer"}},
        "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "array"}]},
        "propertyNames": {"not": {"const": "forbidden"}},
    }
    validator = Validator(schema)
    assert validator.is_valid({"a": 1, "x-n": 2, "other": "s", "list": []})
    assert [str(e) for e in validator.errors({"b": 1})] == ["b: 1 is not allowed here"]
    assert [str(e) for e in validator.errors({"x-n": "s"})] == [
        "x-n: expected an integer, got 's'"]
    assert [str(e) for e in validator.errors({"o": 1})] == [
        "o: expected a string or a list, got 1"]
    assert [str(e) for e in validator.errors({"forbidden": "s"})] == [
        "top level: invalid key: 'forbidden' is not allowed here"]
    for document in ({"b": 1}, {"x-n": "s"}, {"o": 1}, {"forbidden": "s"}, {"a": 1}):
        assert validator.is_valid(document) == jsonschema.Draft202012Validator(
            schema).is_valid(document)


def test_one_of_matching_two_branches_is_an_error():
    validator = Validator({"oneOf": [{"type": "integer"}, {"minimum": 0}]})
    assert [e.keyword for e in validator.errors(3)] == ["oneOf"]
    assert validator.is_valid(-3)


def test_refs_resolve_json_pointers():
    schema = {"$defs": {"a/b": {"type": "string"}}, "$ref": "#/$defs/a~1b"}
    assert Validator(schema).is_valid("s")
    assert not Validator(schema).is_valid(1)


def test_unsupported_keywords_and_refs_are_refused():
    with pytest.raises(ValueError, match="'if' is not supported"):
        Validator({"if": {}}).errors(1)
    with pytest.raises(ValueError, match="only local"):
        Validator({"$ref": "other.json"}).errors(1)


def _doc_examples() -> list[tuple[str, str]]:
    text = (Path(__file__).parents[2] / "docs" / "build-file.md").read_text()
    return re.findall(r"```(yaml|json)\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("kind, text", _doc_examples())
def test_examples_in_the_docs_are_valid(kind, text):
    document = json.loads(text) if kind == "json" else yaml.safe_load(text)
    if "functions" not in document:
        document.setdefault("function", {"files": ["app.py"]})
    assert validate_build_file(document) == []
    assert reference_valid(document)
