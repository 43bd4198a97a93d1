"""The emulator routes an alias's invocations by its weights, as Lambda does, and records
each invocation's AWS/Lambda metrics (Invocations, Errors, Duration by FunctionName,
Resource and ExecutedVersion) in its CloudWatch: a rollout's error guard then trips on what
the new version really did, with no metric injected."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from builder import rollout as model
from builder.aws import Aws
from builder.clients import Clients
from builder.rollout import RolledBack
from lambda3.embedded.moto_functions import routed
from lambda3.rollout import Driver
from tests.fixtures_aws import make_zip

GOOD = "def handler(event, context):\n    return {'v': 1}\n"
BAD = "def handler(event, context):\n    raise ValueError('version 2 is broken')\n"


@pytest.fixture
def canary(aws):
    """app: version 1 (good) behind alias live, version 2 (always raises) published."""
    lam = aws.client("lambda")
    aws.create_function("app", {"app.py": GOOD})
    lam.publish_version(FunctionName="app")
    lam.create_alias(FunctionName="app", Name="live", FunctionVersion="1")
    lam.update_function_code(FunctionName="app", ZipFile=make_zip({"app.py": BAD}))
    lam.publish_version(FunctionName="app")
    return lam


def sums(aws, version: str, metric: str) -> float:
    now = datetime.now(timezone.utc)
    found = aws.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda", MetricName=metric, Statistics=["Sum"], Period=60,
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1),
        Dimensions=[{"Name": "FunctionName", "Value": "app"},
                    {"Name": "Resource", "Value": "app:live"},
                    {"Name": "ExecutedVersion", "Value": version}])
    return sum(point["Sum"] for point in found["Datapoints"])


def test_routing_follows_the_weights():
    class Alias:
        function_version = "1"
        routing_config = {"AdditionalVersionWeights": {"2": 0.25}}

    assert [routed(Alias(), lambda p=p: p) for p in (0.0, 0.24, 0.25, 0.9)] == [
        "2", "2", "1", "1"]
    Alias.routing_config = None
    assert routed(Alias(), lambda: 0.0) == "1"


def test_an_alias_with_weights_runs_both_versions_and_their_metrics_are_recorded(aws, canary):
    canary.update_alias(FunctionName="app", Name="live",
                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    ran = {"1": 0, "2": 0}
    for _ in range(60):
        answer = canary.invoke(FunctionName="app", Qualifier="live", Payload=b"{}")
        ran[answer["ExecutedVersion"]] += 1
        assert bool(answer.get("FunctionError")) == (answer["ExecutedVersion"] == "2")
    assert ran["1"] >= 10 and ran["2"] >= 10  # 60 draws at 50%: each side at least 10
    assert sums(aws, "1", "Invocations") == ran["1"] and sums(aws, "1", "Errors") == 0
    assert sums(aws, "2", "Invocations") == ran["2"] == sums(aws, "2", "Errors")
    unqualified = aws.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Invocations", Statistics=["Sum"], Period=60,
        StartTime=datetime.now(timezone.utc) - timedelta(minutes=5),
        EndTime=datetime.now(timezone.utc) + timedelta(minutes=1),
        Dimensions=[{"Name": "FunctionName", "Value": "app"}])
    assert sum(p["Sum"] for p in unqualified["Datapoints"]) == 60  # each counted once


def test_the_error_guard_rolls_back_on_real_invocations(aws, canary):
    state = model.start_state(model.parse_strategy("canary 50 0.05"), "1", "2", time.time())
    canary.update_alias(**model.update_alias_args("app", "live", state, None))
    for _ in range(30):  # traffic meanwhile: half of it to the broken version
        canary.invoke(FunctionName="app", Qualifier="live", Payload=json.dumps({}).encode())
    lines: list[str] = []
    driver = Driver(Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url)), "app",
                    "live", show=lines.append, poll=0.5)
    with pytest.raises(RolledBack, match=r"version 2 failed 100.0% of \d+ invocations \(\d+ "
                                         r"errors, 0 throttles\) against 0.0% for version 1"):
        driver.run()
    found = canary.get_alias(FunctionName="app", Name="live")
    assert found["FunctionVersion"] == "1" and not (found.get("RoutingConfig") or {}).get(
        "AdditionalVersionWeights")


def test_an_event_invocation_runs_the_version_its_answer_names(aws, canary):
    canary.update_alias(FunctionName="app", Name="live",
                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    named = []
    for _ in range(16):
        answer = canary.invoke(FunctionName="app", Qualifier="live", InvocationType="Event",
                               Payload=b"{}")
        assert answer["StatusCode"] == 202
        named.append(answer["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"])
    deadline = time.time() + 60
    while time.time() < deadline and sums(aws, "1", "Invocations") + sums(
            aws, "2", "Invocations") < len(named):
        time.sleep(0.2)
    assert sums(aws, "1", "Invocations") == named.count("1")
    assert sums(aws, "2", "Invocations") == named.count("2") == sums(aws, "2", "Errors")
