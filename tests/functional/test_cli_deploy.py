"""`lambda3 deploy` (with the in-process builder) and `lambda3 rollback` on the emulator."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lambda3.cli import main

ROOT = Path(__file__).resolve().parents[2]
APP = "def handler(event, context):\n    return {'v': %d}\n"


@pytest.fixture
def served(aws, git_server, make_repo, tmp_path, monkeypatch, git_token):
    role = aws.lambda_role()
    spec = (f"function:\n  runtimes: [python3.11]\n  handler: app.handler\n  role: {role}\n"
            "  files: [app.py]\n")
    repo = make_repo({"app.py": APP % 1, "build.yaml": spec})
    repo.commit("first")
    url = git_server.add_repo("acme/svc", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    monkeypatch.chdir(tmp_path)
    return repo, url


def deploy_args(aws, url, *extra):
    return ["deploy", "--local-builder", "--endpoint-url", aws.endpoint_url, "-g", url,
            "-f", "svc", "-b", "main", *extra]


def test_deploy_json_then_rollback(served, aws, capsys, git_token):
    repo, url = served
    assert main(deploy_args(aws, url, "-a", "live", "-y", "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] and first["version"] == "1" and first["alias"] == "live"
    repo.commit("two", files={"app.py": APP % 2})
    assert main(deploy_args(aws, url, "-a", "live", "-y", "-t")) == 0
    out = capsys.readouterr().out
    assert "version:  2  alias: live" in out and "total" in out
    client = aws.client("lambda")
    assert client.get_alias(FunctionName="svc", Name="live")["FunctionVersion"] == "2"
    assert main(["rollback", "svc", "-a", "live", "--endpoint-url", aws.endpoint_url]) == 0
    assert "from version 2 to 1" in capsys.readouterr().out
    assert client.get_alias(FunctionName="svc", Name="live")["FunctionVersion"] == "1"
    assert main(["rollback", "svc", "-a", "live", "--to", "2",
                 "--endpoint-url", aws.endpoint_url]) == 0
    assert client.get_alias(FunctionName="svc", Name="live")["FunctionVersion"] == "2"
    assert main(["rollback", "svc", "-a", "live", "--to", "9",
                 "--endpoint-url", aws.endpoint_url]) == 1
    assert git_token not in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_changes_nothing(served, aws, capsys):
    _, url = served
    assert main(deploy_args(aws, url, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "plan: create function svc" in out
    assert "function: svc (new)" in out and "None" not in out
    assert out.splitlines()[0].split()[-1] == "status"  # the status column has its header
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_without_yes_the_plan_is_shown_and_a_no_deploys_nothing(served, aws, capsys,
                                                                 monkeypatch):
    _, url = served
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    assert main(deploy_args(aws, url, "-a", "live")) == 1
    out = capsys.readouterr().out
    assert "destination: svc (new)" in out and "create function svc" in out
    assert aws.client("lambda").list_functions()["Functions"] == []
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert main(deploy_args(aws, url, "-a", "live")) == 0
    assert len(aws.client("lambda").list_functions()["Functions"]) == 1


def test_without_yes_and_no_terminal_nothing_is_deployed(served, aws, capsys, monkeypatch):
    _, url = served
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(deploy_args(aws, url)) == 1
    assert "pass -y" in capsys.readouterr().err
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_failure_exits_non_zero_with_the_step(served, aws, capsys):
    _, url = served
    assert main(["deploy", "--local-builder", "--endpoint-url", aws.endpoint_url, "-g", url,
                 "-f", "svc", "-b", "no-such-branch", "-y"]) == 1
    assert "fetch:" in capsys.readouterr().err


def test_token_never_shows_in_process_arguments(served, aws, git_token, tmp_path):
    """Scan every process's command line while a deploy runs in a child process."""
    _, url = served
    seen: list[str] = []
    done = threading.Event()

    def scan():
        while not done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    if git_token.encode() in cmdline:
                        seen.append(cmdline.decode(errors="replace"))
            time.sleep(0.01)

    watcher = threading.Thread(target=scan, daemon=True)
    watcher.start()
    env = {**os.environ, "LAMBDA3_TOKEN": git_token, "PYTHONPATH": str(ROOT)}
    process = subprocess.run(
        [sys.executable, "-m", "lambda3", *deploy_args(aws, url, "-y", "--json")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    done.set()
    watcher.join()
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["ok"]
    assert seen == []
    assert git_token not in process.stdout + process.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_without_yes_asks_on_stderr_and_stdout_holds_only_the_result(served, aws, capsys,
                                                                          monkeypatch):
    _, url = served
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert main(deploy_args(aws, url, "--json")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"]  # one JSON object, no plan or prompt mixed in
    assert "Deploy? [y/N]" in captured.err and "destination: svc (new)" in captured.err
    assert len(aws.client("lambda").list_functions()["Functions"]) == 1
