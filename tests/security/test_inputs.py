"""A hostile build file is refused with a SpecError, in bounded time and memory."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from functools import lru_cache
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


# -- globs and trees ---------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "path"), [
    ("*a*a*a*a*a*a*b", "a" * 255),
    ("**a**a**a**b", "/".join(["a" * 250] * 16)),
    ("a/**/**/**/**/x", "a/" + "/".join(["a"] * 2000)),
    ("**/x", "/".join(["a"] * 2000)),
])
def test_glob_matching_is_linear_in_the_path(pattern, path):
    from builder.paths import matches

    started = time.monotonic()
    assert matches(path, [pattern]) is False
    assert time.monotonic() - started < 1


def test_globs_match_as_the_strip_step_matches():
    import random

    from builder.paths import matches

    strip_matches = _reference_matches  # the backtracking regex the strip step used to run
    pick = random.Random(7).choice
    pieces = ["a", "b", "/", "*", "**", "**/", "?", "[ab]", "[!a]", ".", "+"]
    for _ in range(5_000):
        pattern = "".join(pick(pieces) for _ in range(5))
        path = "".join(pick(["a", "b", "/", ".", "ab", "+"]) for _ in range(6))
        assert matches(path, [pattern]) is strip_matches(path, [pattern]), (pattern, path)


def test_a_hostile_exclude_over_a_deep_tree_is_collected_quickly(tmp_path):
    deep = tmp_path.joinpath(*["d"] * 60)
    deep.mkdir(parents=True)
    for level in range(60):
        tmp_path.joinpath(*["d"] * level, "a" * 200 + ".py").write_text("")
    (tmp_path / "app.py").write_text("")
    (tmp_path / "build.yaml").write_text(
        "function:\n  files: [app.py, d]\n  exclude: ['**a**a**b', '*a*a*a*b']\n")
    started = time.monotonic()
    spec = load_spec(tmp_path)
    assert time.monotonic() - started < 5
    assert spec.function.exclude == ("**a**a**b", "*a*a*a*b")


def test_too_many_patterns_are_refused(tmp_path):
    patterns = ", ".join(f"'x{i}'" for i in range(101))
    error = refused(tmp_path, "build.yaml",
                    f"function:\n  files: [app.py]\n  exclude: [{patterns}]\n")
    assert "at most 100" in error.message and error.key == "function.exclude"


def test_an_invalid_character_class_is_a_spec_error(tmp_path):
    error = refused(tmp_path, "build.yaml", "function:\n  files: [app.py]\n  exclude: ['[z-a]']\n")
    assert "character class" in error.message and error.line == 3


def test_symlinks_repeating_a_tree_are_bounded(tmp_path):
    from builder.paths import collect_files

    for level in range(20):  # each folder links twice to the next: 2**20 paths
        folder = tmp_path / "t" / f"d{level}"
        folder.mkdir(parents=True)
        (folder / "f.txt").write_text("")
        if level:
            for name in ("x", "y"):
                (tmp_path / "t" / f"d{level - 1}" / name).symlink_to(folder)
    (tmp_path / "app.py").write_text("")
    (tmp_path / "build.yaml").write_text(  # preinstall: the layer is walked when packaged
        "function:\n  files: [app.py]\nlayers:\n  data:\n    preinstall: ['true']\n"
        "    files: [t/d0]\n")
    spec = load_spec(tmp_path)
    with pytest.raises(SpecError) as failure:
        collect_files(tmp_path, spec, "data", max_entries=1_000)
    assert "more than 1000 files and folders" in failure.value.message
    assert failure.value.key == "layers.data.files[0]"


def test_a_component_listing_overlapping_folders_is_bounded(tmp_path):
    from builder.paths import collect_files

    for index in range(30):
        (tmp_path / "d" / f"f{index}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / "d" / f"f{index}.txt").write_text("")
    (tmp_path / "app.py").write_text("")
    (tmp_path / "build.yaml").write_text("function:\n  files: [app.py, d, d/f1.txt]\n")
    spec = load_spec(tmp_path)
    assert len(collect_files(tmp_path, spec, "function", max_entries=100)) == 31
    with pytest.raises(SpecError, match="more than 20 files"):
        collect_files(tmp_path, spec, "function", max_entries=20)


def test_an_unreadable_build_file_is_a_spec_error():
    from builder.buildfile import read_build_file

    mem = Path("/proc/self/mem")  # a regular file whose first page cannot be read (EIO)
    with pytest.raises(SpecError, match="cannot be read") as failure:
        read_build_file(mem, "build.yaml")
    assert failure.value.file == "build.yaml"


# The glob matcher the strip step used (a regex per pattern): the reference semantics.
def _reference_matches(path: str, patterns: Sequence[str]) -> bool:
    """True if `path` (posix, relative) or one of its parent directories matches a glob.

    A pattern without `/` matches a single name at any depth (`*.pyi`, `tests`); one with
    `/` is anchored at the root (`pandas/tests/**`, `botocore/data/ec2`). `*` and `?` stay
    within a name, `**` spans directories.
    """
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        pattern = pattern.strip("/")
        if not pattern:
            continue
        regex = _reference_regex(pattern)
        candidates = prefixes if "/" in pattern else parts
        if any(regex.fullmatch(c) for c in candidates):
            return True
    return False


@lru_cache(maxsize=256)
def _reference_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        char = pattern[i]
        end = pattern.find("]", i + 2) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif end > 0:
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))
