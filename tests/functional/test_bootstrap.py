"""`bootstrap()` against the emulator over HTTP.

The builder's answers come from `FakeBuilder`, in this process: ping reports what a runtime
without installers reports, and the bootstrap action runs the real `self_install` against
the emulator with a stand-in installer (no PyPI). The real thing, through the local invoker,
is tests/e2e/test_bootstrap_e2e.py.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from bootstrap.builder_package import BUILDER_DIR, build_builder_zip, toolchain_pins
from bootstrap.config import BootstrapConfig
from bootstrap.run import bootstrap
from bootstrap.seed_layer import build_seed_layer
from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuilderInfo, BuildRequest, BuildResult
from builder.package import Entry, make_zip
from builder.runtimes import make_target
from builder.selfinstall import ToolchainMismatch, attach_toolchain, self_install
from lambda3.commands.bootstrap import report
from tests.fixtures_aws import make_zip as aws_zip

NAME = "lambda3-builder"
ROLE_NOT_READY = "The role defined for the function cannot be assumed by Lambda."


@dataclass(frozen=True)
class FakeInstall:
    packages: tuple[tuple[str, str], ...]
    left_out: tuple[str, ...] = ()
    installer: str = "uv 0.13.9"
    mode: str = "native"


def fake_install(requirements, dest: Path, target, **options):
    """Writes a package and a dist-info per pin, and bin/uv: same pins, same files."""
    assert options["keep_bin"] is True and options["runtime_packages"] == "include"
    pins = toolchain_pins(requirements[0])
    for name, version in pins.items():
        module = name.lower().replace("-", "_")
        (dest / module).mkdir(parents=True)
        (dest / module / "__init__.py").write_text(f"__version__ = {version!r}\n")
        info = dest / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Name: {name}\nVersion: {version}\n")
    (dest / "bin").mkdir()
    (dest / "bin" / "uv").write_text("#!/bin/sh\n")
    (dest / "bin" / "uv").chmod(0o755)
    return FakeInstall(tuple(sorted(pins.items())))


def fake_seed(target, path: Path):
    source = path.with_suffix(".uv")
    source.write_text(f"uv for {target.describe()}\n")
    return make_zip([Entry("python/bin/uv", source, executable=True)], path)


class FakeBuilder:
    """The builder's answers to ping and bootstrap, computed here."""

    def __init__(self, aws: Aws, workdir: Path, runtime: str = "python3.12"):
        self.aws, self.workdir, self.runtime = aws, workdir, runtime
        self.events: list[str] = []

    def __call__(self, request: BuildRequest) -> BuildResult:
        self.events.append(request.action)
        if request.action == "ping":
            return BuildResult(ok=True, action="ping", builder=BuilderInfo(
                installers={"uv": self._tool("uv"), "pip": None},
                toolchain={name: self._tool(name) for name in ("dulwich", "PyYAML")}))
        environ = {"AWS_LAMBDA_FUNCTION_NAME": NAME,
                   "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.runtime}"}
        toolchain = self_install(self.workdir, aws=self.aws, install=fake_install,
                                 environ=environ)
        return BuildResult(ok=True, action="bootstrap", toolchain=toolchain)

    def _tool(self, name: str) -> str | None:
        """A package is importable when the function's layers hold the toolchain."""
        function = self.aws.get_function(NAME)
        if not any(":layer:lambda3-builder-toolchain:" in arn for arn in function.layers):
            return None
        return toolchain_pins()[name]


@pytest.fixture
def session():
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 aws_session_token="testing", region_name="us-east-1")


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def real_aws(aws, session, sleeps) -> Aws:
    factory = Clients(region=aws.region, endpoint_url=aws.endpoint_url, session=session)
    return Aws(factory, sleep=sleeps.append)


def run(real_aws, tmp_path, config=None, builder_dir=BUILDER_DIR, invoke=True):
    builder = FakeBuilder(real_aws, tmp_path / "builder-tmp") if invoke else None
    result = bootstrap(config or BootstrapConfig(), real_aws, builder, workdir=tmp_path / "work",
                       make_seed=fake_seed, builder_dir=builder_dir, sleep=lambda s: None)
    return result, builder


def changes(result) -> dict[tuple[str, str], str]:
    return {(c.resource, c.name): c.action for c in result.changes}


def layer_versions(aws, name: str) -> list[int]:
    versions = aws.client("lambda").list_layer_versions(LayerName=name)["LayerVersions"]
    return sorted(v["Version"] for v in versions)


def test_bootstrap_creates_role_bucket_and_function(aws, real_aws, tmp_path):
    result, builder = run(real_aws, tmp_path, BootstrapConfig(allow=("app-*", "api")))
    iam, s3, lam = aws.client("iam"), aws.client("s3"), aws.client("lambda")
    role = iam.get_role(RoleName="lambda3-builder-role")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"}
    policy = iam.get_role_policy(RoleName="lambda3-builder-role", PolicyName="lambda3")
    resources = {r for s in policy["PolicyDocument"]["Statement"] for r in s["Resource"]}
    assert "arn:aws:lambda:us-east-1:123456789012:function:app-*" not in resources
    deploy = iam.get_role(RoleName="lambda3-builder-deploy")["Role"]
    assert deploy["Arn"] == result.scoped_role_arn
    assert deploy["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "AWS": role["Arn"]}
    policy = iam.get_role_policy(RoleName="lambda3-builder-deploy", PolicyName="lambda3")
    resources = {r for s in policy["PolicyDocument"]["Statement"] for r in s["Resource"]}
    assert "arn:aws:lambda:us-east-1:123456789012:function:app-*" in resources
    bucket = "lambda3-artifacts-123456789012-us-east-1"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert not s3.get_bucket_versioning(Bucket=bucket).get("Status")
    config = lam.get_function_configuration(FunctionName=NAME)
    assert (config["Runtime"], config["Handler"], config["Timeout"], config["MemorySize"]) == (
        "python3.12", "builder.handler.lambda_handler", 900, 3008)
    assert config["EphemeralStorage"] == {"Size": 10240}
    assert config["Architectures"] == ["x86_64"]
    assert config["Role"] == role["Arn"] == result.role_arn
    assert config["Environment"]["Variables"] == {"LAMBDA3_ALLOW": "app-*,api",
                                                   "LAMBDA3_ALLOWED_HOSTS": "github.com",
                                                   "LAMBDA3_BUCKET": bucket,
                                                   "LAMBDA3_DEPLOY_ROLE": deploy["Arn"]}
    # no installer at first: seeded, self-installed, seed detached, tools importable
    assert builder.events == ["ping", "bootstrap", "ping"]
    assert [layer["Arn"] for layer in config["Layers"]] == [result.toolchain_layer_arn]
    assert result.seed_layer_arn.startswith(
        "arn:aws:lambda:us-east-1:123456789012:layer:lambda3-builder-seed:")
    assert set(changes(result).values()) == {"created"}
    assert result.to_json()["changed"] is True
    assert result.to_json()["allow"] == ["app-*", "api"]


def test_the_builder_runs_the_reproducible_zip_of_builder(aws, real_aws, tmp_path):
    run(real_aws, tmp_path, invoke=False)
    first = build_builder_zip(tmp_path / "one.zip")
    second = build_builder_zip(tmp_path / "two.zip")
    assert first.sha256_hex == second.sha256_hex
    config = aws.client("lambda").get_function_configuration(FunctionName=NAME)
    assert config["CodeSha256"] == first.code_sha256
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        names = archive.namelist()
        pinned = archive.read("builder/toolchain.txt").decode()
    assert "builder/handler.py" in names and "builder/selfinstall.py" in names
    assert pinned == (BUILDER_DIR.parent / "bootstrap" / "toolchain.txt").read_text()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_create_function_is_retried_while_the_role_propagates(aws, real_aws, sleeps, tmp_path):
    failures = []

    def role_not_ready(**kwargs):
        if len(failures) < 2:
            failures.append(kwargs["params"])
            response = AWSResponse(aws.endpoint_url, 400, {}, None)
            return response, {"Error": {"Code": "InvalidParameterValueException",
                                        "Message": ROLE_NOT_READY},
                              "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    lam = real_aws.clients("lambda")
    lam.meta.events.register("before-call.lambda.CreateFunction", role_not_ready)
    run(real_aws, tmp_path, invoke=False)
    assert len(failures) == 2
    assert sleeps[:2] == [1.0, 2.0]
    assert aws.client("lambda").get_function_configuration(FunctionName=NAME)["State"] == "Active"


def test_the_deploy_role_is_retried_while_iam_learns_the_builder_role(aws, real_aws, sleeps,
                                                                     tmp_path):
    refused = []

    def principal_not_ready(**kwargs):
        name = kwargs["params"]["body"]["RoleName"]  # the query protocol's form fields
        if name == "lambda3-builder-deploy" and len(refused) < 2:
            refused.append(name)
            response = AWSResponse(aws.endpoint_url, 400, {}, None)
            return response, {"Error": {"Code": "MalformedPolicyDocument",
                                        "Message": "Invalid principal in policy: \"AWS\":..."},
                              "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    real_aws.clients("iam").meta.events.register("before-call.iam.CreateRole",
                                                 principal_not_ready)
    result, _ = run(real_aws, tmp_path, invoke=False)
    assert refused == ["lambda3-builder-deploy"] * 2
    assert sleeps[:2] == [2.0, 4.0]
    assert aws.client("iam").get_role(RoleName="lambda3-builder-deploy")["Role"]["Arn"] == \
        result.scoped_role_arn


def test_github_trust(aws, real_aws, tmp_path):
    config = BootstrapConfig(github_repo="acme/shop", github_ref="ref:refs/heads/main")
    result, _ = run(real_aws, tmp_path, config, invoke=False)
    iam = aws.client("iam")
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    role = iam.get_role(RoleName="lambda3-builder-github-acme-shop")["Role"]
    assert role["Arn"] == result.deploy_role_arn
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Federated": arn}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub":
                       "repo:acme/shop:ref:refs/heads/main"}}
    policy = iam.get_role_policy(RoleName="lambda3-builder-github-acme-shop",
                                 PolicyName="lambda3")["PolicyDocument"]
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {"lambda:InvokeFunction", "logs:FilterLogEvents", "logs:GetLogEvents",
                       "logs:DescribeLogStreams"}
    assert f"role-to-assume: {result.deploy_role_arn}" in result.workflow
    assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []


def test_a_second_bootstrap_changes_nothing(aws, real_aws, tmp_path):
    config = BootstrapConfig(github_repo="acme/shop")
    first, _ = run(real_aws, tmp_path, config)
    lam = aws.client("lambda")
    before = lam.get_function_configuration(FunctionName=NAME)
    toolchain = layer_versions(aws, "lambda3-builder-toolchain")
    seed = layer_versions(aws, "lambda3-builder-seed")
    second, builder = run(real_aws, tmp_path / "again", config)
    assert second.changed is False
    assert set(changes(second).values()) == {"unchanged"}
    assert ("layer", "lambda3-builder-seed") not in changes(second)  # uv is there now
    assert builder.events == ["ping", "bootstrap", "ping"]
    assert layer_versions(aws, "lambda3-builder-toolchain") == toolchain == [1]
    assert layer_versions(aws, "lambda3-builder-seed") == seed == [1]
    after = lam.get_function_configuration(FunctionName=NAME)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["Layers"] == before["Layers"]
    assert second.toolchain_layer_arn == first.toolchain_layer_arn
    assert report(second).endswith("nothing changed: everything was up to date")


def test_a_changed_builder_updates_only_the_code(aws, real_aws, tmp_path):
    run(real_aws, tmp_path)
    lam = aws.client("lambda")
    before = lam.get_function_configuration(FunctionName=NAME)
    changed = tmp_path / "builder"
    shutil.copytree(BUILDER_DIR, changed, ignore=shutil.ignore_patterns("__pycache__"))
    (changed / "handler.py").write_text((changed / "handler.py").read_text() + "\n# v2\n")
    result, _ = run(real_aws, tmp_path / "again", builder_dir=changed)
    assert changes(result) == {
        ("role", "lambda3-builder-role"): "unchanged",
        ("scoped role", "lambda3-builder-deploy"): "unchanged",
        ("bucket", "lambda3-artifacts-123456789012-us-east-1"): "unchanged",
        ("function", NAME): "updated",
        ("layer", "lambda3-builder-toolchain"): "unchanged",
    }
    function_change = next(c for c in result.changes if c.resource == "function")
    assert function_change.detail == "code"
    after = lam.get_function_configuration(FunctionName=NAME)
    assert after["CodeSha256"] != before["CodeSha256"]
    for key in ("Role", "Timeout", "MemorySize", "Environment", "Layers", "Runtime"):
        assert after[key] == before[key]


def test_a_narrower_allow_list_updates_the_policy_and_environment(aws, real_aws, tmp_path):
    run(real_aws, tmp_path, invoke=False)
    result, _ = run(real_aws, tmp_path / "again", BootstrapConfig(allow=("app-*",)),
                    invoke=False)
    # the builder's own role names no function: the deploy role holds the allow-list
    assert changes(result)[("role", "lambda3-builder-role")] == "unchanged"
    assert changes(result)[("scoped role", "lambda3-builder-deploy")] == "updated"
    function_change = next(c for c in result.changes if c.resource == "function")
    assert function_change.detail == "configuration: Environment"
    variables = aws.client("lambda").get_function_configuration(
        FunctionName=NAME)["Environment"]["Variables"]
    assert variables["LAMBDA3_ALLOW"] == "app-*"
    assert any("app-*" in note for note in result.notes)


def test_the_builder_publishes_and_the_client_attaches(aws, real_aws, tmp_path):
    """The builder's answer leaves its layers alone; the client attaches the version after
    checking its CodeSha256, in place of an earlier toolchain or seed, others kept."""
    run(real_aws, tmp_path, invoke=False)
    lam = aws.client("lambda")
    answer = FakeBuilder(real_aws, tmp_path / "builder-tmp")(BuildRequest(action="bootstrap"))
    toolchain = answer.toolchain
    assert toolchain.published and not toolchain.attached
    assert lam.get_function_configuration(FunctionName=NAME).get("Layers", []) == []
    foreign = lam.publish_layer_version(LayerName="vendor-extension",
                                        Content={"ZipFile": aws_zip({"x.txt": "x"})})
    seed = lam.publish_layer_version(LayerName="lambda3-builder-seed",
                                     Content={"ZipFile": aws_zip({"python/bin/uv": "uv"})})
    lam.update_function_configuration(FunctionName=NAME, Layers=[
        seed["LayerVersionArn"], foreign["LayerVersionArn"]])
    assert attach_toolchain(real_aws, NAME, toolchain.layer_arn, toolchain.code_sha256)
    layers = lam.get_function_configuration(FunctionName=NAME)["Layers"]
    assert [layer["Arn"] for layer in layers] == [foreign["LayerVersionArn"],
                                                  toolchain.layer_arn]
    assert not attach_toolchain(real_aws, NAME, toolchain.layer_arn, toolchain.code_sha256)


def test_a_layer_version_with_other_bytes_is_not_attached(aws, real_aws, tmp_path):
    run(real_aws, tmp_path, invoke=False)
    planted = aws.client("lambda").publish_layer_version(
        LayerName="lambda3-builder-toolchain", Content={"ZipFile": aws_zip({"evil.py": "1"})})
    with pytest.raises(ToolchainMismatch, match="not the toolchain the builder built"):
        attach_toolchain(real_aws, NAME, planted["LayerVersionArn"], "c29tZSBvdGhlciBzaGE=")
    with pytest.raises(ToolchainMismatch, match="is not a version of lambda3-builder-toolchain"):
        attach_toolchain(real_aws, NAME, planted["LayerVersionArn"].replace(
            "lambda3-builder-toolchain", "elsewhere"), planted["Content"]["CodeSha256"])
    assert aws.client("lambda").get_function_configuration(FunctionName=NAME).get(
        "Layers", []) == []


def test_a_builder_bootstrapped_before_the_deploy_role_moves_to_it(aws, real_aws, tmp_path):
    run(real_aws, tmp_path)
    iam, lam = aws.client("iam"), aws.client("lambda")
    old = {"Version": "2012-10-17", "Statement": [{
        "Sid": "SelfConfiguration", "Effect": "Allow",
        "Action": ["lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration"],
        "Resource": [f"arn:aws:lambda:us-east-1:123456789012:function:{NAME}"]}]}
    iam.put_role_policy(RoleName="lambda3-builder-role", PolicyName="lambda3",
                        PolicyDocument=json.dumps(old))
    iam.delete_role_policy(RoleName="lambda3-builder-deploy", PolicyName="lambda3")
    iam.delete_role(RoleName="lambda3-builder-deploy")
    variables = lam.get_function_configuration(FunctionName=NAME)["Environment"]["Variables"]
    del variables["LAMBDA3_DEPLOY_ROLE"]
    lam.update_function_configuration(FunctionName=NAME, Environment={"Variables": variables})
    result, _ = run(real_aws, tmp_path / "again")
    assert changes(result)[("role", "lambda3-builder-role")] == "updated"
    assert changes(result)[("scoped role", "lambda3-builder-deploy")] == "created"
    assert changes(result)[("layer", "lambda3-builder-toolchain")] == "unchanged"
    sids = {s["Sid"] for s in iam.get_role_policy(RoleName="lambda3-builder-role",
                                                  PolicyName="lambda3")["PolicyDocument"][
        "Statement"]}
    assert "SelfConfiguration" not in sids and "AssumeDeployRole" in sids
    variables = lam.get_function_configuration(FunctionName=NAME)["Environment"]["Variables"]
    assert variables["LAMBDA3_DEPLOY_ROLE"] == result.scoped_role_arn


def test_the_seed_is_uv_for_the_target_platform(tmp_path):
    commands = []

    def fake_uv(argv, env, cwd):
        """Lays out what `uv pip install --target DIR uv==X` writes."""
        commands.append(argv)
        target = Path(argv[argv.index("--target") + 1])
        for name in ("uv/__init__.py", "uv/_find_uv.py", "uv-0.13.9.dist-info/RECORD",
                     "bin/uv", "bin/uvx"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_text(name)
        (target / "bin" / "uv").chmod(0o755)
        return subprocess.CompletedProcess(argv, 0, "", "")

    target = make_target("python3.11", "arm64")
    first = build_seed_layer(target, tmp_path / "a.zip", uv_version="0.13.9",
                             workdir=tmp_path / "w", runner=fake_uv, uv="uv")
    second = build_seed_layer(target, tmp_path / "b.zip", uv_version="0.13.9",
                              workdir=tmp_path / "w", runner=fake_uv, uv="uv")
    assert first.code_sha256 == second.code_sha256
    argv = commands[0]
    assert argv[argv.index("--python-platform") + 1] == "aarch64-manylinux_2_17"
    assert argv[argv.index("--python-version") + 1] == "3.11"
    assert "--only-binary" in argv and argv[-1] == "uv==0.13.9"
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        modes = {i.filename: i.external_attr >> 16 & 0o777 for i in archive.infolist()}
    assert modes == {"python/bin/uv": 0o755, "python/uv-0.13.9.dist-info/RECORD": 0o644,
                     "python/uv/__init__.py": 0o644, "python/uv/_find_uv.py": 0o644}
