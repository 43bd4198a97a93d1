"""A hostile build file is refused with a SpecError, in bounded time and memory."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from builder.buildfile import MAX_DEPTH, parse_build_file
from builder.errors import SpecError
from builder.schema import validate_build_file
from builder.spec import load_spec


def repo_with(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / name).write_text(text)
    return tmp_path


def refused(tmp_path: Path, name: str, text: str) -> SpecError:
    with pytest.raises(SpecError) as failure:
        load_spec(repo_with(tmp_path, name, text))
    assert failure.value.file == name
    return failure.value


@pytest.mark.parametrize(("name", "text"), [
    ("build.yaml", "function: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ("build.yaml", "function: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n"),
    ("build.yaml", "".join(" " * i + "- \n" for i in range(200))),
    ("build.json", '{"function": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ("build.json", '{"function": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}"),
])
def test_deep_nesting_is_refused_naming_the_limit(tmp_path, name, text):
    error = refused(tmp_path, name, text)
    assert f"more than {MAX_DEPTH} deep" in error.message


def test_nesting_through_yaml_aliases_is_refused(tmp_path):
    text = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 300))
    error = refused(tmp_path, "build.yaml", text)
    assert f"more than {MAX_DEPTH} deep" in error.message and error.line is not None


def test_the_depth_error_gives_the_line(tmp_path):
    text = '{"function":\n' + "[\n" * 70 + "]" * 70 + "}"
    assert refused(tmp_path, "build.json", text).line == MAX_DEPTH + 1


def test_nesting_within_the_limit_is_parsed():
    inner = MAX_DEPTH - 1  # the top-level mapping is the first level
    for name, text in [("build.yaml", "a: " + "[" * inner + "]" * inner),
                       ("build.json", '{"a": ' + "[" * inner + "]" * inner + "}")]:
        value, depth = parse_build_file(text, name)[0]["a"], 1
        while value:
            value, depth = value[0], depth + 1
        assert depth == inner


def test_brackets_inside_json_strings_do_not_count():
    document, _ = parse_build_file('{"a": "' + "[" * 500 + '"}', "build.json")
    assert document == {"a": "[" * 500}


@pytest.mark.parametrize(("name", "text"), [
    ("build.yaml", "function:\n  files: [app.py]\n  description: 2020-99-99\n"),
    ("build.yaml", "function:\n  files: [app.py]\n  memory: " + "1" * 5_000 + "\n"),
    ("build.json", '{"function": {"files": ["app.py"], "memory": ' + "1" * 5_000 + "}}"),
])
def test_unreadable_values_are_spec_errors(tmp_path, name, text):
    error = refused(tmp_path, name, text)
    assert "cannot be read" in error.message


def test_a_build_file_over_the_size_limit_is_refused(tmp_path):
    text = "function:\n  files: [app.py]\n" + "#" * (1 << 20) + "\n"
    assert "larger than" in refused(tmp_path, "build.yaml", text).message


def test_a_large_list_with_a_duplicate_is_refused_quickly():
    files = [f"f{i}.py" for i in range(25_000)] + ["f5.py"]
    started = time.monotonic()
    errors = validate_build_file({"function": {"files": files}})
    assert time.monotonic() - started < 5
    assert [(e.path, e.keyword) for e in errors] == [(("function", "files", 25_000),
                                                     "uniqueItems")]


def test_a_25000_entry_build_json_is_parsed_and_validated_in_seconds():
    files = [f"f{i}.py" for i in range(25_000)]
    text = json.dumps({"function": {"files": files, "exclude": ["*.md"]}}, indent=1)
    started = time.monotonic()
    document, lines = parse_build_file(text, "build.json")
    errors = validate_build_file(document)
    assert time.monotonic() - started < 5
    assert errors == [] and lines[("function", "files", 24_999)] == 25_003


def test_unique_items_keeps_json_equality():
    errors = validate_build_file({"function": {"files": ["a"], "runtimes": [
        "python3.12", "python3.12"]}})
    assert [e.keyword for e in errors] == ["uniqueItems"]
    from builder.schema import canonical

    assert canonical(1) == canonical(1.0) and canonical(True) != canonical(1)
    assert canonical({"a": [1, 2]}) == canonical({"a": [1.0, 2]})
    assert canonical([1, 2]) != canonical([2, 1])
