"""The `lambda3` command as a new user meets it, run as a subprocess: every failure is one
line on stderr that names the flag, file or variable and the fix, a non-zero exit status,
and never a traceback."""
from __future__ import annotations

import json
import os
import platform
import pty
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lambda3.cli import describe_error
from tests.fixtures_aws import LOCAL_RUNTIME, make_zip

ROOT = Path(__file__).resolve().parents[2]
APP = "def handler(event, context):\n    return {'v': 1}\n"
NO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                  "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                  "AWS_EC2_METADATA_DISABLED": "true"}


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli_env(**changes: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LAMBDA3_DEBUG", None)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def lambda3(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lambda3", *args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, stdin=stdin)


def one_error_line(process: subprocess.CompletedProcess, command: str, *names: str) -> str:
    """The run failed with one line on stderr (after any progress lines) naming `names`."""
    assert process.returncode != 0, process.stdout + process.stderr
    assert "Traceback" not in process.stdout + process.stderr
    errors = [line for line in process.stderr.splitlines()
              if line.startswith(f"lambda3 {command}: ")]
    assert len(errors) == 1, process.stderr
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A plain folder with a build file whose function needs no dependencies."""
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "app.py").write_text(APP)
    (folder / "build.yaml").write_text(
        "function:\n  runtimes: [python3.11]\n  handler: app.handler\n"
        "  role: arn:aws:iam::123456789012:role/svc\n  files: [app.py]\n")
    return folder


def local_deploy(aws, project: Path, *extra: str) -> list[str]:
    return ["deploy", "--local-builder", str(project), "-f", "svc",
            "--endpoint-url", aws.endpoint_url, *extra]


# -- 1. credentials, profiles, endpoints, interrupts ---------------------------------------

@pytest.mark.parametrize("command", ["bootstrap", "rollback", "deploy"])
def test_no_credentials_is_one_line_naming_the_fix(aws, project, tmp_path, command):
    args = {"bootstrap": ["bootstrap", "--endpoint-url", aws.endpoint_url],
            "rollback": ["rollback", "svc", "-a", "live", "--endpoint-url", aws.endpoint_url],
            "deploy": local_deploy(aws, project, "-y")}[command]
    process = lambda3(tmp_path, *args, env=cli_env(**NO_CREDENTIALS))
    one_error_line(process, command, "no AWS credentials", "-p/--profile", "AWS_ACCESS_KEY_ID")


@pytest.mark.parametrize("command", ["bootstrap", "rollback", "deploy", "invoke"])
def test_an_unknown_profile_is_named(aws, project, tmp_path, command):
    args = {"bootstrap": ["bootstrap"], "rollback": ["rollback", "svc", "-a", "live"],
            "deploy": local_deploy(aws, project, "-y"), "invoke": ["invoke", "svc"]}[command]
    process = lambda3(tmp_path, *args, "-p", "nosuchprofile")
    one_error_line(process, command, "'nosuchprofile' does not exist", "-p/--profile",
                   "AWS_PROFILE")


@pytest.mark.parametrize("command", ["bootstrap", "rollback", "deploy"])
def test_an_unreachable_endpoint_fails_fast_naming_the_flag(project, tmp_path, command):
    url = f"http://127.0.0.1:{unused_port()}"
    args = {"bootstrap": ["bootstrap"], "rollback": ["rollback", "svc", "-a", "live"],
            "deploy": ["deploy", "--local-builder", str(project), "-f", "svc", "-y"]}[command]
    started = time.monotonic()
    process = lambda3(tmp_path, *args, "--endpoint-url", url)
    line = one_error_line(process, command, f"cannot reach the AWS endpoint {url}",
                          "--endpoint-url", "LAMBDA3_ENDPOINT_URL")
    assert "lambda3 emulator" in line
    assert time.monotonic() - started < 30  # no minute of retries against nothing


def run_at_prompt(cwd: Path, args: list[str], keys: bytes | None, signal_number=None):
    """Run with a terminal on stdin, wait for the prompt, then type `keys` or signal."""
    main, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "lambda3", *args], cwd=cwd,
                               env=cli_env(), stdin=terminal, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    os.close(terminal)
    out: list[bytes] = []
    prompted = threading.Event()

    def read_stdout() -> None:
        while chunk := os.read(process.stdout.fileno(), 4096):
            out.append(chunk)
            if b"Deploy?" in b"".join(out):
                prompted.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        assert prompted.wait(60), b"".join(out)
        if keys is not None:
            os.write(main, keys)
        else:
            process.send_signal(signal_number)
        err = process.stderr.read().decode()
        process.wait(timeout=30)
    finally:
        process.kill()
        os.close(main)
    reader.join(timeout=10)
    return subprocess.CompletedProcess(args, process.returncode, b"".join(out).decode(), err)


def test_ctrl_c_at_the_prompt_deploys_nothing(aws, project, tmp_path):
    process = run_at_prompt(tmp_path, local_deploy(aws, project), None, signal.SIGINT)
    assert process.returncode == 130
    one_error_line(process, "deploy", "interrupted", "nothing was deployed")
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_end_of_input_at_the_prompt_deploys_nothing(aws, project, tmp_path):
    process = run_at_prompt(tmp_path, local_deploy(aws, project), b"\x04")
    one_error_line(process, "deploy", "not deployed")
    assert aws.client("lambda").list_functions()["Functions"] == []


SLOW_BUILDER = """import time

def handler(event, context):
    print("lambda3 request", event.get("log_marker"))
    print("building slowly", flush=True)
    time.sleep(20)
    return {}
"""


def test_sigint_during_a_remote_deploy_says_the_builder_goes_on(aws, tmp_path):
    aws.create_function("lambda3-builder", {"app.py": SLOW_BUILDER}, Timeout=60)
    process = subprocess.Popen(
        [sys.executable, "-m", "lambda3", "deploy", "-g", "acme/svc", "-f", "svc", "-y",
         "--endpoint-url", aws.endpoint_url],
        cwd=tmp_path, env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    for line in process.stderr:
        lines.append(line)
        if "building slowly" in line:
            break
    assert any("building slowly" in line for line in lines), lines
    process.send_signal(signal.SIGINT)
    rest, out = process.stderr.read(), process.stdout.read()
    process.wait(timeout=30)
    done = subprocess.CompletedProcess([], process.returncode, out, "".join(lines) + rest)
    assert done.returncode == 130
    line = one_error_line(done, "deploy", "interrupted", "lambda3-builder goes on",
                          "aws logs tail /aws/lambda/lambda3-builder")
    assert "--region us-east-1" in line
    assert "Found credentials" not in done.stderr


def test_any_other_error_is_one_line_with_how_to_see_the_traceback():
    line, code = describe_error(ValueError("bad value"))
    assert code == 1
    assert line == ("internal error: ValueError: bad value "
                    "(re-run with LAMBDA3_DEBUG=1 for the traceback)")
    assert describe_error(KeyboardInterrupt()) == ("interrupted", 130)


def test_aws_errors_outside_lambda3s_wrappers_are_one_line_too():
    from botocore.exceptions import ClientError, ReadTimeoutError

    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetAlias")
    assert describe_error(refused) == ("AWS refused a call: AccessDenied: no (check the "
                                       "credentials' permissions, -r/--region and the names "
                                       "given)", 1)
    line, code = describe_error(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))
    assert code == 1 and line.startswith("an AWS call failed: ") and "--endpoint-url" in line


# -- 2. settings, sources and commands -----------------------------------------------------

NO_REGION = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None}


@pytest.mark.parametrize("command", ["bootstrap", "rollback", "deploy", "invoke"])
def test_no_region_anywhere_is_an_error_naming_where_to_set_it(aws, project, tmp_path,
                                                               command):
    args = {"bootstrap": ["bootstrap"], "rollback": ["rollback", "svc", "-a", "live"],
            "deploy": ["deploy", "--local-builder", str(project), "-f", "svc", "-y"],
            "invoke": ["invoke", "svc"]}
    process = lambda3(tmp_path, *args[command], "--endpoint-url", aws.endpoint_url,
                      env=cli_env(**NO_REGION))
    one_error_line(process, command, "no AWS region", "-r/--region", "AWS_REGION", "config.ini")


def test_region_order_is_flag_then_environment_then_config(aws, tmp_path):
    (tmp_path / "config.ini").write_text("[aws]\nregion = eu-west-1\n")
    base = ["rollback", "no-such-fn", "-a", "live", "--endpoint-url", aws.endpoint_url]
    from_config = lambda3(tmp_path, *base, env=cli_env(**NO_REGION))
    assert "does not exist in eu-west-1" in from_config.stderr
    from_env = lambda3(tmp_path, *base, env=cli_env(AWS_REGION="us-west-2"))
    assert "does not exist in us-west-2" in from_env.stderr
    from_flag = lambda3(tmp_path, *base, "-r", "ap-south-1", env=cli_env(AWS_REGION="us-west-2"))
    assert "does not exist in ap-south-1" in from_flag.stderr


def test_json_without_yes_and_no_terminal_refuses(aws, project, tmp_path):
    process = lambda3(tmp_path, *local_deploy(aws, project, "--json"))
    one_error_line(process, "deploy", "not a terminal", "pass -y")
    assert process.stdout == ""
    assert aws.client("lambda").list_functions()["Functions"] == []


def test_an_explicit_config_file_that_is_missing_is_an_error(aws, project, tmp_path):
    process = lambda3(tmp_path, *local_deploy(aws, project, "-y", "-c", "missing.ini"))
    one_error_line(process, "deploy", "missing.ini does not exist", "-c/--config")
    for command in (["rollback", "svc", "-a", "live"], ["bootstrap"], ["invoke", "svc"]):
        process = lambda3(tmp_path, *command, "-c", "missing.ini")
        one_error_line(process, command[0], "missing.ini does not exist", "-c/--config")


def test_invoke_honours_lambda3_endpoint_url(aws, tmp_path):
    aws.create_function("hello", {"app.py": APP})
    env = cli_env(LAMBDA3_ENDPOINT_URL=aws.endpoint_url, AWS_ENDPOINT_URL=None)
    process = lambda3(tmp_path, "invoke", "hello", "--cold", env=env)
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == {"v": 1}


REGION_APP = "import os\n\ndef handler(event, context):\n    return os.environ['AWS_REGION']\n"


def test_the_emulator_serves_every_region(aws, tmp_path):
    lambda_eu = aws.client("lambda", region_name="eu-west-1")
    lambda_eu.create_function(FunctionName="hello-eu", Runtime=LOCAL_RUNTIME,
                              Handler="app.handler", Role=aws.lambda_role(),
                              Code={"ZipFile": make_zip({"app.py": REGION_APP})})
    process = lambda3(tmp_path, "invoke", "hello-eu", "-r", "eu-west-1",
                      "--endpoint-url", aws.endpoint_url)
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout) == "eu-west-1"  # run in its own region's environment
    elsewhere = lambda3(tmp_path, "invoke", "hello-eu", "-r", "us-east-1",
                        "--endpoint-url", aws.endpoint_url)
    assert elsewhere.returncode == 1 and "Traceback" not in elsewhere.stderr


def test_local_log_file_holds_the_builder_lines(aws, project, tmp_path):
    log = tmp_path / "build.log"
    process = lambda3(tmp_path, *local_deploy(aws, project, "--dry-run", "-l", str(log)))
    assert process.returncode == 0, process.stderr
    text = log.read_text()
    assert "step fetch ..." in text and "step plan done in" in text
    assert "plan: create function svc" in text
    assert " INFO builder." in text  # the full form: time, level, logger


def test_build_of_a_dirty_working_tree_says_so(tmp_path):
    from dulwich import porcelain

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.py").write_text(APP)
    (tree / "build.yaml").write_text("function:\n  runtimes: [python3.11]\n  files: [app.py]\n")
    repo = porcelain.init(str(tree))
    porcelain.add(repo, [str(tree / "app.py"), str(tree / "build.yaml")])
    sha = porcelain.commit(repo, message=b"one", author=b"a <a@b.c>",
                           committer=b"a <a@b.c>").decode()
    args = ["build", ".", "--out", str(tmp_path / "dist"), "--workdir", str(tmp_path / "w")]
    clean = lambda3(tree, *args)
    assert clean.returncode == 0, clean.stderr
    assert f"commit: {sha}\n" in clean.stdout
    (tree / "app.py").write_text(APP.replace("1", "2"))
    dirty = lambda3(tree, *args)
    assert f"commit: {sha} + uncommitted changes" in dirty.stdout
    as_json = lambda3(tree, *args, "--json")
    assert json.loads(as_json.stdout)["uncommitted_changes"] is True


def test_token_env_that_is_unset_warns(project, tmp_path):
    process = lambda3(tmp_path, "build", str(project), "--token-env", "NOPE", "--out",
                      str(tmp_path / "dist"), "--workdir", str(tmp_path / "w"),
                      env=cli_env(NOPE=None))
    assert process.returncode == 0, process.stderr
    assert "warning: --token-env NOPE: the variable NOPE is not set" in process.stderr


def test_a_local_path_with_the_remote_builder_needs_local_builder(aws, project, tmp_path):
    process = lambda3(tmp_path, "deploy", str(project), "-f", "svc", "-y",
                      "--endpoint-url", aws.endpoint_url)
    one_error_line(process, "deploy", "is a local path", "--local-builder")


def test_a_path_that_does_not_exist_names_both_readings(aws, tmp_path):
    process = lambda3(tmp_path, "deploy", "example/hello", "-y",
                      "--endpoint-url", aws.endpoint_url)
    line = one_error_line(process, "deploy", "'example/hello'", "local path",
                          "GitHub repository example/hello", "-g example/hello")
    assert "does not exist" in line or "neither" in line


def test_rollback_of_a_function_that_does_not_exist_says_so(aws, tmp_path):
    process = lambda3(tmp_path, "rollback", "no-such-fn", "-a", "live",
                      "--endpoint-url", aws.endpoint_url)
    one_error_line(process, "rollback", "function no-such-fn does not exist in us-east-1",
                   "-r/--region")
    aws.create_function("has-fn", {"app.py": APP})
    process = lambda3(tmp_path, "rollback", "has-fn", "-a", "live",
                      "--endpoint-url", aws.endpoint_url)
    one_error_line(process, "rollback", "has no alias 'live'", "-a/--alias")


def test_bootstrap_for_another_architecture_on_the_emulator_is_refused(aws, tmp_path):
    here = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
    other = "x86_64" if here == "arm64" else "arm64"
    process = lambda3(tmp_path, "bootstrap", "--architecture", other,
                      "--endpoint-url", aws.endpoint_url)
    one_error_line(process, "bootstrap", f"--architecture {other}",
                   f"pass --architecture {here}")
    assert aws.client("lambda").list_functions()["Functions"] == []


LOGGING_BUILDER = """import logging

logging.getLogger().setLevel(logging.INFO)


def handler(event, context):
    logging.info("lambda3 request %s", event.get("log_marker"))
    logging.info("step fetch ...")
    return {"ok": False, "action": "build", "contract": 2,
            "error": {"step": "fetch", "message": "no such repository"}}
"""


def test_remote_log_lines_are_readable_and_the_log_file_keeps_them_whole(aws, tmp_path):
    aws.create_function("lambda3-builder", {"app.py": LOGGING_BUILDER}, Timeout=60)
    log = tmp_path / "remote.log"
    process = lambda3(tmp_path, "deploy", "-g", "acme/svc", "-f", "svc", "-y", "-l", str(log),
                      "--endpoint-url", aws.endpoint_url)
    one_error_line(process, "deploy", "fetch: no such repository")
    assert "INFO step fetch ...\n" in process.stderr
    assert "[INFO]\t" not in process.stderr
    assert "Found credentials" not in process.stderr
    full = [line for line in log.read_text().splitlines() if line.endswith("step fetch ...")]
    assert len(full) == 1 and full[0].startswith("[INFO]\t")
