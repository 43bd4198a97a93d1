"""Promote on the emulator: the tested version's code and layers, byte for byte, to another
alias or function, with no rebuild; optionally as a rollout. Into another account (credentials
of a role assumed there: the emulator keeps each account apart) the layers are copied."""
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
from tests.fixtures_aws import LAMBDA_TRUST, LOCAL_RUNTIME, make_zip

STAMP = "lambda3 0123456789ab 2026-12-01T00:00:00Z"
CODE = make_zip({"app.py": "def handler(e, c):\n    return {'tested': True}\n"})
DEPS = make_zip({"python/x.py": "X = 1\n"})
OTHER = "222222222222"  # the target account


def wrapper(aws) -> Aws:
    return Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url), sleep=lambda s: None)


def in_account(aws, account: str) -> Aws:
    """The wrapper on credentials of a role assumed in `account`."""
    found = aws.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/promote",
                                          RoleSessionName="test")["Credentials"]
    clients = Clients(region=aws.region, endpoint_url=aws.endpoint_url).with_credentials({
        "aws_access_key_id": found["AccessKeyId"],
        "aws_secret_access_key": found["SecretAccessKey"],
        "aws_session_token": found["SessionToken"]})
    return Aws(clients, sleep=lambda s: None)


@pytest.fixture
def staged(aws):
    """app: version 1 on prod, version 2 (the tested one, with layer app-deps:1) on
    staging; app-prod: another function with its own code and version 1 on prod."""
    lam = aws.client("lambda")
    aws.create_function("app", {"app.py": "def handler(e, c):\n    return 'old'\n"})
    lam.publish_version(FunctionName="app", Description="lambda3 aaaaaaaaaaaa")
    lam.create_alias(FunctionName="app", Name="prod", FunctionVersion="1")
    deps = lam.publish_layer_version(LayerName="app-deps", Content={"ZipFile": DEPS},
                                     Description="deps of app", CompatibleRuntimes=["python3.12"],
                                     CompatibleArchitectures=["arm64"],
                                     LicenseInfo="MIT")["LayerVersionArn"]
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
    assert [x["Arn"] for x in target["Layers"]] == [staged] == list(done.attached)
    assert not any(layer.copied for layer in done.layers)  # the same account: none copied
    assert target["Description"] == STAMP and target["MemorySize"] == 512  # its own settings
    assert alias_of(aws, "app-prod", "prod")["FunctionVersion"] == "2"
    again = promote(wrapper(aws), "app", "staging", "prod", to_function="app-prod", fetch=fetch)
    assert (again.version, again.published) == ("2", False) and len(fetched) == 1


def test_code_that_is_not_the_tested_code_is_refused(aws, staged):
    with pytest.raises(AwsError, match="the code of version 2 of app as downloaded has "
                                       "CodeSha256 .*, not "):
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


def test_promote_with_checks_runs_them_before_and_after_the_traffic_moves(
        aws, staged, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    event = tmp_path / "smoke.json"
    event.write_text('{"ping": 1}')
    args = ["promote", "app", "--from-alias", "staging", "--to-alias", "prod"]
    assert main([*args, "--post-check", str(tmp_path / "none.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lambda3 promote: --post-check ") and "none.json" in err
    assert alias_of(aws, "app", "prod")["FunctionVersion"] == "1"  # nothing moved
    assert main([*args, "--check", str(event), "--post-check", str(event)]) == 0
    err = capsys.readouterr().err
    assert f"check {event} passed on version 2" in err
    assert f"post-traffic check {event} passed on version 2" in err
    found = alias_of(aws, "app", "prod")
    assert found["FunctionVersion"] == "2"
    assert model.decode(found["Description"]).phase == model.COMPLETE

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


# -- into another account: the layers are copied --------------------------------------------
@pytest.fixture
def other(aws):
    """Account OTHER with its own app-prod (version 1 on prod), and its wrapper."""
    target = in_account(aws, OTHER)
    role = target.clients("iam").create_role(RoleName="app-prod",
                                             AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    lam = target.clients("lambda")
    lam.create_function(FunctionName="app-prod", Runtime=LOCAL_RUNTIME, Handler="app.handler",
                        Role=role["Role"]["Arn"], MemorySize=512, Code={"ZipFile": make_zip(
                            {"app.py": "def handler(e, c):\n    return 'prod'\n"})})
    lam.publish_version(FunctionName="app-prod")
    lam.create_alias(FunctionName="app-prod", Name="prod", FunctionVersion="1")
    return target


class Downloads:
    """The injected download: the code at its https location, the layer at moto's s3://."""

    def __init__(self, layer: bytes = DEPS, code: bytes = CODE) -> None:
        self.layer, self.code, self.urls = layer, code, []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.code if url.startswith("https://") else self.layer

    @property
    def layers(self) -> int:
        return sum(not url.startswith("https://") for url in self.urls)


def to_other(aws, other, fetch, **kwargs):
    return promote(wrapper(aws), "app", "staging", "prod", to_function="app-prod",
                   target_aws=other, fetch=fetch, **kwargs)


def layer_versions(target: Aws, name: str = "app-deps") -> list[int]:
    found = target.clients("lambda").list_layer_versions(LayerName=name)["LayerVersions"]
    return sorted(x["Version"] for x in found)


def alias_in(target: Aws, function: str, alias: str) -> str:
    return target.clients("lambda").get_alias(FunctionName=function,
                                              Name=alias)["FunctionVersion"]


def test_promote_to_another_account_copies_the_layers(aws, staged, other):
    fetch = Downloads()
    done = to_other(aws, other, fetch)
    lam = other.clients("lambda")
    config = lam.get_function_configuration(FunctionName="app-prod", Qualifier=done.version)
    attached = [x["Arn"] for x in config["Layers"]]
    assert attached == list(done.attached) and attached[0].split(":")[4] == OTHER
    original = aws.client("lambda").get_layer_version(LayerName="app-deps", VersionNumber=1)
    copy = lam.get_layer_version(LayerName="app-deps", VersionNumber=1)
    assert copy["LayerVersionArn"] == attached[0]
    assert copy["Content"]["CodeSha256"] == original["Content"]["CodeSha256"]
    kept = ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo")
    assert {key: copy.get(key) for key in kept} == {key: original[key] for key in kept}
    assert config["CodeSha256"] == aws.client("lambda").get_function_configuration(
        FunctionName="app", Qualifier="2")["CodeSha256"]
    assert config["Description"] == STAMP and config["MemorySize"] == 512
    assert [(x.source, x.published) for x in done.layers] == [(staged, True)]
    assert done.line().endswith(f"layers copied into account {OTHER}: app-deps:1 as version 1 "
                                "(published)")
    assert done.to_json()["layers"] == attached
    assert done.to_json()["copied_layers"] == [
        {"source": staged, "arn": attached[0], "published": True}]
    assert alias_in(other, "app-prod", "prod") == done.version == "2"


def test_a_second_promote_to_another_account_publishes_nothing(aws, staged, other):
    fetch = Downloads()
    first = to_other(aws, other, fetch)
    downloads = len(fetch.urls)
    again = to_other(aws, other, fetch)
    assert (again.version, again.published) == (first.version, False)
    assert again.attached == first.attached and not any(x.published for x in again.layers)
    assert "(already there)" in again.line()
    assert len(fetch.urls) == downloads and layer_versions(other) == [1]
    versions = other.clients("lambda").list_versions_by_function(FunctionName="app-prod")
    assert [v["Version"] for v in versions["Versions"]] == ["$LATEST", "1", "2"]


def test_a_layer_already_in_the_target_with_the_same_content_is_reused(aws, staged, other):
    lam = other.clients("lambda")
    same = lam.publish_layer_version(LayerName="app-deps", Content={"ZipFile": DEPS})
    lam.publish_layer_version(LayerName="app-deps", Content={"ZipFile": make_zip(
        {"python/x.py": "X = 2\n"})})  # the latest version is another content
    fetch = Downloads(layer=b"not to be downloaded")
    done = to_other(aws, other, fetch)
    assert done.attached == (same["LayerVersionArn"],) and fetch.layers == 0
    assert layer_versions(other) == [1, 2]
    assert "app-deps:1 as version 1 (already there)" in done.line()


def test_a_corrupted_layer_download_fails_clearly_and_leaves_the_alias(aws, staged, other):
    with pytest.raises(AwsError, match=f"layer version {staged} as downloaded has "
                                       "CodeSha256 .*, not .*: re-run the promote"):
        to_other(aws, other, Downloads(layer=b"corrupted"))
    assert alias_in(other, "app-prod", "prod") == "1"
    assert layer_versions(other) == []


def test_the_layer_list_keeps_the_target_accounts_own_and_readable_layers(aws, other):
    """A layer of the target account stays; so does one of a third account (AWS's, a public
    one) the target can read; one it cannot read is copied, and fails here, clearly, since
    it is not in the source's reach either. (The emulator cannot share a layer across accounts:
    the target's GetLayerVersion of the third account's layer is answered here.)"""
    from botocore.awsrequest import AWSResponse

    from lambda3.layer_copy import copy_layers

    own = other.clients("lambda").publish_layer_version(
        LayerName="own", Content={"ZipFile": DEPS})["LayerVersionArn"]
    public = f"arn:aws:lambda:{aws.region}:333333333333:layer:public:7"
    hidden = f"arn:aws:lambda:{aws.region}:444444444444:layer:hidden:1"

    def readable(params, **kwargs):
        if "333333333333" in params["url_path"]:
            return (AWSResponse("https://lambda.test", 200, {}, None),
                    {"LayerVersionArn": public, "Version": 7, "Content": {}})
        return None

    other.clients("lambda").meta.events.register_first("before-call.lambda.GetLayerVersion",
                                                       readable)
    fetch = Downloads()
    layers = copy_layers(wrapper(aws), other, [own, public], source_account=aws.account,
                         target_account=OTHER, fetch=fetch)
    assert [(x.arn, x.copied) for x in layers] == [(own, False), (public, False)]
    assert fetch.urls == [] and layer_versions(other, "public") == []
    with pytest.raises(AwsError, match=f"layer version {hidden} of the promoted version no "
                                       "longer exists, so it cannot be copied: deploy"):
        copy_layers(wrapper(aws), other, [own, hidden], source_account=aws.account,
                    target_account=OTHER, fetch=fetch)


def test_the_command_copies_into_the_role_s_account_or_says_in_one_line_why_not(
        aws, staged, other, capsys, monkeypatch):
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    role = f"arn:aws:iam::{OTHER}:role/promote"
    assert main(["promote", "app", "--from-alias", "staging", "--to-alias", "prod",
                 "--to-function", "app-prod", "--role-arn", role]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lambda3 promote: downloading layer version {staged} failed (")
    assert "\n" not in err and "Traceback" not in err
    assert alias_in(other, "app-prod", "prod") == "1" and layer_versions(other) == []


@pytest.mark.slow
def test_zips_over_50_mb_are_copied_through_the_target_s_bucket(aws, staged, other):
    """Without --bucket a layer (then the code) over the direct-upload limit is refused in
    one line naming it, its size, the limit and the fix, before anything is published; with
    it, they are uploaded there once and published from it."""
    import os

    from builder.errors import LimitError

    big = make_zip({"python/blob.bin": os.urandom(51 * 1024 * 1024)})
    s3, lam = aws.client("s3"), aws.client("lambda")
    s3.create_bucket(Bucket="source-art")
    s3.put_object(Bucket="source-art", Key="big.zip", Body=big)
    blob = lam.publish_layer_version(LayerName="app-blob", Content={
        "S3Bucket": "source-art", "S3Key": "big.zip"})["LayerVersionArn"]
    lam.update_function_configuration(FunctionName="app", Layers=[staged, blob])
    lam.publish_version(FunctionName="app", Description=STAMP)
    lam.update_alias(FunctionName="app", Name="staging", FunctionVersion="3")
    with pytest.raises(LimitError, match=f"layer version {blob} is 51.0 MB zipped, over "
                                         "Lambda's 50.0 MB direct-upload limit: pass --bucket"):
        to_other(aws, other, Downloads(layer=big))
    assert layer_versions(other) == [] and alias_in(other, "app-prod", "prod") == "1"

    target_s3 = other.clients("s3")
    target_s3.create_bucket(Bucket="art")
    target = other.clients("lambda")
    target.publish_layer_version(LayerName="app-deps", Content={"ZipFile": DEPS})  # reused
    done = to_other(aws, other, Downloads(layer=big), bucket="art")
    copy = target.get_layer_version(LayerName="app-blob", VersionNumber=1)
    assert done.attached[1] == copy["LayerVersionArn"] and done.layers[1].published
    assert copy["Content"]["CodeSha256"] == lam.get_layer_version(
        LayerName="app-blob", VersionNumber=1)["Content"]["CodeSha256"]
    assert [o["Size"] for o in target_s3.list_objects_v2(Bucket="art")["Contents"]] == [len(big)]

    s3.put_object(Bucket="source-art", Key="code.zip", Body=big)  # code over 50 MB
    lam.update_function_code(FunctionName="app", S3Bucket="source-art", S3Key="code.zip")
    lam.publish_version(FunctionName="app", Description=STAMP)
    lam.update_alias(FunctionName="app", Name="staging", FunctionVersion="4")
    with pytest.raises(LimitError, match="the code of version 4 of app is 51.0 MB zipped"):
        to_other(aws, other, Downloads(layer=big, code=big))
    done = to_other(aws, other, Downloads(layer=big, code=big), bucket="art")
    config = target.get_function_configuration(FunctionName="app-prod", Qualifier=done.version)
    assert config["CodeSha256"] == lam.get_function_configuration(
        FunctionName="app", Qualifier="4")["CodeSha256"]
    assert alias_in(other, "app-prod", "prod") == done.version
    assert len(target_s3.list_objects_v2(Bucket="art")["Contents"]) == 1  # the same zip, once
