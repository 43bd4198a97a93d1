"""builder.process: the child's environment, streamed and bounded output, the timeout, the
error naming the command that ran."""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

import pytest

from builder import process
from builder.process import ProcessError, child_env, run
from builder.redact import REDACTOR

SECRET = "s3cr3t-canary-value"


@pytest.fixture
def registered():
    REDACTOR.add(SECRET)
    yield SECRET
    REDACTOR.clear()


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_child_env_has_no_credential_source():
    base = {
        "PATH": "/usr/bin", "HOME": "/home/u", "AWS_REGION": "eu-west-1",
        "UV_KEYRING_PROVIDER": "subprocess", "HTTPS_PROXY": "http://u:p@px:3128",
        "PIP_INDEX_URL": "https://user:pw@pypi.example/simple",
        "AWS_ACCESS_KEY_ID": "AKIA1234", "AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "x",
        "AWS_SECURITY_TOKEN": "x", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2/c",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/c", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "x",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/f", "AWS_WEB_IDENTITY_TOKEN_FILE": "/f",
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_PROFILE": "p", "AWS_CONFIG_FILE": "/c",
        "AWS_SHARED_CREDENTIALS_FILE": "/c", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "DEPLOY_KEY": "k", "MY_PASSWORD": "p", "GOOGLE_APPLICATION_CREDENTIALS": "/f",
        "INNOCENT": f"x{SECRET}x", "DATABASE_URL": "postgres://u:pw@db/app",
    }
    env = child_env(base, secrets=[SECRET])
    assert env == {
        "PATH": "/usr/bin", "HOME": "/home/u", "AWS_REGION": "eu-west-1",
        "UV_KEYRING_PROVIDER": "subprocess", "PIP_INDEX_URL": "https://user:pw@pypi.example/simple",
        "HTTPS_PROXY": "http://u:p@px:3128",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def test_a_value_holding_a_registered_secret_is_dropped(registered):
    env = child_env({"PATH": "/bin", "HARMLESS_NAME": f"a{registered}b"})
    assert "HARMLESS_NAME" not in env and env["PATH"] == "/bin"


def test_the_child_gets_the_scrubbed_env_and_no_inherited_descriptors(tmp_path):
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        done = run(python(f"import os, sys\n"
                          f"print(os.environ.get('AWS_SECRET_ACCESS_KEY'), "
                          f"os.environ['AWS_EC2_METADATA_DISABLED'])\n"
                          f"try:\n    os.fstat({write_end}); print('open')\n"
                          f"except OSError:\n    print('closed')\n"),
                   env={"PATH": os.environ["PATH"], "AWS_SECRET_ACCESS_KEY": "x"}, cwd=tmp_path)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["None true", "closed"]


def test_lines_reach_the_callback_as_they_arrive_redacted(registered):
    seen: list[tuple[float, str]] = []
    code = ("import sys, time\nprint('first', flush=True)\ntime.sleep(1.0)\n"
            f"print('then {registered}', file=sys.stderr, flush=True)\n")
    started = time.monotonic()
    done = run(python(code), on_line=lambda line: seen.append((time.monotonic(), line)))
    ended = time.monotonic()
    assert [line for _, line in seen] == ["first", "then ***"]
    assert seen[0][0] - started < ended - started - 0.8  # the first line came before the sleep
    assert done.stdout == "first\n" and done.stderr == "then ***\n"


def test_only_a_bounded_tail_is_kept_and_long_lines_are_cut():
    count = 0

    def on_line(line: str) -> None:
        nonlocal count
        count += 1

    code = ("import sys\nfor i in range(5000): print('line', i)\n"
            "sys.stdout.write('x' * 3_000_000)\n")
    done = run(python(code), on_line=on_line)
    lines = done.stdout.splitlines()
    assert count == 5001
    assert len(lines) <= process.TAIL_LINES and len(done.stdout) <= process.TAIL_BYTES
    assert lines[-1] == "x" * process.LINE_LIMIT + process.CUT
    assert lines[-2] == "line 4999"


def test_a_line_without_end_does_not_hang_the_reader():
    code = "import sys, time\nsys.stdout.write('y' * 100_000); sys.stdout.flush()\ntime.sleep(30)\n"
    seen: list[str] = []
    worker = threading.Thread(target=lambda: _swallow(python(code), seen), daemon=True)
    worker.start()
    worker.join(10)
    assert seen and seen[0].startswith("y" * 100) and seen[0].endswith(process.CUT)


def _swallow(argv: list[str], seen: list[str]) -> None:
    try:
        run(argv, on_line=seen.append, timeout=3)
    except ProcessError:
        pass


def test_a_timeout_kills_the_child_and_its_group(tmp_path):
    marker = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(marker)!r}, 'w').write(str(p.pid))\n"
            "print('waiting', flush=True)\ntime.sleep(60)\n")
    started = time.monotonic()
    with pytest.raises(ProcessError) as failure:
        run(python(code), timeout=1.5, step="install")
    assert time.monotonic() - started < 10
    error = failure.value
    assert "timed out after 1.5 s" in error.message and error.step == "install"
    assert error.returncode is None and "waiting" in error.tail
    grandchild = int(marker.read_text())
    for _ in range(50):
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_a_child_that_leaves_a_process_holding_its_pipe_is_not_waited_for():
    code = ("import subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); "
            "time.sleep(30)'])\nprint('done')\n")
    started = time.monotonic()
    done = run(python(code), timeout=20)
    assert done.returncode == 0 and done.stdout == "done\n"
    assert time.monotonic() - started < 10


def test_the_error_names_the_command_that_ran_redacted(registered):
    argv = python(f"import sys; print('boom {registered}', file=sys.stderr); sys.exit(4)")
    done = run(argv)
    error = ProcessError(done.args, done.stderr, done.returncode, what="uv", step="install",
                         secrets=["other-secret"])
    assert error.message.startswith("uv failed with exit code 4: ")
    assert "sys.exit(4)" in error.message and registered not in error.message
    assert error.message.endswith("\nboom ***") and error.step == "install"
    assert ProcessError(["x", "--pw", "other-secret"], "", 1,
                        secrets=["other-secret"]).message == "x failed with exit code 1: x --pw ***"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_the_builder_is_not_dumpable_once_it_has_run_a_child():
    code = ("import ctypes, sys\nfrom builder.process import run\n"
            "prctl = ctypes.CDLL(None).prctl\n"
            "before = prctl(3, 0, 0, 0, 0)\n"  # PR_GET_DUMPABLE
            "run([sys.executable, '-c', 'pass'])\n"
            "print(before, prctl(3, 0, 0, 0, 0))\n")
    done = run(python(code), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]


def test_the_installers_runner_logs_each_line_as_it_arrives(caplog):
    from builder.install import run_command

    caplog.set_level(logging.DEBUG, logger="builder.install")
    code = ("import sys, time\nprint('Resolved 3 packages in 5ms', file=sys.stderr, flush=True)\n"
            "time.sleep(1.0)\nprint('Installed 3 packages in 2ms', file=sys.stderr)\n")
    started = time.monotonic()
    done = run_command(python(code), dict(os.environ), None)
    records = [r for r in caplog.records if r.name == "builder.install"]
    assert [r.getMessage() for r in records] == ["  Resolved 3 packages in 5ms",
                                                 "  Installed 3 packages in 2ms"]
    assert all(r.levelno == logging.INFO for r in records)  # uv's summary lines
    assert records[1].created - records[0].created > 0.8  # the first came before the sleep
    assert done.returncode == 0 and time.monotonic() - started >= 1.0
