"""The local invoker, driven over real HTTP through the emulator as a client drives AWS."""
from __future__ import annotations

import base64
import json
import re
import threading
import time

import pytest

from lambda3 import cli
from tests.fixtures_aws import LOCAL_RUNTIME, make_zip

ECHO = "def handler(event, context):\n    return event\n"


def _invoke(aws, name: str, event=None, **kwargs) -> tuple[dict, object]:
    payload = json.dumps({} if event is None else event).encode()
    response = aws.client("lambda").invoke(FunctionName=name, Payload=payload, **kwargs)
    return response, json.loads(response["Payload"].read())


def _function(aws, name: str, source: str, **settings) -> None:
    aws.create_function(name, {"app.py": source}, **settings)


def test_handler_gets_the_event_and_its_answer_is_the_payload(aws):
    _function(aws, "echo", ECHO)
    response, payload = _invoke(aws, "echo", {"hello": ["world", 1]})
    assert payload == {"hello": ["world", 1]}
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"


CONTEXT = """
def handler(event, context):
    return {k: getattr(context, k) for k in (
        "function_name", "function_version", "invoked_function_arn", "memory_limit_in_mb",
        "aws_request_id", "log_group_name", "log_stream_name")} | {
        "remaining": context.get_remaining_time_in_millis()}
"""


def test_context_describes_the_invocation(aws):
    _function(aws, "ctx", CONTEXT, MemorySize=256, Timeout=7)
    response, ctx = _invoke(aws, "ctx")
    assert ctx["function_name"] == "ctx" and ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:ctx"
    assert int(ctx["memory_limit_in_mb"]) == 256
    assert ctx["aws_request_id"] == response["ResponseMetadata"]["RequestId"]
    assert ctx["log_group_name"] == "/aws/lambda/ctx"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", ctx["log_stream_name"])
    assert 0 < ctx["remaining"] <= 7000


ENVIRON = """
import os
def handler(event, context):
    return {"env": dict(os.environ), "cwd": os.getcwd()}
"""


def test_environment_is_lambdas_plus_configured_variables_and_nothing_of_the_host(
        aws, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_host_secret")
    _function(aws, "env", ENVIRON, Environment={"Variables": {"STAGE": "test"}})
    _, answer = _invoke(aws, "env")
    env = answer["env"]
    assert env["STAGE"] == "test"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/env"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{LOCAL_RUNTIME}"
    assert env["_HANDLER"] == "app.handler" and env["TZ"] == ":UTC"
    assert env["LAMBDA_TASK_ROOT"] == answer["cwd"]
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url
    assert env["TMPDIR"] == env["HOME"]
    assert "GITHUB_TOKEN" not in env and "ghs_host_secret" not in json.dumps(env)


TMP_AND_PID = """
import os, tempfile
def handler(event, context):
    path = os.path.join(tempfile.gettempdir(), "count")
    count = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as f:
        f.write(str(count))
    return {"count": count, "pid": os.getpid()}
"""


def test_tmp_is_kept_while_warm_and_wiped_when_cold(aws):
    _function(aws, "counter", TMP_AND_PID)
    assert [_invoke(aws, "counter")[1]["count"] for _ in range(2)] == [1, 2]
    aws.emulator.invoker.reset("counter")
    assert _invoke(aws, "counter")[1]["count"] == 1


WARM = """
import os, time
STARTED = time.time()
calls = []
print("init", flush=True)
def handler(event, context):
    calls.append(context.aws_request_id)
    print("call", len(calls))
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"calls": len(calls), "pid": os.getpid(), "started": STARTED,
            "stream": context.log_stream_name, "revision": REVISION}
"""


def _warm(revision: int) -> str:
    return WARM + f"REVISION = {revision}\n"


def test_module_state_and_imports_survive_while_warm(aws):
    _function(aws, "warm", _warm(1))
    first, second = (aws.emulator.invoker.invoke("warm", b"{}") for _ in range(2))
    one, two = json.loads(first.payload), json.loads(second.payload)
    assert (one["calls"], two["calls"]) == (1, 2)
    assert one["pid"] == two["pid"] and one["started"] == two["started"]
    assert one["stream"] == two["stream"]
    assert "init" in first.log.splitlines() and "init" not in second.log.splitlines()
    assert "Init Duration: " in first.log.splitlines()[-1]
    assert "Init Duration" not in second.log
    assert second.log.splitlines()[1:2] == ["call 2"] and "call 1" not in second.log


def test_new_code_or_configuration_gets_a_new_environment(aws):
    _function(aws, "evolving", _warm(1))
    lam = aws.client("lambda")
    before = _invoke(aws, "evolving")[1]
    lam.update_function_code(FunctionName="evolving", ZipFile=make_zip({"app.py": _warm(2)}))
    after_code = _invoke(aws, "evolving")[1]
    lam.update_function_configuration(FunctionName="evolving",
                                      Environment={"Variables": {"STAGE": "b"}})
    after_config = _invoke(aws, "evolving")[1]
    assert (before["revision"], after_code["revision"]) == (1, 2)
    assert len({before["pid"], after_code["pid"], after_config["pid"]}) == 3
    assert after_code["calls"] == after_config["calls"] == 1


def test_reset_timeout_and_exit_each_start_the_next_invocation_cold(aws):
    _function(aws, "fragile", _warm(1), Timeout=1)
    lam, invoker = aws.client("lambda"), aws.emulator.invoker
    pids = [_invoke(aws, "fragile")[1]["pid"]]
    invoker.reset("fragile")
    pids.append(_invoke(aws, "fragile")[1]["pid"])
    _, payload = _invoke(aws, "fragile", {"sleep": 3})
    assert payload["errorType"] == "Sandbox.Timedout"
    answer = _invoke(aws, "fragile")[1]
    pids.append(answer["pid"])
    assert len(set(pids)) == 3 and answer["calls"] == 1
    lam.update_function_code(FunctionName="fragile", ZipFile=make_zip({
        "app.py": "import os, sys\nn = []\ndef handler(e, c):\n    n.append(1)\n"
                  "    if e.get('exit'):\n        sys.exit(0)\n    return len(n)\n"}))
    assert [_invoke(aws, "fragile")[1] for _ in range(2)] == [1, 2]
    _, payload = _invoke(aws, "fragile", {"exit": True})
    assert payload["errorType"] == "Runtime.ExitError"
    assert _invoke(aws, "fragile")[1] == 1


def test_an_init_error_is_reported_on_every_invocation(aws):
    _function(aws, "unimportable", "raise ValueError('at import')\n")
    for _ in range(2):
        response, payload = _invoke(aws, "unimportable")
        assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "at import")


def test_concurrent_invocations_of_one_function_get_their_own_environments(aws):
    _function(aws, "busy", _warm(1))
    answers: list[dict] = []
    callers = [threading.Thread(target=lambda: answers.append(_invoke(aws, "busy",
                                                                      {"sleep": 0.5})[1]))
               for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len({a["pid"] for a in answers}) == 2 and {a["calls"] for a in answers} == {1}
    assert len({a["stream"] for a in answers}) == 2
    assert _invoke(aws, "busy")[1]["calls"] == 2  # a warm one is reused




def test_an_idle_environment_is_ended_and_the_tmp_dir_stays(aws, monkeypatch):
    _function(aws, "idler", TMP_AND_PID)
    monkeypatch.setattr(aws.emulator.invoker, "idle_seconds", 0.0)
    first, second = (_invoke(aws, "idler")[1] for _ in range(2))
    assert first["pid"] != second["pid"]
    assert (first["count"], second["count"]) == (1, 2)


def test_invoke_cold_starts_the_function_cold(aws, capsys):
    _function(aws, "chilly", TMP_AND_PID)
    warm = [_invoke(aws, "chilly")[1] for _ in range(2)]
    assert warm[0]["pid"] == warm[1]["pid"] and warm[1]["count"] == 2
    code = cli.main(["invoke", "chilly", "--cold", "--endpoint-url", aws.endpoint_url,
                     "--region", "us-east-1"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0 and answer["count"] == 1 and answer["pid"] != warm[0]["pid"]


def test_invoke_cold_needs_the_emulator(capsys):
    assert cli.main(["invoke", "chilly", "--cold", "--region", "us-east-1"]) == 2
    assert "--cold works with the embedded emulator only" in capsys.readouterr().err


LINGER = """
import subprocess
def handler(event, context):
    return subprocess.Popen(["sleep", "30"]).pid
"""


def test_processes_a_function_leaves_running_end_with_its_invocation(aws):
    _function(aws, "linger", LINGER)
    pid = _invoke(aws, "linger")[1]
    deadline = time.monotonic() + 5
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


READ_ONLY = """
import os, shutil
def attempt(action):
    try:
        action()
    except OSError as e:
        return e.errno
    return "allowed"
def handler(event, context):
    task = os.environ["LAMBDA_TASK_ROOT"]
    return {
        "open": attempt(lambda: open(os.path.join(task, "new.txt"), "w")),
        "append": attempt(lambda: open(os.path.join(task, "app.py"), "a")),
        "mkdir": attempt(lambda: os.mkdir("/lambda3-probe")),
        "remove": attempt(lambda: os.remove(os.path.join(task, "app.py"))),
        "rename": attempt(lambda: os.rename(os.path.join(task, "app.py"), "/x.py")),
        "rmtree": attempt(lambda: shutil.rmtree(task)),
        "symlink": attempt(lambda: os.symlink("/etc/hostname", os.path.join(task, "l"))),
        "devnull": attempt(lambda: open(os.devnull, "w").close()),
    }
"""


def test_writes_outside_tmp_fail_with_erofs(aws):
    _function(aws, "ro", READ_ONLY)
    _, answer = _invoke(aws, "ro")
    assert answer.pop("devnull") == "allowed"
    assert answer == dict.fromkeys(answer, 30)


def test_running_past_the_timeout_is_killed_with_lambdas_answer(aws):
    _function(aws, "slow", "import time\ndef handler(e, c):\n    time.sleep(30)\n", Timeout=1)
    started = time.monotonic()
    response, payload = _invoke(aws, "slow", LogType="Tail")
    assert time.monotonic() - started < 5
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "Task timed out after 1.00 seconds" in base64.b64decode(response["LogResult"]).decode()


def test_an_exception_is_unhandled_with_the_python_runtimes_payload(aws):
    _function(aws, "boom", "def handler(e, c):\n    raise ValueError('boom')\n")
    response, payload = _invoke(aws, "boom", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert set(payload) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert (payload["errorMessage"], payload["errorType"]) == ("boom", "ValueError")
    assert payload["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert "app.py" in payload["stackTrace"][0] and "lambda_runtime" not in str(payload)
    log = base64.b64decode(response["LogResult"]).decode()
    assert "[ERROR] ValueError: boom\rTraceback (most recent call last):" in log


@pytest.mark.parametrize("source, handler, error_type, message", [
    ("import yaml\n", "app.handler", "Runtime.ImportModuleError",
     "Unable to import module 'app': No module named 'yaml'"),
    (ECHO, "app.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'app'"),
    ("def handler(e, c):\n    return {1, 2}\n", "app.handler", "Runtime.MarshalError",
     "Unable to marshal response: Object of type set is not JSON serializable"),
    ("raise ValueError('at import')\n", "app.handler", "ValueError", "at import"),
])
def test_runtime_errors(aws, source, handler, error_type, message):
    _function(aws, "broken", source, Handler=handler)
    response, payload = _invoke(aws, "broken")
    assert response["FunctionError"] == "Unhandled"
    assert (payload["errorType"], payload["errorMessage"]) == (error_type, message)


def test_a_runtime_that_exits_gives_runtime_exit_error(aws):
    _function(aws, "quitter", "import sys\ndef handler(e, c):\n    print('bye')\n    sys.exit(3)\n")
    response, payload = _invoke(aws, "quitter", LogType="Tail")
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    assert "bye" in base64.b64decode(response["LogResult"]).decode()


def test_what_the_invoker_cannot_run_fails_with_a_clear_error(aws):
    aws.create_function("node", {"index.js": "exports.handler = async () => 1;\n"},
                        Runtime="nodejs20.x", Handler="index.handler")
    aws.client("s3").create_bucket(Bucket="code")
    aws.client("lambda").create_function(  # moto accepts a missing key: the code is empty
        FunctionName="empty", Runtime=LOCAL_RUNTIME, Handler="app.handler",
        Role=aws.lambda_role(), Code={"S3Bucket": "code", "S3Key": "missing.zip"})
    for name, error_type in (("node", "Lambda3.Unsupported"), ("empty", "Lambda3.InvalidZip")):
        response, payload = _invoke(aws, name)
        assert (response["FunctionError"], payload["errorType"]) == ("Unhandled", error_type)


IMPORTS = """
import importlib, os
def handler(event, context):
    found = {}
    for name in ("yaml", "moto", "requests", "dulwich", "werkzeug", "lambda3", "builder"):
        try:
            importlib.import_module(name)
            found[name] = True
        except ImportError:
            found[name] = False
    import boto3
    return {"found": found,
            "boto3": boto3.__file__.startswith(os.environ["LAMBDA_RUNTIME_DIR"])}
"""


def test_only_the_runtimes_sdk_is_importable_not_the_hosts_packages(aws):
    _function(aws, "imports", IMPORTS)
    _, answer = _invoke(aws, "imports")
    assert answer == {"found": dict.fromkeys(answer["found"], False), "boto3": True}


LAYERED = """
import os, shutil, greeting, deep
def handler(event, context):
    return [greeting.TEXT, deep.TEXT, os.path.basename(shutil.which("tool") or ""),
            os.path.isdir(os.path.join(os.environ["LAMBDA3_OPT_DIR"], "python"))]
"""


def test_layers_are_unpacked_in_order_into_the_opt_dir(aws):
    lam = aws.client("lambda")
    py = f"python/lib/{LOCAL_RUNTIME}/site-packages"
    first = make_zip({"python/greeting.py": "TEXT = 'first'\n", f"{py}/deep.py": "TEXT = 'deep'\n",
                      "bin/tool": "#!/bin/sh\n"}, executables=("bin/tool",))
    second = make_zip({"python/greeting.py": "TEXT = 'second'\n"})
    arns = [lam.publish_layer_version(LayerName=name, Content={"ZipFile": blob})["LayerVersionArn"]
            for name, blob in (("first", first), ("second", second))]
    _function(aws, "layered", LAYERED, Layers=arns)
    assert _invoke(aws, "layered")[1] == ["second", "deep", "tool", True]


SELF_AWARE = """
import boto3
def handler(event, context):
    return [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]]
"""


def test_boto3_inside_the_function_talks_to_the_emulator(aws):
    _function(aws, "self-aware", SELF_AWARE)
    assert _invoke(aws, "self-aware")[1] == ["self-aware"]


def _messages(aws, group: str) -> list[str]:
    try:
        events = aws.client("logs").filter_log_events(logGroupName=group)["events"]
    except aws.client("logs").exceptions.ResourceNotFoundException:
        return []
    return [e["message"] for e in events]


def test_log_lines_reach_cloudwatch_logs_while_the_function_runs(aws):
    _function(aws, "chatty", "import time\ndef handler(e, c):\n    print('working')\n"
                             "    time.sleep(1.5)\n    print('done')\n")
    caller = threading.Thread(target=_invoke, args=(aws, "chatty"))
    caller.start()
    deadline = time.monotonic() + 5
    while "working" not in _messages(aws, "/aws/lambda/chatty") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "working" in _messages(aws, "/aws/lambda/chatty") and caller.is_alive()
    caller.join()
    messages = _messages(aws, "/aws/lambda/chatty")
    assert messages[0].startswith("START RequestId: ") and messages[1:3] == ["working", "done"]
    assert messages[-2].startswith("END RequestId: ")
    assert messages[-1].startswith("REPORT RequestId: ") and "Billed Duration" in messages[-1]


def test_log_type_tail_returns_the_end_of_the_log(aws):
    _function(aws, "tail", "def handler(e, c):\n    print('x' * 5000)\n    print('last')\n")
    response, _ = _invoke(aws, "tail", LogType="Tail")
    log = base64.b64decode(response["LogResult"]).decode()
    assert len(log.encode()) <= 4096 and "last\nEND RequestId" in log and "REPORT" in log


def test_on_log_line_sees_every_line_as_it_comes(aws):
    _function(aws, "lines", "def handler(e, c):\n    print('one')\n    print('two')\n")
    seen: list[str] = []
    result = aws.emulator.invoker.invoke("lines", b"{}", on_log_line=seen.append)
    assert seen == result.log.splitlines() and seen[1:3] == ["one", "two"]
    assert result.payload == b"null" and result.function_error is None and result.status == 200


def test_a_last_line_without_a_newline_stays_in_its_invocation(aws):
    _function(aws, "partial", "def handler(e, c):\n    print(e['n'], end='')\n")
    invoker = aws.emulator.invoker
    started = time.monotonic()
    first, second = (invoker.invoke("partial", json.dumps({"n": n}).encode()) for n in (1, 2))
    assert time.monotonic() - started < 1.5  # neither waited for the end of its output
    assert first.log.splitlines()[1:2] == ["1"] and second.log.splitlines()[1:2] == ["2"]
    assert "\0" not in first.log + second.log


def test_a_function_that_replaces_sys_stdout_still_ends_on_time(aws):
    _function(aws, "muffled", "import io, sys\nsys.stdout = io.StringIO()\n"
                              "def handler(e, c):\n    print('swallowed')\n    return 1\n")
    started = time.monotonic()
    results = [aws.emulator.invoker.invoke("muffled", b"{}") for _ in range(2)]
    assert time.monotonic() - started < 1.5
    assert [r.payload for r in results] == [b"1", b"1"]
    assert "swallowed" not in results[1].log


def test_an_event_that_is_not_json_cannot_be_unmarshalled(aws):
    _function(aws, "strict", ECHO)
    result = aws.emulator.invoker.invoke("strict", b"{nope")
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Runtime.UnmarshalError"


def _publish(aws, text: str) -> str:
    lam = aws.client("lambda")
    source = f"def handler(e, c):\n    return {text!r}\n"
    lam.update_function_code(FunctionName="versioned", ZipFile=make_zip({"app.py": source}))
    return lam.publish_version(FunctionName="versioned")["Version"]


def test_qualifier_selects_the_version_or_alias_code(aws):
    _function(aws, "versioned", ECHO)
    assert (_publish(aws, "one"), _publish(aws, "two")) == ("1", "2")
    _publish(aws, "latest")  # $LATEST changes; nothing is published while nothing changed
    aws.client("lambda").create_alias(FunctionName="versioned", Name="live", FunctionVersion="1")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:versioned"
    cases = [({"Qualifier": "1"}, "versioned", "one", "1"),
             ({"Qualifier": "live"}, "versioned", "one", "1"),
             ({}, "versioned:2", "two", "2"),
             ({}, f"{arn}:live", "one", "1"),
             ({}, "123456789012:function:versioned", "latest", "$LATEST")]
    for kwargs, name, text, version in cases:
        response, payload = _invoke(aws, name, **kwargs)
        assert (payload, response["ExecutedVersion"]) == (text, version), name


def test_a_function_on_another_python_runs_with_a_notice_in_the_log(aws):
    other = "python3.12" if LOCAL_RUNTIME != "python3.12" else "python3.13"
    _function(aws, "other", ECHO, Runtime=other)
    response, payload = _invoke(aws, "other", {"a": 1}, LogType="Tail")
    assert payload == {"a": 1}
    assert f"configured for {other}" in base64.b64decode(response["LogResult"]).decode()


def test_two_functions_run_at_the_same_time(aws):
    source = "import time\ndef handler(e, c):\n    start = time.time()\n    time.sleep(0.5)\n" \
             "    return [start, time.time()]\n"
    for name in ("left", "right"):
        _function(aws, name, source)
    spans: list[list[float]] = []
    callers = [threading.Thread(target=lambda n=n: spans.append(_invoke(aws, n)[1]))
               for n in ("left", "right")]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(spans) == 2
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_invoke_command_prints_the_answer_and_the_log(aws, capsys):
    _function(aws, "cli", "def handler(e, c):\n    print('from the function')\n    return e\n")
    code = cli.main(["invoke", "cli", "--event", '{"a": 1}', "--endpoint-url", aws.endpoint_url,
                     "--region", aws.region])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) == {"a": 1}
    assert "from the function" in err and "START RequestId" in err


def test_invoke_command_fails_when_the_function_fails(aws, capsys):
    _function(aws, "cli-fail", "def handler(e, c):\n    raise KeyError('k')\n")
    args = ["invoke", "cli-fail", "--endpoint-url", aws.endpoint_url, "--region", aws.region]
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["errorType"] == "KeyError" and "Unhandled" in err
    assert cli.main(["invoke", "absent", *args[2:]]) == 1
    assert "Function not found" in capsys.readouterr().err

