"""`lambda3 demo`: the whole flow on this machine, with no AWS account.

1. start the AWS emulator (moto's server over HTTP, functions run by the local invoker);
2. bootstrap the builder: role, bucket, function, then its self-install of its toolchain;
3. serve `examples/hello` as a git repository over HTTP (token-protected) on 127.0.0.1;
4. run the GitHub Action as a runner would, with a local OIDC issuer signing a real RS256
   token, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files;
5. invoke the deployed function;
6. change only the code, deploy again, and show that only the code moved.
Everything is stopped at the end.
"""
from __future__ import annotations

import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.clients import Clients
from builder.contract import BuildRequest, BuildResult

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello"
REPOSITORY = "demo/hello"
FUNCTION = "hello"
EXECUTION_ROLE = "hello-lambda"
REGION = "us-east-1"
LOCAL_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
DUMMY = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo",
         "aws_session_token": "demo"}


@dataclass
class DemoDeploy:
    seconds: float  # the whole action step, runner side included
    outputs: dict
    summary: str
    exit_code: int
    builder_seconds: float | None  # the builder's own invocation (its REPORT line)
    raw_log: list[str]  # every line the step printed, workflow commands included


class Demo:
    def __init__(self, workdir: Path, say: Callable[[str], None] = print,
                 runner_temp: Path | None = None) -> None:
        self.workdir = workdir
        self.say = say
        self.runner_temp = runner_temp or workdir / "runner"
        self.token = "demo-" + secrets.token_hex(16)
        self.deploys: list[DemoDeploy] = []
        self.answers: list[dict] = []

    def run(self) -> int:
        from lambda3.embedded.emulator import Emulator
        from lambda3.embedded.gitserver import GitServer
        from lambda3.embedded.oidc_issuer import OidcIssuer

        with Emulator(state_dir=self.workdir / "emulator", region=REGION) as emulator, \
                GitServer(password=self.token) as git, \
                OidcIssuer(repository=REPOSITORY, ref="refs/heads/main") as issuer:
            emulator.reset()  # moto's state is per process: start from an empty account
            self.say(f"== AWS emulator at {emulator.endpoint_url}")
            deploy_role = self.bootstrap(emulator.endpoint_url)
            repo, url = self.serve(git)
            first = self.deploy(emulator.endpoint_url, issuer, deploy_role, url, "first deploy")
            if first.exit_code:
                return first.exit_code
            self.invoke(emulator.endpoint_url)
            self.change_code(repo)
            second = self.deploy(emulator.endpoint_url, issuer, deploy_role, url,
                                 "code-only change")
            if second.exit_code:
                return second.exit_code
            self.invoke(emulator.endpoint_url)
            self.compare(first, second)
        self.say("== done: emulator, git server and OIDC issuer stopped")
        return 0

    # -- steps ------------------------------------------------------------------------------
    def bootstrap(self, endpoint_url: str) -> str:
        from bootstrap.config import EMBEDDED_ALLOWED_HOSTS, BootstrapConfig
        from bootstrap.run import bootstrap
        from builder.aws import Aws
        from lambda3.commands.bootstrap import report
        from lambda3.remote import invoke_builder

        self.say(f"== bootstrap: the builder ({LOCAL_RUNTIME}) installs its own toolchain")
        clients = _clients(endpoint_url)
        config = BootstrapConfig(runtime=LOCAL_RUNTIME, github_repo=REPOSITORY,
                                 allowed_hosts=EMBEDDED_ALLOWED_HOSTS,
                                 github_ref="ref:refs/heads/main",
                                 pass_roles=(EXECUTION_ROLE,)).validate()
        _create_execution_role(clients)

        def invoke(request: BuildRequest) -> BuildResult:
            return invoke_builder(clients, config.name, request,
                                  on_log_line=lambda line: self.say(f"   | {line}"))

        started = time.perf_counter()
        result = bootstrap(config, Aws(clients, sleep=lambda s: None), invoke,
                           workdir=self.workdir / "bootstrap", sleep=lambda s: None,
                           on_step=lambda text: self.say(f"   {text}"))
        self.say(report(result))
        self.say(f"   bootstrap took {time.perf_counter() - started:.1f} s")
        return result.deploy_role_arn

    def serve(self, git) -> tuple[Path, str]:
        from lambda3.embedded.gitserver import commit_directory

        work = self.workdir / "hello"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("__pycache__"))
        spec = work / "build.yaml"
        spec.write_text(spec.read_text().replace("python3.11", LOCAL_RUNTIME))
        repo = self.workdir / "hello.git"
        shutil.rmtree(repo, ignore_errors=True)
        commit_directory(work, repo, "hello: first version", timestamp=1_700_000_000)
        url = git.add_repo(REPOSITORY, repo)
        self.say(f"== git: {url} (HTTP basic auth with a token)")
        return work, url

    def deploy(self, endpoint_url: str, issuer, role_arn: str, url: str,
               title: str) -> DemoDeploy:
        from lambda3.embedded.runner import ActionRunner, default_base_env

        sha = _head(self.workdir / "hello.git")
        self.say(f"== GitHub Action ({title}) at {sha[:12]}")
        base_env = {**default_base_env(), **issuer.runner_env(),
                    "LAMBDA3_ENDPOINT_URL": endpoint_url, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        github = {"token": self.token, "repository": REPOSITORY, "sha": sha,
                  "server_url": url.rsplit("/demo/", 1)[0], "run_id": "1"}
        runner = ActionRunner(ROOT, self.runner_temp, github, base_env,
                              on_line=lambda line: self.say(f"   {line}"))
        started = time.perf_counter()
        run = runner.run({"aws-region": REGION, "role-to-assume": role_arn,
                          "function-name": FUNCTION, "repository": url, "ref": sha,
                          "alias": "live"})
        seconds = time.perf_counter() - started
        self.say("   outputs:")
        for name, value in run.outputs.items():
            self.say(f"     {name} = {value}")
        self.say("   step summary:")
        self.say("\n".join(f"     {line}" for line in run.summary.splitlines()))
        deployed = DemoDeploy(seconds, run.outputs, run.summary, run.exit_code,
                              _builder_seconds(run.log), run.raw_log)
        self.deploys.append(deployed)
        return deployed

    def invoke(self, endpoint_url: str) -> dict:
        answer = _clients(endpoint_url)("lambda").invoke(FunctionName=FUNCTION, Qualifier="live",
                                          Payload=json.dumps({"name": "demo"}).encode())
        payload = json.loads(answer["Payload"].read())
        self.say(f"== invoke {FUNCTION}:live -> {json.dumps(payload)}")
        self.answers.append(payload)
        return payload

    def change_code(self, work: Path) -> None:
        from lambda3.embedded.gitserver import commit_directory

        app = work / "app.py"
        app.write_text(app.read_text().replace("CODE_REVISION = 1", "CODE_REVISION = 2"))
        commit_directory(work, self.workdir / "hello.git", "hello: code only",
                         timestamp=1_700_000_600)
        self.say("== changed app.py only (CODE_REVISION = 2) and committed")

    def compare(self, first: DemoDeploy, second: DemoDeploy) -> None:
        changed = json.loads(second.outputs.get("changed-layers") or "[]")
        self.say("== timings (builder invocation / whole action step incl. the runner's setup)")
        for title, run in (("first deploy", first), ("code-only redeploy", second)):
            builder = f"{run.builder_seconds:.2f} s" if run.builder_seconds else "?"
            self.say(f"   {title:<20} version {run.outputs.get('version')}: builder {builder}, "
                     f"action {run.seconds:.1f} s")
        self.say(f"   layers republished by the code-only redeploy: {len(changed)}")


def _builder_seconds(log: list[str]) -> float | None:
    """The Duration of the builder's REPORT line in the action's log."""
    for line in reversed(log):
        match = re.search(r"REPORT RequestId: \S+\s+Duration: ([0-9.]+) ms", line)
        if match:
            return float(match.group(1)) / 1000
    return None


def _clients(endpoint_url: str) -> Clients:
    return Clients(region=REGION, endpoint_url=endpoint_url, credentials=DUMMY)


def _create_execution_role(clients: Clients) -> None:
    """The role examples/hello/build.yaml names, as its owner would have created it."""
    iam = clients("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    try:
        iam.get_role(RoleName=EXECUTION_ROLE)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))


def _head(repo: Path) -> str:
    from dulwich.repo import Repo

    with Repo(str(repo)) as opened:
        return opened.refs[b"refs/heads/main"].decode()


def run_demo(workdir: Path | None = None, say: Callable[[str], None] = print) -> int:
    if workdir is not None:
        return Demo(workdir, say).run()
    with tempfile.TemporaryDirectory(prefix="lambda3-demo-") as temp:
        return Demo(Path(temp), say).run()  # a fresh runner temp dir, as on GitHub
