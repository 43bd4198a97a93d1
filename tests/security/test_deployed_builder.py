"""The builder as a service: bootstrapped into the emulator and invoked through the local
invoker, it refuses repositories it must not fetch, and serves one repository's cached
checkout only to a request whose own token proves access."""
from __future__ import annotations

import platform

import pytest

from bootstrap.config import EMBEDDED_ALLOWED_HOSTS, BootstrapConfig
from bootstrap.run import bootstrap
from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuildRequest, BuildResult
from lambda3.remote import invoke_builder
from tests.fixtures_aws import LOCAL_RUNTIME

pytestmark = [pytest.mark.slow, pytest.mark.network]

NAME = "lambda3-builder"
ARCHITECTURE = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
TOKEN_A, TOKEN_B = "ghs_repoAcanary0123456789", "ghs_repoBcanary9876543210"
SPEC = ("function:\n  runtimes: [{runtime}]\n  handler: app.handler\n  role: {role}\n"
        "  files: [app.py]\n")


@pytest.fixture
def invoke(aws, tmp_path):
    clients = Clients(region=aws.region, endpoint_url=aws.endpoint_url,
                      credentials={"aws_access_key_id": "testing",
                                   "aws_secret_access_key": "testing"})
    config = BootstrapConfig(runtime=LOCAL_RUNTIME, architecture=ARCHITECTURE,
                             allow=("app-*",), allowed_hosts=EMBEDDED_ALLOWED_HOSTS)
    lines: list[str] = []

    def call(request: BuildRequest) -> BuildResult:
        return invoke_builder(clients, NAME, request, on_log_line=lines.append,
                              poll_interval=0.2)

    bootstrap(config, Aws(clients), call, workdir=tmp_path / "bootstrap")
    call.lines = lines
    return call


REFUSED = ("/", "/etc", "file:///", "FILE:///etc", "ssh://git@github.com/o/r.git",
           "git@github.com:o/r.git", "ext::sh -c touch% /tmp/pwned", "git://github.com/o/r.git",
           "http://169.254.169.254/latest/meta-data", "https://169.254.170.2/v2/credentials",
           "https://evil.example.com/o/r.git", "http://github.com/o/r.git",
           "https://user:pass@github.com/o/r.git")


def test_the_deployed_builder_refuses_what_it_must_not_fetch(aws, invoke):
    """One bootstrap for every case: each is refused in the request step, before a fetch."""
    for repository in REFUSED:
        result = invoke(BuildRequest(action="build", repository=repository, function="app-x"))
        assert result.ok is False, repository
        assert result.error.step == "request", (repository, result.error)
        assert set(result.timings) == {"request", "total"}, repository
        assert "/tmp/lambda3" not in result.error.message
    names = [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]]
    assert names == [NAME]


def test_a_cached_checkout_is_served_only_with_its_own_token(aws, invoke, make_repo,
                                                             token_git_server):
    role = aws.lambda_role()
    repos = {}
    for key in ("a", "b"):
        repo = make_repo({"app.py": f"def handler(e, c):\n    return {key!r}\n",
                          "build.yaml": SPEC.format(runtime=LOCAL_RUNTIME, role=role)},
                         name=f"repo-{key}")
        repo.commit(f"{key} first")
        repos[key] = repo
    url_a = token_git_server.add_repo("acme/a", repos["a"].path, TOKEN_A)
    url_b = token_git_server.add_repo("acme/b", repos["b"].path, TOKEN_B)

    first = invoke(BuildRequest(action="build", repository=url_b, ref="main",
                                function="app-b", token=TOKEN_B))
    assert first.ok, first.error
    own = invoke(BuildRequest(action="build", repository=url_a, ref="main",
                              function="app-a", token=TOKEN_A))
    assert own.ok and own.commit != first.commit, own.error
    # B's commit is cached in the builder now; A's token, or none, must not get it.
    for token in (TOKEN_A, None):
        stolen = invoke(BuildRequest(action="plan", repository=url_b, ref="main",
                                     function="app-stolen", token=token))
        assert stolen.ok is False and stolen.error.step == "fetch", stolen.error
    again = invoke(BuildRequest(action="plan", repository=url_b, ref="main",
                                function="app-b", token=TOKEN_B))
    assert again.ok and again.commit == first.commit
    text = "\n".join(invoke.lines)
    for token in (TOKEN_A, TOKEN_B):
        assert token not in text
