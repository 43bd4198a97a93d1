"""docs/cli.md and `--help` say the same: every option of every command's parser is in that
command's flag table, and every flag in the table exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lambda3.cli import COMMANDS, make_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_HEADING = re.compile(r"^## `lambda3 ([a-z]+)`\s*$", re.MULTILINE)
_OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][a-zA-Z0-9-]*)")


def options_of(command: str) -> set[str]:
    """Every option string of the command's parser, without -h/--help."""
    parser = make_parser(command)._subparsers._group_actions[0].choices[command]  # noqa: SLF001
    return {option for action in parser._actions for option in action.option_strings  # noqa: SLF001
            if option not in ("-h", "--help")}


def documented(command: str) -> set[str]:
    """The options in the first column of the command's flag table in docs/cli.md."""
    text = DOC.read_text()
    sections = {m.group(1): m.end() for m in _HEADING.finditer(text)}
    assert command in sections, f"docs/cli.md has no section ## `lambda3 {command}`"
    start = sections[command]
    following = [at for at in sections.values() if at > start]
    body = text[start:min(following) if following else len(text)]
    found: set[str] = set()
    for line in body.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            for span in re.findall(r"`([^`]*)`", first_column):
                found.update(_OPTION.findall(span.split(" ")[0]))
    return found


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_of_the_command_is_documented(command):
    missing = options_of(command) - documented(command)
    assert not missing, f"lambda3 {command}: not in docs/cli.md: {sorted(missing)}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_documented_option_exists(command):
    extra = documented(command) - options_of(command)
    assert not extra, f"docs/cli.md documents for lambda3 {command}: {sorted(extra)}"


def test_the_check_sees_the_tables():
    """The parser of the table itself: a known row is read, prose is not."""
    assert {"-a", "--alias", "--to", "-c", "--config"} <= documented("rollback")
    assert "--follow" not in documented("deploy")


def test_config_keys_the_code_reads_are_documented():
    text = DOC.read_text()
    settings = (Path(__file__).resolve().parents[2] / "lambda3" / "settings.py").read_text()
    keys = set(re.findall(r'_get\(config, "(\w+)", "(\w+)"\)', settings))
    keys |= set(re.findall(r'pick\([^,]+, "(\w+)", "(\w+)"', settings))
    assert keys, "the settings module reads no config.ini key: the pattern is stale"
    for section, key in keys:
        assert f"| `[{section}]` | `{key}` |" in text, f"[{section}] {key} not in docs/cli.md"
