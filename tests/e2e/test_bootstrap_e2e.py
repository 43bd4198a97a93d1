"""`lambda3 bootstrap` end to end on the emulator: the builder runs in the local invoker's
child process from its own deployed zip and layers (no pip, no site-packages), gets the
seed, installs its toolchain from PyPI itself, and then deploys from a git server.
"""
from __future__ import annotations

import io
import json
import platform
import shutil
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from bootstrap.builder_package import toolchain_pins
from bootstrap.config import EMBEDDED_ALLOWED_HOSTS, BootstrapConfig
from bootstrap.run import bootstrap
from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuildRequest, BuildResult
from lambda3.cli import main
from lambda3.remote import invoke_builder
from tests.fixtures_aws import LOCAL_RUNTIME

pytestmark = [pytest.mark.slow, pytest.mark.network]

NAME = "lambda3-builder"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"
ARCHITECTURE = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


@pytest.fixture
def builder(aws, tmp_path):
    """Bootstrap on the emulator; returns (result, invoke, log lines)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    aws_session_token="testing", region_name=aws.region)
    clients = Clients(region=aws.region, endpoint_url=aws.endpoint_url, session=session)
    lines: list[str] = []

    def invoke(request: BuildRequest) -> BuildResult:
        return invoke_builder(clients, NAME, request, on_log_line=lines.append,
                              poll_interval=0.2)

    # the local invoker runs every function with this Python: use its runtime
    config = BootstrapConfig(runtime=LOCAL_RUNTIME, architecture=ARCHITECTURE,
                             allowed_hosts=EMBEDDED_ALLOWED_HOSTS,
                             allow=("hello", "hello-*"))
    result = bootstrap(config, Aws(clients), invoke, workdir=tmp_path / "bootstrap")
    return result, invoke, lines


def _layer_zip(aws, arn: str) -> bytes:
    from moto.awslambda.utils import get_backend  # the emulator runs in this process

    return get_backend(aws.account, aws.region).layers_versions_by_arn(arn).code_bytes


def layer_versions(aws, name: str) -> list[int]:
    versions = aws.client("lambda").list_layer_versions(LayerName=name)["LayerVersions"]
    return sorted(v["Version"] for v in versions)


def test_the_builder_installs_its_own_toolchain(aws, builder, capsys):
    result, invoke, lines = builder
    pins = toolchain_pins()
    # the emulator's runtime has neither uv nor pip: the seed was needed, then detached
    assert result.seed_layer_arn and ":layer:lambda3-builder-seed:1" in result.seed_layer_arn
    config = aws.client("lambda").get_function_configuration(FunctionName=NAME)
    assert [layer["Arn"] for layer in config["Layers"]] == [result.toolchain_layer_arn]
    ping = invoke(BuildRequest(action="ping"))
    assert ping.builder.toolchain["dulwich"] == pins["dulwich"]
    assert ping.builder.toolchain["PyYAML"] == pins["PyYAML"]
    assert ping.builder.toolchain["uv"] == pins["uv"]
    assert any("toolchain" in line for line in lines)  # the builder's log was streamed
    names = zipfile.ZipFile(io.BytesIO(_layer_zip(aws, result.toolchain_layer_arn))).namelist()
    tag = sys.implementation.cache_tag  # compiled by the builder, for its own runtime
    assert f"python/dulwich/__pycache__/__init__.{tag}.pyc" in names
    assert f"python/yaml/__pycache__/__init__.{tag}.pyc" in names

    capsys.readouterr()
    code = main(["bootstrap", "--endpoint-url", aws.endpoint_url, "--region", aws.region,
                 "--runtime", LOCAL_RUNTIME, "--architecture", ARCHITECTURE,
                 "--allow", "hello", "--allow", "hello-*", "--allow-host", "github.com",
                 "--allow-host", "127.0.0.1", "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0
    assert again["changed"] is False, again["changes"]
    assert again["toolchain_layer_arn"] == result.toolchain_layer_arn
    assert again["seed_layer_arn"] is None
    assert layer_versions(aws, "lambda3-builder-toolchain") == [1]
    assert layer_versions(aws, "lambda3-builder-seed") == [1]


def test_the_builder_deploys_within_its_allow_list_only(aws, builder, tmp_path, capsys):
    gitserver = pytest.importorskip("lambda3.embedded.gitserver")
    _, invoke, _ = builder
    work = tmp_path / "hello"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
    spec = work / "build.yaml"
    spec.write_text(spec.read_text().replace("python3.11", LOCAL_RUNTIME))
    commit = gitserver.commit_directory(work, tmp_path / "repo", "hello", timestamp=1_700_000_000)
    aws.lambda_role("hello-lambda")
    with gitserver.GitServer() as server:
        url = server.add_repo("acme/hello", tmp_path / "repo")
        deployed = invoke(BuildRequest(action="build", repository=url, function="hello"))
        refused = invoke(BuildRequest(action="build", repository=url, function="billing"))
    assert deployed.ok is True, deployed.error
    assert deployed.commit == commit
    capsys.readouterr()
    assert main(["invoke", "hello", "--event", '{"name": "e2e"}',
                 "--endpoint-url", aws.endpoint_url]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["message"] == "Hello, e2e" and answer["loud"] == "HELLO, E2E!"
    assert answer["libraries"]["yaml"] == "6.0.2"
    assert refused.ok is False
    assert refused.error.type == "TargetNotAllowed"
    functions = aws.client("lambda").list_functions()["Functions"]
    assert sorted(f["FunctionName"] for f in functions) == ["hello", NAME]


def test_lambda3_deploy_invokes_the_remote_builder(aws, builder, tmp_path, capsys, monkeypatch,
                                                   git_token):
    gitserver = pytest.importorskip("lambda3.embedded.gitserver")
    work = tmp_path / "hello"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
    spec = work / "build.yaml"
    spec.write_text(spec.read_text().replace("python3.11", LOCAL_RUNTIME))
    gitserver.commit_directory(work, tmp_path / "repo", "hello", timestamp=1_700_000_000)
    aws.lambda_role("hello-lambda")
    monkeypatch.setenv("LAMBDA3_TOKEN", git_token)
    monkeypatch.chdir(tmp_path)
    log_file = tmp_path / "deploy.log"
    with gitserver.GitServer(password=git_token) as server:
        url = server.add_repo("acme/hello", tmp_path / "repo")
        capsys.readouterr()
        code = main(["deploy", "-g", url, "-f", "hello", "-b", "main", "-a", "live", "-y",
                     "-l", str(log_file), "--json", "--endpoint-url", aws.endpoint_url])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["ok"] and result["version"] == "1" and result["alias"] == "live"
    log = log_file.read_text()
    assert "lambda3 request" in log and "publish layer hello-dependencies" in log
    assert "publish layer hello-dependencies" in captured.err  # streamed while it ran
    assert git_token not in captured.out + captured.err + log
