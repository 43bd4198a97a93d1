"""Several functions through the bootstrapped builder on the emulator: the builder, running
from its own deployed zip and layers, deploys each function of `functions:` with its own
scoped deploy-role session, publishes the shared layer once, and refuses a function its
allow-list does not name before anything is built."""
from __future__ import annotations

import pytest

from builder.contract import BuildRequest
from tests.e2e.test_bootstrap_e2e import builder  # noqa: F401 - the bootstrapped builder
from tests.fixtures_aws import LOCAL_RUNTIME

pytestmark = [pytest.mark.slow, pytest.mark.network]

APP = "from greeting import hello\n\ndef handler(event, context):\n    return hello('{key}')\n"


def build_yaml(role: str, third: str) -> str:
    functions = "".join(f"""
  {key}:
    {'name: ' + third if key == 'extra' else ''}
    runtimes: [{LOCAL_RUNTIME}]
    handler: app.handler
    role: {role}
    source_dir: {key}
    files: [app.py]
    layers: [shared]
""" for key in ("api", "worker", "extra"))
    return f"functions:{functions}layers:\n  shared:\n    dest_dir: python\n    files: [greeting]\n"


def commit(tmp_path, role: str, third: str):
    from lambda3.embedded import gitserver

    work = tmp_path / f"src-{third}"
    for key in ("api", "worker", "extra"):
        (work / key).mkdir(parents=True)
        (work / key / "app.py").write_text(APP.format(key=key))
    (work / "greeting").mkdir()
    (work / "greeting" / "__init__.py").write_text("def hello(who):\n    return 'hi ' + who\n")
    (work / "build.yaml").write_text(build_yaml(role, third))
    gitserver.commit_directory(work, tmp_path / f"repo-{third}", "hello",
                               timestamp=1_700_000_000)
    return tmp_path / f"repo-{third}"


def test_the_builder_deploys_each_function_within_its_allow_list(aws, builder, tmp_path):  # noqa: F811
    gitserver = pytest.importorskip("lambda3.embedded.gitserver")
    _, invoke, _ = builder
    role = aws.lambda_role("hello-lambda")
    allowed, refused = commit(tmp_path, role, "hello-extra"), commit(tmp_path, role, "billing")
    with gitserver.GitServer() as server:
        result = invoke(BuildRequest(action="build", alias="live", function="hello",
                                     repository=server.add_repo("acme/hello", allowed)))
        denied = invoke(BuildRequest(action="build", alias="live", function="hello",
                                     repository=server.add_repo("acme/billing", refused)))
    assert result.ok, result.error
    assert [(f.key, f.name, f.version, f.deployed) for f in result.functions] == [
        ("api", "hello-api", "1", True), ("worker", "hello-worker", "1", True),
        ("extra", "hello-extra", "1", True)]
    lam = aws.client("lambda")
    shared = lam.list_layer_versions(LayerName="hello-shared")["LayerVersions"]
    assert len(shared) == 1
    for name in ("hello-api", "hello-worker", "hello-extra"):
        layers = lam.get_function_configuration(FunctionName=name)["Layers"]
        assert [x["Arn"] for x in layers] == [shared[0]["LayerVersionArn"]]
    assert denied.ok is False
    assert (denied.error.type, denied.error.step) == ("TargetNotAllowed", "request")
    assert "'billing'" in denied.error.message
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert "billing" not in names and "hello-api" in names
