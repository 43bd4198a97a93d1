"""action.yml and the workflows pass actionlint and zizmor, and keep inputs out of scripts."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTION = ROOT / "action.yml"


def _tool(name: str) -> str:
    """The tool from this interpreter's environment first, then PATH; skip if missing."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' provides it)")
    return found


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN"}}
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "bootstrap.yml", "deploy.yml"}
    assert ACTION.exists()


def test_actionlint_has_no_findings():
    # deploy.yml uses the action with `uses: ./`, so actionlint also checks action.yml's inputs.
    result = _run([_tool("actionlint"), "-no-color", *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("extra", [[], ["--pedantic"]], ids=["default", "pedantic"])
def test_zizmor_has_no_findings(extra):
    result = _run([_tool("zizmor"), "--offline", "--no-progress", *extra,
                   str(ACTION), str(ROOT / ".github" / "workflows")])
    assert result.returncode == 0, result.stdout + result.stderr


def _scripts(document: dict) -> list[str]:
    steps = list((document.get("runs") or {}).get("steps") or [])
    for job in (document.get("jobs") or {}).values():
        steps += job.get("steps") or []
    return [step["run"] for step in steps if "run" in step]


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_script(path):
    """Inputs and event data reach scripts through `env:` only (no script injection)."""
    scripts = _scripts(yaml.safe_load(path.read_text()))
    assert scripts or path != ACTION, "action.yml has no run: steps"
    for script in scripts:
        assert "${{" not in script, f"{path.name}: expression inside run: {script!r}"


def test_action_inputs_are_all_passed_through_env():
    action = yaml.safe_load(ACTION.read_text())
    env_values = " ".join(
        str(value) for step in action["runs"]["steps"] for value in (step.get("env") or {}).values()
    )
    for name in action["inputs"]:
        assert f"inputs.{name} " in env_values + " ", f"input {name} never reaches the script"


def test_third_party_actions_are_pinned_to_full_shas():
    texts = [ACTION.read_text(), *(p.read_text() for p in WORKFLOWS)]
    uses = [u for text in texts for u in re.findall(r"uses:\s*([^\s#]+)", text)]
    remote = [u for u in uses if not u.startswith("./")]
    assert remote
    for ref in remote:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
