"""Promote on the emulator: the tested version's code and layers, byte for byte, to another
alias or function, with no rebuild; optionally as a rollout."""
from __future__ import annotations

import json
import time

import pytest

from builder import rollout as model
from builder.aws import Aws
from builder.clients import Clients
from builder.errors import AwsError, RequestError
from lambda3.cli import main
from lambda3.commands.promote import promote
from lambda3.rollout import Driver
from tests.fixtures_aws import make_zip

STAMP = "lambda3 0123456789ab 2026-12-01T00:00:00Z"
CODE = make_zip({"app.py": "def handler(e, c):\n    return {'tested': True}\n"})


def wrapper(aws) -> Aws:
    return Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url), sleep=lambda s: None)


@pytest.fixture
def staged(aws):
    """app: version 1 on prod, version 2 (the tested one, with layer app-deps:1) on
    staging; app-prod: another function with its own code and version 1 on prod."""
    lam = aws.client("lambda")
    aws.create_function("app", {"app.py": "def handler(e, c):\n    return 'old'\n"})
    lam.publish_version(FunctionName="app", Description="lambda3 aaaaaaaaaaaa")
    lam.create_alias(FunctionName="app", Name="prod", FunctionVersion="1")
    deps = lam.publish_layer_version(LayerName="app-deps", Content={
        "ZipFile": make_zip({"python/x.py": "X = 1\n"})})["LayerVersionArn"]
    lam.update_function_configuration(FunctionName="app", Layers=[deps])
    lam.update_function_code(FunctionName="app", ZipFile=CODE)
    lam.publish_version(FunctionName="app", Description=STAMP)
    lam.create_alias(FunctionName="app", Name="staging", FunctionVersion="2")
    aws.create_function("app-prod", {"app.py": "def handler(e, c):\n    return 'prod'\n"},
                        MemorySize=512)
    lam.publish_version(FunctionName="app-prod")
    lam.create_alias(FunctionName="app-prod", Name="prod", FunctionVersion="1")
    return deps


def alias_of(aws, function: str, alias: str) -> dict:
    return aws.client("lambda").get_alias(FunctionName=function, Name=alias)


def test_promote_to_another_alias_moves_it_to_the_tested_version(aws, staged):
    done = promote(wrapper(aws), "app", "staging", "prod")
    assert (done.version, done.published, done.previous) == ("2", False, "1")
    assert done.source.commit == "0123456789ab"
    assert alias_of(aws, "app", "prod")["FunctionVersion"] == "2"


def test_promote_to_another_function_deploys_the_same_code_and_layers(aws, staged):
    fetched = []

    def fetch(url):
        fetched.append(url)
        return CODE

    done = promote(wrapper(aws), "app", "staging", "prod", to_function="app-prod", fetch=fetch)
    assert done.published and done.version == "2" and fetched
    lam = aws.client("lambda")
    source = lam.get_function_configuration(FunctionName="app", Qualifier="2")
    target = lam.get_function_configuration(FunctionName="app-prod", Qualifier="2")
    assert target["CodeSha256"] == source["CodeSha256"]
    assert [x["Arn"] for x in target["Layers"]] == [staged]
    assert target["Description"] == STAMP and target["MemorySize"] == 512  # its own settings
    assert alias_of(aws, "app-prod", "prod")["FunctionVersion"] == "2"
    again = promote(wrapper(aws), "app", "staging", "prod", to_function="app-prod", fetch=fetch)
    assert (again.version, again.published) == ("2", False) and len(fetched) == 1


def test_code_that_is_not_the_tested_code_is_refused(aws, staged):
    with pytest.raises(AwsError, match="has CodeSha256 .*, not "):
        promote(wrapper(aws), "app", "staging", "prod", to_function="app-prod",
                fetch=lambda url: b"something else")
    assert alias_of(aws, "app-prod", "prod")["FunctionVersion"] == "1"


def test_promote_as_a_rollout_starts_it_and_a_driver_completes_it(aws, staged):
    now = [float(int(time.time()))]
    done = promote(wrapper(aws), "app", "staging", "prod", rollout="canary 25 1",
                   now=lambda: now[0])
    found = alias_of(aws, "app", "prod")
    assert found["FunctionVersion"] == "1"
    assert found["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.25}

    def sleep(seconds):
        now[0] += seconds

    final = Driver(wrapper(aws), "app", "prod", clock=lambda: now[0], sleep=sleep,
                   show=lambda line: None).run()
    assert final.phase == model.COMPLETE and done.version == "2"
    assert alias_of(aws, "app", "prod")["FunctionVersion"] == "2"


def test_a_source_mid_rollout_is_refused(aws, staged):
    aws.client("lambda").update_alias(FunctionName="app", Name="staging", FunctionVersion="1",
                                      RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    with pytest.raises(RequestError, match="mid-rollout"):
        promote(wrapper(aws), "app", "staging", "prod")


def test_the_command_says_which_commit_is_promoted(aws, staged, capsys, monkeypatch):
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    assert main(["promote", "app", "--from-alias", "staging", "--to-alias", "prod",
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["commit"] == "0123456789ab"
    assert "promoted 0123456789ab (version 2 of app) to app:prod" in captured.err


def test_the_target_is_reached_with_the_role_given(aws, staged, capsys, monkeypatch):
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    other = f"arn:aws:iam::{int(aws.account) + 1:012d}:role/promote"  # another account
    assert main(["promote", "app", "--from-alias", "staging", "--to-alias", "prod",
                 "--to-function", "app-prod", "--role-arn", other]) == 1
    assert "function app-prod does not exist in the target account" in capsys.readouterr().err
    mine = f"arn:aws:iam::{aws.account}:role/promote"
    assert main(["promote", "app", "--from-alias", "staging", "--to-alias", "prod",
                 "--role-arn", mine, "--rollout", "canary 50 0.01", "--poll", "0.1"]) == 0
    captured = capsys.readouterr()
    assert "prod: canary 50 0.01: version 1 -> 2: 50.0% of traffic on version 2" in captured.err
    assert "complete, version 2 takes all traffic" in captured.err
    assert alias_of(aws, "app", "prod")["FunctionVersion"] == "2"


def test_the_action_promotes_with_promote_from_and_names_the_commit(aws, staged, tmp_path):
    import io

    from lambda3.action.run import ActionSettings, run

    settings = ActionSettings(aws_region=aws.region, function_name="app", repository="unused",
                              ref="unused", alias="prod", promote_from="staging",
                              endpoint_url=aws.endpoint_url, mask_account_id=False,
                              output_path=str(tmp_path / "output"),
                              summary_path=str(tmp_path / "summary"))
    out = io.StringIO()
    assert run(settings, stream=out, ambient={"aws_access_key_id": "testing",
                                              "aws_secret_access_key": "testing"}) == 0, (
        out.getvalue())
    import re

    text = (tmp_path / "output").read_text()
    outputs = {m[0]: m[2] for m in re.findall(r"(\S+)<<(\S+)\n(.*?)\n\2", text, re.S)}
    assert outputs["commit"] == "0123456789ab" and outputs["version"] == "2"
    assert outputs["alias"] == "prod"
    assert alias_of(aws, "app", "prod")["FunctionVersion"] == "2"
    assert "0123456789ab" in (tmp_path / "summary").read_text()
