"""Rollouts on the emulator over HTTP: the state on the alias, weights moved with UpdateAlias,
CloudWatch alarms and metrics injected into moto (SetAlarmState, PutMetricData), and an
injected clock and sleep. A crashed driver is continued by another process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.config import Config

from builder import rollout as model
from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuildRequest
from builder.handler import deploy_request
from builder.rollout import Check, RolledBack, RolloutError
from builder.settings import BuilderSettings
from builder.timing import Timings
from lambda3.rollout import Driver, describe_alias
from tests.functional.test_deploy_correctness import error_response

ROOT = Path(__file__).resolve().parents[2]
T0 = float(int(time.time()) - 3600)  # an hour ago: metric timestamps stay valid


class Clock:
    """A fake clock whose sleep advances it; `at` runs a callback once its time comes."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self.events: list[tuple[float, object]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for event in [e for e in self.events if e[0] <= self.now]:
            self.events.remove(event)
            event[1]()

    def at(self, when: float, callback) -> None:
        self.events.append((when, callback))


def app(version: int) -> str:
    return ("def handler(event, context):\n"
            f"    if event.get('fail'):\n        raise ValueError('no')\n"
            f"    return {{'v': {version}, 'echo': event}}\n")


@pytest.fixture
def two_versions(aws):
    """app with version 1 behind alias live and version 2 published, no traffic yet."""
    from tests.fixtures_aws import make_zip

    lam = aws.client("lambda")
    aws.create_function("app", {"app.py": app(1)})
    lam.publish_version(FunctionName="app")
    lam.create_alias(FunctionName="app", Name="live", FunctionVersion="1")
    lam.update_function_code(FunctionName="app", ZipFile=make_zip({"app.py": app(2)}))
    lam.publish_version(FunctionName="app")
    return lam


def wrapper(aws) -> Aws:
    clients = Clients(region=aws.region, endpoint_url=aws.endpoint_url,
                      configs={"lambda": Config(retries={"total_max_attempts": 1})})
    return Aws(clients, sleep=lambda s: None)


def driver(aws, clock: Clock, **kwargs) -> Driver:
    lines: list[str] = []
    made = Driver(wrapper(aws), "app", "live", clock=clock, sleep=clock.sleep,
                  show=lines.append, poll=20, **kwargs)
    made.lines = lines
    return made


def start(aws, strategy: str, *, alarms=(), checks=False, post_checks=False,
          max_error_rate=None) -> None:
    state = model.start_state(model.parse_strategy(strategy), "1", "2", T0, alarms=alarms,
                              checks=checks, post_checks=post_checks,
                              max_error_rate=max_error_rate)
    aws.client("lambda").update_alias(**model.update_alias_args("app", "live", state, None))


def routing(aws) -> tuple[str, dict]:
    found = aws.client("lambda").get_alias(FunctionName="app", Name="live")
    return (found["FunctionVersion"],
            (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def recorded(aws) -> model.RolloutState:
    found = aws.client("lambda").get_alias(FunctionName="app", Name="live")
    return model.decode(found["Description"])


def put_metrics(aws, version: str, at: float, **values: float) -> None:
    dimensions = [{"Name": "FunctionName", "Value": "app"},
                  {"Name": "Resource", "Value": "app:live"},
                  {"Name": "ExecutedVersion", "Value": version}]
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Count",
         "Timestamp": datetime.fromtimestamp(at, timezone.utc)}
        for name, value in values.items()])


def alarm(aws, name: str, state: str = "OK") -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_a_healthy_canary_completes(aws, two_versions):
    alarm(aws, "app-5xx")
    start(aws, "canary 10 5", alarms=("app-5xx",))
    assert routing(aws) == ("1", {"2": 0.1})
    put_metrics(aws, "2", T0 + 60, Invocations=10, Errors=0)
    put_metrics(aws, "1", T0 + 60, Invocations=90, Errors=1)
    clock = Clock()
    final = driver(aws, clock).run()
    assert final.phase == model.COMPLETE
    assert routing(aws) == ("2", {})
    assert recorded(aws).phase == model.COMPLETE
    assert clock.now >= T0 + 300 and max(clock.sleeps) <= 20
    assert clock.now < T0 + 300 + 21  # it moved as soon as the step was over


def test_an_alarm_mid_way_rolls_back_and_says_which(aws, two_versions):
    alarm(aws, "app-5xx")
    alarm(aws, "app-latency")
    start(aws, "linear 25 every 1", alarms=("app-5xx", "app-latency"))
    clock = Clock()
    clock.at(T0 + 90, lambda: aws.client("cloudwatch").set_alarm_state(
        AlarmName="app-latency", StateValue="ALARM", StateReason="p99 over 2 s"))
    made = driver(aws, clock)
    with pytest.raises(RolledBack, match="alarm app-latency is in ALARM") as caught:
        made.run()
    assert "alias live is on version 1" in str(caught.value)
    assert routing(aws) == ("1", {})
    assert recorded(aws).reason == "alarm app-latency is in ALARM"
    assert any("50.0% of traffic on version 2" in line for line in made.lines)  # midway
    assert not any("75% of traffic" in line for line in made.lines)


def test_the_error_guard_rolls_back_on_the_new_versions_figures(aws, two_versions):
    start(aws, "canary 20 10", max_error_rate=0.05)
    put_metrics(aws, "2", T0 + 120, Invocations=20, Errors=4)
    put_metrics(aws, "1", T0 + 120, Invocations=80, Errors=1)
    with pytest.raises(RolledBack, match=r"version 2 failed 20.0% of 20 invocations"):
        driver(aws, Clock()).run()
    assert routing(aws) == ("1", {})


def test_an_abort_rolls_back(aws, two_versions):
    start(aws, "linear 10 every 1")
    made = driver(aws, Clock())
    assert made.abort("stop").phase == model.ROLLED_BACK
    assert routing(aws) == ("1", {})
    with pytest.raises(RolledBack, match="stop"):
        made.run()
    assert "rolled back to version 1 (stop)" in "\n".join(describe_alias(made))


def test_pre_traffic_checks_invoke_the_new_version_before_any_traffic(aws, two_versions):
    start(aws, "canary 10 5", checks=True)
    assert routing(aws) == ("1", {})
    clock = Clock()
    made = driver(aws, clock)
    with pytest.raises(RolloutError, match="checks of version 2 have not run"):
        made.run()
    assert routing(aws) == ("1", {})
    good = Check("events/smoke.json", json.dumps({"ping": 1}), {"v": 2, "echo": {"ping": 1}})
    assert made.run([good]).phase == model.COMPLETE
    assert any("check events/smoke.json passed on version 2" in line for line in made.lines)
    assert routing(aws) == ("2", {})


@pytest.mark.parametrize("check, says", [
    (Check("events/fail.json", '{"fail": true}'), "the function raised an error"),
    (Check("events/smoke.json", "{}", {"v": 1}), "the answer .* does not contain"),
])
def test_a_failed_check_rolls_back_before_any_traffic(aws, two_versions, check, says):
    start(aws, "canary 10 5", checks=True)
    with pytest.raises(RolledBack, match=f"check {check.file} failed: {says}"):
        driver(aws, Clock()).run([check])
    assert routing(aws) == ("1", {})


def test_the_alias_revision_id_is_sent_when_lambda_gives_one(aws, two_versions):
    start(aws, "linear 50 every 1")
    made = driver(aws, Clock())
    events = made.aws.clients("lambda").meta.events
    sent, refused = [], []

    def give_revision(parsed, **kwargs):
        parsed["RevisionId"] = f"rev-{parsed['FunctionVersion']}-{len(sent)}"

    def keep(params, context, **kwargs):
        context["sent"] = dict(params)
        sent.append(params.get("RevisionId"))

    def refuse_first(context, **kwargs):
        if len(sent) == 1:  # the first one is stale: another client moved the alias
            refused.append(context["sent"]["RevisionId"])
            return error_response("PreconditionFailedException", 412, "stale")
        return None

    events.register("after-call.lambda.GetAlias", give_revision)
    events.register("before-parameter-build.lambda.UpdateAlias", keep)
    events.register_first("before-call.lambda.UpdateAlias", refuse_first)
    assert made.run().phase == model.COMPLETE
    assert refused and all(sent) and len(sent) >= 2
    assert any("moved by another client meanwhile" in line for line in made.lines)


def test_a_crashed_driver_is_continued_by_another_process(aws, two_versions):
    start(aws, "linear 25 every 1")

    class Crash(Exception):
        pass

    clock = Clock()
    clock.at(T0 + 130, lambda: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        driver(aws, clock).run()
    assert routing(aws) == ("1", {"2": 0.75})  # at the last step, left as it was
    # the other process runs on the real clock, past the step's end: it completes at once

    env = {**os.environ, "LAMBDA3_ENDPOINT_URL": aws.endpoint_url}
    done = subprocess.run(
        [sys.executable, "-m", "lambda3", "rollout", "continue", "app", "-a", "live",
         "--poll", "0.2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "alias live is on version 2" in done.stdout
    assert routing(aws) == ("2", {}) and recorded(aws).phase == model.COMPLETE
    status = subprocess.run(
        [sys.executable, "-m", "lambda3", "rollout", "status", "app", "-a", "live"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert "complete, version 2 takes all traffic" in status.stdout


def test_the_builder_publishes_and_takes_the_first_step_only(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    role = aws.lambda_role()
    build = ("function:\n  runtimes: [python3.11]\n  handler: app.handler\n"
             f"  role: {role}\n  files: [app.py]\nrollout: canary 10 5\nalarms: [app-5xx]\n"
             "checks: [events/smoke.json]\nprune: {keep: 2}\n")
    repo = make_repo({"app.py": app(1), "build.yaml": build, "events/smoke.json": "{}"})
    url = git_server.add_repo("acme/app", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)

    def deploy(**event):
        request = BuildRequest.from_event({"action": "build", "repository": url, "ref": "main",
                                           "token": git_token, "function": "app",
                                           "alias": "live", **event})
        return deploy_request(request, Timings(), settings=BuilderSettings.from_environ(),
                              aws=wrapper(aws))

    first = deploy()
    assert first.ok and first.rollout is None and routing(aws) == ("1", {})  # a new alias
    repo.commit("v2", files={"app.py": app(2)})
    second = deploy()
    assert second.ok and second.version == "2" and second.prune_keep == 2
    assert second.rollout.phase == model.CHECKS and second.rollout.checks[0]["event"] == "{}"
    assert routing(aws) == ("1", {})  # checks pending: no traffic
    again = deploy()  # a re-run leaves the rollout under way as it is
    assert again.rollout.new_version == "2" and recorded(aws).phase == model.CHECKS

    repo.commit("v3", files={"app.py": app(3)})
    third = deploy(rollout="linear 50 every 1")
    assert third.rollout.strategy == "linear 50 every 1" and routing(aws) == ("1", {})
    assert recorded(aws).new == "3"


def test_the_action_step_shows_each_shift_and_the_summary_records_the_rollout(
        aws, two_versions, tmp_path):
    import io

    from builder.contract import BuildResult, RolloutResult
    from lambda3.rollout import drive_in_action

    alarm(aws, "app-5xx")
    start(aws, "linear 50 every 1", alarms=("app-5xx",))
    result = BuildResult(ok=True, function="app", alias="live", prune_keep=1,
                         rollout=RolloutResult(strategy="linear 50 every 1", phase="shifting"))
    out, summary, clock = io.StringIO(), tmp_path / "summary.md", Clock()
    drive_in_action(wrapper(aws), result, out=out, summary_path=str(summary), clock=clock,
                    sleep=clock.sleep)
    log = out.getvalue()
    assert "lambda3: live: 50% on version 2, next step in 60 s; alarms: app-5xx OK" in log
    assert "complete, version 2 takes all traffic" in log
    assert "prune: delete version 1 of app" in log
    assert aws.client("lambda").list_versions_by_function(FunctionName="app")["Versions"][-1][
        "Version"] == "2"
    text = summary.read_text()
    assert "### Rollout" in text and "complete, version 2 takes all traffic" in text


def test_a_rollback_in_the_action_fails_the_step_and_is_in_the_summary(
        aws, two_versions, tmp_path):
    import io

    from builder.contract import BuildResult, RolloutResult
    from lambda3.rollout import drive_in_action

    alarm(aws, "app-5xx", "ALARM")
    start(aws, "canary 10 5", alarms=("app-5xx",))
    result = BuildResult(ok=True, function="app", alias="live",
                         rollout=RolloutResult(strategy="canary 10 5", phase="shifting"))
    summary, clock = tmp_path / "summary.md", Clock()
    with pytest.raises(RolledBack, match="alarm app-5xx is in ALARM"):
        drive_in_action(wrapper(aws), result, out=io.StringIO(), summary_path=str(summary),
                        clock=clock, sleep=clock.sleep)
    assert "rolled back to version 1 (alarm app-5xx is in ALARM)" in summary.read_text()
    assert routing(aws) == ("1", {})


def test_a_rollout_whose_alias_was_moved_meanwhile_is_stale_and_left_alone(aws, two_versions):
    start(aws, "linear 25 every 1")
    aws.client("lambda").update_alias(FunctionName="app", Name="live", FunctionVersion="2",
                                      RoutingConfig={"AdditionalVersionWeights": {}})
    with pytest.raises(RolloutError, match="was moved outside its rollout .* stale"):
        driver(aws, Clock()).run()
    with pytest.raises(RolloutError, match="stale"):
        driver(aws, Clock()).abort()
    assert routing(aws) == ("2", {})
    assert "(stale: the alias was moved outside this rollout)" in "\n".join(
        describe_alias(driver(aws, Clock())))


def cli_project(aws, git_server, make_repo, git_token, tmp_path, monkeypatch, release: str,
                files: dict[str, str] | None = None) -> tuple[object, list[str]]:
    """A one-function repository with `release` keys, and `lambda3 deploy`'s arguments."""
    role = aws.lambda_role()
    build = ("function:\n  runtimes: [python3.11]\n  handler: app.handler\n"
             f"  role: {role}\n  files: [app.py]\n{release}")
    repo = make_repo({"app.py": app(1), "build.yaml": build, **(files or {})})
    url = git_server.add_repo("acme/app", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    monkeypatch.chdir(tmp_path)
    return repo, ["deploy", "--local-builder", "--endpoint-url", aws.endpoint_url, "-g", url,
                  "-f", "app", "-b", "main", "-a", "live", "-y"]


def test_lambda3_deploy_rollout_drives_it_to_the_end_then_prunes(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch, capsys):
    from lambda3.cli import main

    repo, args = cli_project(aws, git_server, make_repo, git_token, tmp_path, monkeypatch,
                             "prune: {keep: 1}\n")
    assert main(args) == 0
    repo.commit("v2", files={"app.py": app(2)})
    assert main([*args, "--rollout", "canary 50 0.01"]) == 0  # 0.6 s on the real clock
    err = capsys.readouterr().err
    assert "live: canary 50 0.01: version 1 -> 2: 50.0% of traffic on version 2" in err
    assert "complete, version 2 takes all traffic" in err
    assert "prune: delete version 1 of app" in err
    assert routing(aws) == ("2", {})


def test_lambda3_rollout_abort_and_status(aws, two_versions, capsys, monkeypatch):
    from lambda3.cli import main

    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    assert main(["rollout", "status", "app", "-a", "live"]) == 0
    assert "no rollout recorded on this alias" in capsys.readouterr().out
    start(aws, "linear 10 every 5")
    assert main(["rollout", "status", "app", "-a", "live"]) == 0
    assert "app:live -> version 1 (+ version 2 10%)" in capsys.readouterr().out
    assert main(["rollout", "abort", "app", "-a", "live"]) == 0
    assert "alias live is on version 1" in capsys.readouterr().out
    assert routing(aws) == ("1", {})
    assert main(["rollout", "continue", "app", "-a", "live"]) == 1
    assert "rolled back: aborted with `lambda3 rollout abort`" in capsys.readouterr().err


def test_an_alias_that_changes_under_every_move_stops_the_driver(aws, two_versions):
    start(aws, "linear 50 every 1")
    made = driver(aws, Clock())
    refused = []

    def refuse(**kwargs):
        refused.append(1)
        return error_response("PreconditionFailedException", 412, "stale")

    made.aws.clients("lambda").meta.events.register_first("before-call.lambda.UpdateAlias",
                                                          refuse)
    with pytest.raises(RolloutError, match="changed under every one of 6 moves"):
        made.run()
    assert len(refused) == 6 and routing(aws) == ("1", {"2": 0.5})


def test_post_traffic_checks_run_through_the_alias_once_it_takes_all_traffic(aws, two_versions):
    start(aws, "canary 10 5", post_checks=True)
    assert routing(aws) == ("1", {"2": 0.1})
    clock = Clock()
    made = driver(aws, clock)
    with pytest.raises(RolloutError, match="post-traffic checks of version 2 have not run"):
        made.run()
    assert routing(aws) == ("2", {}) and recorded(aws).phase == model.POST_CHECKS
    assert recorded(aws).old == "1"
    after = Check("events/after.json", json.dumps({"probe": 1}), {"v": 2, "echo": {"probe": 1}})
    invoked = []
    made.aws.clients("lambda").meta.events.register(
        "before-parameter-build.lambda.Invoke",
        lambda params, **kwargs: invoked.append(params["Qualifier"]))
    assert made.run([], [after]).phase == model.COMPLETE
    assert invoked == ["live"]  # through the alias, as the traffic goes
    assert any("post-traffic check events/after.json passed on version 2" in line
               for line in made.lines)
    assert routing(aws) == ("2", {}) and recorded(aws).phase == model.COMPLETE


@pytest.mark.parametrize("check, says", [
    (Check("events/fail.json", '{"fail": true}'), "the function raised an error"),
    (Check("events/after.json", "{}", {"v": 1}), "the answer .* does not contain"),
])
def test_a_failed_post_check_rolls_back_to_the_old_version(aws, two_versions, check, says):
    start(aws, "all-at-once", post_checks=True)
    assert routing(aws) == ("2", {})  # all at once: all the traffic first, then the checks
    with pytest.raises(RolledBack, match=f"post-traffic check {check.file} failed: {says}") as e:
        driver(aws, Clock()).run([], [check])
    assert "alias live is on version 1" in str(e.value)
    assert routing(aws) == ("1", {}) and recorded(aws).phase == model.ROLLED_BACK


def test_an_alarm_during_the_post_checks_rolls_back_before_they_run(aws, two_versions):
    alarm(aws, "app-5xx", "ALARM")
    start(aws, "all-at-once", alarms=("app-5xx",), post_checks=True)
    made = driver(aws, Clock())
    with pytest.raises(RolledBack, match="alarm app-5xx is in ALARM"):
        made.run([], [Check("events/after.json", "{}")])
    assert not any("post-traffic check events" in line for line in made.lines)
    assert routing(aws) == ("1", {})


def test_an_abort_during_the_post_checks_goes_back_to_the_old_version(aws, two_versions):
    start(aws, "all-at-once", post_checks=True)
    made = driver(aws, Clock())
    assert made.abort("stop").routing() == ("1", {})
    assert routing(aws) == ("1", {}) and recorded(aws).reason == "stop"


def test_a_driver_crashed_before_the_post_checks_is_continued_with_the_event_files(
        aws, two_versions, tmp_path):
    start(aws, "linear 50 every 1", post_checks=True)

    class Crash(Exception):
        pass

    clock = Clock()
    made = driver(aws, clock)
    made.aws.clients("lambda").meta.events.register(
        "before-parameter-build.lambda.Invoke",
        lambda **kwargs: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        made.run([], [Check("events/after.json", "{}")])
    assert routing(aws) == ("2", {}) and recorded(aws).phase == model.POST_CHECKS

    env = {**os.environ, "LAMBDA3_ENDPOINT_URL": aws.endpoint_url}
    command = [sys.executable, "-m", "lambda3", "rollout", "continue", "app", "-a", "live"]
    missing = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 1
    assert "post-traffic checks of version 2 have not run yet" in missing.stderr
    assert "--post-check FILE" in missing.stderr and "Traceback" not in missing.stderr
    event = tmp_path / "after.json"
    event.write_text(json.dumps({"probe": 1}))
    done = subprocess.run([*command, "--post-check", str(event)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "alias live is on version 2" in done.stdout
    assert routing(aws) == ("2", {}) and recorded(aws).phase == model.COMPLETE


def test_lambda3_deploy_with_post_checks_rolls_a_bad_build_back(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch, capsys):
    from lambda3.cli import main

    repo, args = cli_project(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch,
        "post_checks:\n  - event: events/after.json\n    expect: {echo: {probe: 1}}\n",
        {"events/after.json": json.dumps({"probe": 1})})
    assert main(args) == 0
    repo.commit("v2", files={"app.py": app(2)})
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "post-traffic check events/after.json passed on version 2" in err
    assert routing(aws) == ("2", {})
    broken = "def handler(event, context):\n    return {'echo': 'nothing'}\n"
    repo.commit("v3", files={"app.py": broken})
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "post-traffic check events/after.json failed: the answer" in err
    assert "alias live is on version 2" in err and "Traceback" not in err
    assert routing(aws) == ("2", {}) and recorded(aws).phase == model.ROLLED_BACK


def test_each_function_of_functions_rolls_out_with_its_own_release_keys(
        aws, git_server, make_repo, git_token, tmp_path, monkeypatch):
    from lambda3.rollout import after_deploy

    role = aws.lambda_role()
    common = f"    runtimes: [python3.11]\n    handler: app.handler\n    role: {role}\n"
    build = ("functions:\n"
             f"  api:\n    name: shop-api\n{common}    files: [app.py]\n"
             "    post_checks: [{event: events/api.json, expect: {echo: {path: /}}}]\n"
             f"  worker:\n    name: shop-worker\n{common}    files: [app.py]\n")
    repo = make_repo({"app.py": app(1), "build.yaml": build,
                      "events/api.json": json.dumps({"path": "/"})})
    url = git_server.add_repo("acme/shop", repo.path)
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)

    def deploy():
        request = BuildRequest.from_event({"action": "build", "repository": url, "ref": "main",
                                           "token": git_token, "function": "shop",
                                           "alias": "live"})
        return deploy_request(request, Timings(), settings=BuilderSettings.from_environ(),
                              aws=wrapper(aws))

    assert deploy().ok
    repo.commit("v2", files={"app.py": app(2)})
    second = deploy()
    assert second.ok, second
    api, worker = second.functions
    assert api.rollout.phase == model.POST_CHECKS and api.rollout.post_checks
    assert worker.rollout is None  # no release keys of its own, none at the top: it moved
    lam = aws.client("lambda")
    for name in ("shop-api", "shop-worker"):
        assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "2"
    lines: list[str] = []
    after_deploy(wrapper(aws), second, show=lines.append)
    assert "live: post-traffic check events/api.json passed on version 2" in lines
    state = model.decode(lam.get_alias(FunctionName="shop-api", Name="live")["Description"])
    assert state.phase == model.COMPLETE


def test_a_check_that_cannot_be_invoked_leaves_the_rollout_where_it_is(aws, two_versions):
    start(aws, "all-at-once", post_checks=True)
    made = driver(aws, Clock())
    made.aws.clients("lambda").meta.events.register_first(
        "before-call.lambda.Invoke", lambda **kwargs: error_response(
            "AccessDeniedException", 403, "not allowed to invoke"))
    with pytest.raises(RolloutError, match=r"post-traffic check events/after.json: invoking "
                                           r"app:live failed: .*not allowed to invoke; the "
                                           r"rollout stays where it is") as caught:
        made.run([], [Check("events/after.json", "{}")])
    assert "lambda3 rollout abort app -a live" in str(caught.value)
    assert routing(aws) == ("2", {}) and recorded(aws).phase == model.POST_CHECKS
