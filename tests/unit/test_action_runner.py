"""lambda3/embedded/runner.py on a small composite action: `if:`, actions/cache (a miss saved
after the steps, a hit restored into a fresh runner temp dir), python3 on PATH, and workflow
commands after leading whitespace, as the runner reads them."""
from __future__ import annotations

from pathlib import Path

from lambda3.embedded.runner import ActionRunner, default_base_env

ACTION = """\
name: probe
outputs:
  hit:
    value: ${{ steps.cache.outputs.cache-hit }}
  venv:
    value: ${{ steps.use.outputs.venv }}
runs:
  using: composite
  steps:
    - id: where
      shell: bash
      run: |
        echo "path=${RUNNER_TOOL_CACHE}/probe" >> "${GITHUB_OUTPUT}"
        echo "restore=true" >> "${GITHUB_OUTPUT}"
    - id: cache
      if: steps.where.outputs.restore == 'true'
      uses: actions/cache@5a3ec84eff668545956fd18022155c47e93e2684
      with:
        path: ${{ steps.where.outputs.path }}
        key: probe-1
    - id: skipped
      if: ${{ steps.where.outputs.restore != 'true' }}
      shell: bash
      run: echo "this step must not run"
    - id: use
      shell: bash
      run: |
        folder="${RUNNER_TOOL_CACHE}/probe"
        if [ -f "${folder}/made" ]; then echo "found $(cat "${folder}/made")"; else
          mkdir -p "${folder}"; echo first > "${folder}/made"; echo "made it"; fi
        python3 -c 'import sys; print("venv=" + str(sys.prefix != sys.base_prefix).lower())' \\
          >> "${GITHUB_OUTPUT}"
        echo "  ::add-mask::s3cr3t"
        echo "the secret s3cr3t"
"""


def runner(action_dir: Path, temp: Path, store: Path) -> ActionRunner:
    return ActionRunner(action_dir, temp, {"repository": "o/r", "sha": "a" * 40},
                        default_base_env(), cache_store=store)


def test_a_cache_miss_is_saved_and_restored_into_a_fresh_runner(tmp_path):
    action_dir = tmp_path / "action"
    action_dir.mkdir()
    (action_dir / "action.yml").write_text(ACTION)
    store = tmp_path / "store"
    first = runner(action_dir, tmp_path / "temp1", store).run({})
    assert first.exit_code == 0, first.log
    assert first.outputs == {"hit": "false", "venv": "false"}  # python3: no venv with it
    assert "made it" in first.log and "this step must not run" not in first.log
    assert (store / "probe-1.tar").is_file()
    second = runner(action_dir, tmp_path / "temp2", store).run({})
    assert second.outputs["hit"] == "true"
    assert "found first" in second.log and "Cache restored from key: probe-1" in second.log


def test_commands_after_leading_whitespace_are_acted_on(tmp_path):
    action_dir = tmp_path / "action"
    action_dir.mkdir()
    (action_dir / "action.yml").write_text(ACTION)
    run = runner(action_dir, tmp_path / "temp", tmp_path / "store").run({})
    assert run.masks == ["s3cr3t"]
    assert "the secret ***" in run.log
