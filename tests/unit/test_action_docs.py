"""The action's documentation matches action.yml: every input and output is in the tables of
docs/action.md and the README, nothing documented is missing from action.yml, each output
means one thing everywhere, and what it holds on a dry run is said."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bootstrap.github import ACTION_REPOSITORY, workflow_snippet

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def table(text: str, header: str) -> dict[str, list[str]]:
    """{name: [other cells]} of the markdown table whose header row starts with `header`."""
    start = text.index(header)
    rows: dict[str, list[str]] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def readme_action_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## The GitHub Action")
    return text[start:text.index("\n## ", start + 1)]


DOCS = (ROOT / "docs" / "action.md").read_text()
PLACES = {"docs/action.md": DOCS, "README.md": readme_action_section()}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_input_is_documented_and_nothing_else(place):
    documented = table(PLACES[place], "| input |")
    assert set(documented) == set(ACTION["inputs"])


@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_output_is_documented_and_nothing_else(place):
    documented = table(PLACES[place], "| output |")
    assert set(documented) == set(ACTION["outputs"])


def test_readme_and_docs_give_each_input_and_output_the_same_meaning():
    readme = PLACES["README.md"]
    assert table(readme, "| input |") == table(DOCS, "| input |")
    docs_outputs = table(DOCS, "| output |")
    assert {name: cells[0] for name, cells in table(readme, "| output |").items()} == \
        {name: cells[0] for name, cells in docs_outputs.items()}


def test_changed_layers_has_one_meaning_in_action_yml_and_the_docs():
    meaning = table(DOCS, "| output |")["changed-layers"][0]
    description = " ".join(ACTION["outputs"]["changed-layers"]["description"].split())
    assert description.startswith(meaning.rstrip("."))
    assert "published" in meaning and "rebuilt" not in description


def test_what_every_output_holds_on_a_dry_run_is_documented():
    header = DOCS[DOCS.index("| output |"):].splitlines()[0]
    assert "dry run" in header
    for name, cells in table(DOCS, "| output |").items():
        assert len(cells) == 2 and cells[1], f"{name}: no dry-run meaning"


def test_the_documented_defaults_match_action_yml():
    """A literal default in action.yml is the documented one (an empty default stands for
    one the action works out, which the docs describe in words)."""
    checked = 0
    for name, cells in table(DOCS, "| input |").items():
        default = str(ACTION["inputs"][name].get("default", ""))
        if default and not default.startswith("${{"):
            assert cells[0] == f"`{default}`", name
            checked += 1
    assert checked >= 5


def test_the_bootstrap_snippet_pins_the_readmes_repository_to_a_full_sha():
    readme = PLACES["README.md"]
    assert f"uses: {ACTION_REPOSITORY}@FULL_COMMIT_SHA" in readme
    snippet = workflow_snippet("arn:aws:iam::1:role/r", "eu-west-1", "lambda3-builder",
                               commit="a" * 40)
    assert f"uses: {ACTION_REPOSITORY}@{'a' * 40} # lambda3 " in snippet
    pinned = re.search(r"uses: \S+@(\S+)", workflow_snippet("r", "eu-west-1",
                                                            "lambda3-builder"))
    assert pinned and (re.fullmatch(r"[0-9a-f]{40}", pinned[1])
                       or pinned[1] == "FULL_COMMIT_SHA")
