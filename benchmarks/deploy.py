"""Deploys end to end on the emulator, served by the real git server: a cold full deploy, a
warm redeploy after a code-only commit, and a no-op redeploy, each timed, with the layer
publishes and new function versions counted by asking the emulator.

Two ways to run the builder, the first that works is used:
- `builder function`: the builder bootstrapped into the emulator (`bootstrap.run.bootstrap`,
  what `lambda3 bootstrap --endpoint-url` runs) and invoked there; the local invoker keeps its
  /tmp between invocations (warm) until it is reset (cold);
- `handler subprocess`: `builder.handler.lambda_handler` in a fresh interpreter per deploy,
  with LAMBDA3_ENDPOINT_URL set to the emulator and LAMBDA3_WORKDIR kept between the warm
  deploys (what a warm Lambda keeps in /tmp) and new for each cold one.
Supplementary, for the projects asked for: the handler called in this process, so imports
and module state stay loaded between deploys as in a warm Lambda container.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.projects import bump_version
from benchmarks.tools import ROOT, run_process
from builder.contract import BuildRequest, BuildResult
from builder.errors import Lambda3Error

REGION = "us-east-1"
BUILDER = "lambda3-bench-builder"
ROLE_NAME = "lambda3-bench"
BUCKET = "lambda3-bench-artifacts"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_SESSION_TOKEN": "testing"}
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


@dataclass
class Phase:
    times: list[float] = field(default_factory=list)
    layer_publishes: list[int] = field(default_factory=list)
    new_versions: list[int] = field(default_factory=list)
    steps: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"times": self.times, "layer_publishes": self.layer_publishes,
                "new_versions": self.new_versions}


class DeployError(RuntimeError):
    pass


class _Counts:
    """Layer versions and function versions, as the emulator lists them."""

    def __init__(self, client, function: str, layer_names: list[str]):
        self.client, self.function, self.layer_names = client, function, layer_names

    def layers(self) -> int:
        total = 0
        for name in self.layer_names:
            pages = self.client.get_paginator("list_layer_versions").paginate(LayerName=name)
            total += sum(len(page["LayerVersions"]) for page in pages)
        return total

    def versions(self) -> int:
        try:
            pages = self.client.get_paginator("list_versions_by_function").paginate(
                FunctionName=self.function)
            return sum(1 for page in pages for v in page["Versions"] if v["Version"] != "$LATEST")
        except self.client.exceptions.ResourceNotFoundException:
            return 0


class _LocalHandler:
    """The builder's handler run here, its /tmp a work dir that a cold deploy replaces."""

    tmp_prefix = "builder-tmp"

    def __init__(self, endpoint: str, env: dict[str, str], work: Path):
        self.endpoint, self.env, self.work = endpoint, env, work
        self.workdir: Path | None = None
        self.runs = 0

    def cold(self) -> None:
        self.runs += 1
        self.workdir = self.work / f"{self.tmp_prefix}-{self.runs}"
        shutil.rmtree(self.workdir, ignore_errors=True)


class _HandlerSubprocess(_LocalHandler):
    mode = "handler subprocess (builder.handler.lambda_handler, LAMBDA3_ENDPOINT_URL -> emulator)"

    def __init__(self, endpoint: str, env: dict[str, str], work: Path, timeout: float):
        super().__init__(endpoint, env, work)
        self.timeout = timeout

    def deploy(self, request: BuildRequest) -> BuildResult:
        env = {**self.env, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION,
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               "LAMBDA3_ENDPOINT_URL": self.endpoint, "LAMBDA3_WORKDIR": str(self.workdir)}
        env.pop("AWS_PROFILE", None)
        event_file = self.work / "event.json"
        event_file.write_text(json.dumps(request.to_event()))
        proc = run_process([sys.executable, "-m", "benchmarks.lambda3_build", "deploy", "--event",
                            str(event_file)], env=env, cwd=ROOT, timeout=self.timeout,
                           log=self.work / f"deploy-{self.runs}.log")
        if proc.timed_out:
            raise DeployError(f"deploy timed out after {self.timeout:.0f} s")
        try:
            return BuildResult.from_json(json.loads(proc.stdout.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError, Lambda3Error) as error:
            raise DeployError(f"deploy printed no result: {proc.stderr[-400:]}") from error


class _InProcess(_LocalHandler):
    """The handler called in this process: modules, and whatever the handler keeps at module
    level, stay loaded between deploys, as in a warm Lambda container."""

    mode = "handler in-process (imports and module state kept, as in a warm container)"
    tmp_prefix = "inprocess-tmp"

    def deploy(self, request: BuildRequest) -> BuildResult:
        from builder.handler import lambda_handler

        changes = {**self.env, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION,
                   "LAMBDA3_ENDPOINT_URL": self.endpoint, "LAMBDA3_WORKDIR": str(self.workdir)}
        saved = {name: os.environ.get(name) for name in changes}
        root = logging.getLogger()
        level, handlers = root.level, list(root.handlers)
        os.environ.update(changes)
        try:
            return BuildResult.from_json(lambda_handler(request.to_event()))
        finally:
            root.setLevel(level)  # the handler sets INFO and may add a handler: undo both
            root.handlers[:] = handlers
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class _BuilderFunction:
    mode = "builder function bootstrapped into the emulator (lambda3 bootstrap), invoked there"

    def __init__(self, emulator, work: Path, timeout: float):
        self.emulator, self.work, self.timeout = emulator, work, timeout
        self.invoke: Callable[[BuildRequest], BuildResult] | None = None

    def setup(self, allow: tuple[str, ...]) -> None:
        from bootstrap.config import EMBEDDED_ALLOWED_HOSTS, BootstrapConfig
        from bootstrap.run import bootstrap
        from builder.aws import Aws
        from builder.clients import Clients
        from lambda3.remote import invoke_builder

        clients = Clients(region=REGION, endpoint_url=self.emulator.endpoint_url,
                          credentials=_boto_credentials())
        config = BootstrapConfig(name=BUILDER, runtime=_local_runtime(), allow=allow,
                                 allowed_hosts=EMBEDDED_ALLOWED_HOSTS,
                                 pass_roles=(ROLE_NAME,))
        work = self.work / "bootstrap"
        bootstrap(config, Aws(clients), None, workdir=work, sleep=lambda s: None)
        extra = {k: os.environ[k] for k in CA_VARIABLES if os.environ.get(k)}
        if extra:
            lam = clients("lambda")
            variables = lam.get_function_configuration(
                FunctionName=BUILDER).get("Environment", {}).get("Variables", {})
            lam.update_function_configuration(FunctionName=BUILDER, Environment={
                "Variables": {**variables, **extra}})

        def invoke(request: BuildRequest) -> BuildResult:
            return invoke_builder(clients, BUILDER, request, builder_timeout=int(self.timeout),
                                  poll_interval=0.2)

        bootstrap(config, Aws(clients), invoke, workdir=work, sleep=lambda s: None)
        pings = []
        for _ in range(3):
            started = time.perf_counter()
            if not invoke(BuildRequest(action="ping")).ok:
                raise DeployError("the bootstrapped builder does not answer ping")
            pings.append(time.perf_counter() - started)
        self.ping_s = sorted(pings)[1]
        self.invoke = invoke

    def cold(self) -> None:
        self.emulator.invoker.reset(BUILDER)

    def deploy(self, request: BuildRequest) -> BuildResult:
        return self.invoke(request)


def _boto_credentials() -> dict:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
            "aws_session_token": "testing"}


def _local_runtime() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def run_deploys(projects: dict[str, Path], work: Path, env: dict[str, str], *, runs: int,
                timeout: float, prefer_builder_function: bool = True,
                in_process: tuple[str, ...] = (),
                log: Callable[[str], None] = print) -> dict[str, dict]:
    """For each project: `runs` rounds of cold full deploy, warm code-only redeploy, no-op
    redeploy, on one emulator and git server (and one bootstrapped builder). The projects
    named in `in_process` are also run with the handler in this process (supplementary:
    what a warm container that keeps its imports does; no targets are judged on them)."""
    from lambda3.embedded.emulator import Emulator
    from lambda3.embedded.gitserver import GitServer

    work.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    results: dict[str, dict] = {}
    with Emulator(state_dir=work / "emulator", region=REGION) as emulator, \
            GitServer() as git:
        emulator.reset()
        _prepare_account(emulator.endpoint_url)
        runner = None
        if prefer_builder_function:
            candidate = _BuilderFunction(emulator, work, timeout)
            try:
                log("deploy: bootstrapping the builder into the emulator")
                started = time.perf_counter()
                candidate.setup(allow=tuple(f"bench-{name}-*" for name in projects))
                notes.append(f"builder bootstrapped into the emulator in "
                             f"{time.perf_counter() - started:.1f} s (not counted); a ping "
                             f"invocation of it takes {candidate.ping_s:.2f} s (median of 3). "
                             "The emulator keeps a warm environment per function as Lambda "
                             "does (a cold deploy resets it: new process, empty /tmp). The "
                             "builder there installs for the real runtime (cross-platform), "
                             "since this machine's glibc is newer than Amazon Linux's")
                runner = candidate
            except Exception as error:  # noqa: BLE001 - any failure means: use the fallback
                notes.append(f"builder function mode unavailable ({type(error).__name__}: "
                             f"{str(error)[:200]}); used the handler in a subprocess instead")
                log(f"deploy: {notes[-1]}")
        if runner is None:
            runner = _HandlerSubprocess(emulator.endpoint_url, env, work, timeout)
        for name, project in projects.items():
            try:
                phases = _project_rounds(runner, emulator, git, project, name, work / name,
                                         runs=runs, log=log)
                results[name] = {"project": name, "mode": runner.mode,
                                 **{k: p.to_json() for k, p in phases.items()},
                                 "steps": {k: p.steps for k, p in phases.items()}}
            except DeployError as error:
                log(f"deploy {name}: FAILED: {error}")
                results[name] = {"project": name, "mode": runner.mode, "error": str(error)}
        for name in in_process:
            label = f"{name}, in-process"
            runner = _InProcess(emulator.endpoint_url, env, work / "inprocess")
            try:
                phases = _project_rounds(runner, emulator, git, projects[name], label,
                                         work / f"{name}-inprocess", runs=runs, log=log)
                results[label] = {"project": name, "mode": runner.mode, "supplementary": True,
                                  **{k: p.to_json() for k, p in phases.items()},
                                  "steps": {k: p.steps for k, p in phases.items()}}
            except DeployError as error:
                results[label] = {"project": name, "mode": runner.mode, "supplementary": True,
                                  "error": str(error)}
    for result in results.values():
        result["notes"] = notes
    return results


def _project_rounds(runner, emulator, git, project: Path, name: str, work: Path, *,
                    runs: int, log: Callable[[str], None]) -> dict[str, Phase]:
    import boto3

    from lambda3.embedded.gitserver import commit_directory

    source, repo = work / "source", work / "repo.git"
    for path in (source, repo):
        shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(project, source, ignore=shutil.ignore_patterns("__pycache__"))
    clock = [1_700_000_000]

    def commit(message: str) -> str:
        clock[0] += 60
        return commit_directory(source, repo, message, timestamp=clock[0])

    commit("benchmark project")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    url = git.add_repo(f"bench/{slug}", repo)
    client = boto3.client("lambda", region_name=REGION, endpoint_url=emulator.endpoint_url,
                          **_boto_credentials())
    phases = {"cold_full": Phase(), "warm_code_only": Phase(), "noop": Phase()}
    for round_number in range(1, runs + 1):
        function = f"bench-{slug}-{round_number}"
        counts = _Counts(client, function, [f"{function}-dependencies", f"{function}-shared"])
        event = BuildRequest(action="build", repository=url, ref="main", function=function,
                             alias="live", bucket=BUCKET)
        runner.cold()
        _timed_deploy(runner, event, counts, phases["cold_full"], log,
                      f"{name} cold full deploy")
        bump_version(source, f"{round_number}.1")
        commit(f"code only change {round_number}")
        _timed_deploy(runner, event, counts, phases["warm_code_only"], log,
                      f"{name} warm code-only redeploy")
        _timed_deploy(runner, event, counts, phases["noop"], log, f"{name} no-op redeploy")
    return phases


def _prepare_account(endpoint: str) -> None:
    import boto3

    iam = boto3.client("iam", region_name=REGION, endpoint_url=endpoint, **_boto_credentials())
    iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST))
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint, **_boto_credentials())
    s3.create_bucket(Bucket=BUCKET)


def _timed_deploy(runner, event: BuildRequest, counts: _Counts, phase: Phase, log,
                  label: str) -> None:
    layers, versions = counts.layers(), counts.versions()
    started = time.perf_counter()
    result = runner.deploy(event)
    seconds = time.perf_counter() - started
    if not result.ok:
        raise DeployError(f"{label} failed: {result.error.step}: {result.error.message}")
    published, new_versions = counts.layers() - layers, counts.versions() - versions
    phase.times.append(round(seconds, 3))
    phase.layer_publishes.append(published)
    phase.new_versions.append(new_versions)
    phase.steps = dict(result.timings)
    log(f"deploy: {label}: {seconds:.2f} s, {published} layer publishes, "
        f"{new_versions} new versions")
