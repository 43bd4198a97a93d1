"""`bootstrap()`: the whole bootstrap, in order, with the outside world passed in.

1. package the builder's code (reproducible zip, so its CodeSha256 says whether it changed);
2. read the account, plan what to create or update (pure), apply the plan;
3. let the builder install and publish its toolchain itself (`bootstrap.toolchain`), then
   check the layer version it reports and attach it here, with the operator's credentials
   (the builder's role may not change the builder);
4. report every resource as created, updated or unchanged.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bootstrap.apply import Executor
from bootstrap.builder_package import BUILDER_DIR, build_builder_zip, toolchain_pins
from bootstrap.config import BootstrapConfig, make_desired
from bootstrap.github import workflow_snippet
from bootstrap.plan import (
    BuilderCode,
    Plan,
    PutRolePolicy,
    make_plan,
    resource_changes,
    step_resource,
    step_summary,
)
from bootstrap.seed_layer import build_seed_layer
from bootstrap.state import read_account, read_state
from bootstrap.toolchain import (
    Invoke,
    SeedMaker,
    ToolchainOutcome,
    ensure_toolchain,
    seed_layer_name,
)
from builder.aws import Aws
from builder.runtimes import make_target
from builder.selfinstall import attach_toolchain, toolchain_layer_name

if TYPE_CHECKING:
    from builder.contract import BuildRequest, BuildResult

IAM_SETTLE_SECONDS = 15.0


@dataclass(frozen=True)
class Change:
    resource: str  # role, scoped role, bucket, function, layer, oidc provider, deploy role
    name: str
    action: str  # created, updated, unchanged
    detail: str = ""


@dataclass
class BootstrapResult:
    builder_arn: str
    role_arn: str
    bucket: str
    allow: tuple[str, ...]
    changes: list[Change]
    deploy_role_arn: str | None = None
    scoped_role_arn: str | None = None
    toolchain_layer_arn: str | None = None
    seed_layer_arn: str | None = None
    workflow: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"builder_arn": self.builder_arn, "role_arn": self.role_arn,
                "deploy_role_arn": self.deploy_role_arn,
                "scoped_role_arn": self.scoped_role_arn, "bucket": self.bucket,
                "toolchain_layer_arn": self.toolchain_layer_arn,
                "seed_layer_arn": self.seed_layer_arn, "allow": list(self.allow),
                "changes": [vars(change) for change in self.changes],
                "changed": self.changed, "workflow": self.workflow, "notes": self.notes}


def bootstrap(config: BootstrapConfig, aws: Aws, invoke: Invoke | None, *, workdir: Path,
              make_seed: SeedMaker | None = None, builder_dir: Path = BUILDER_DIR,
              on_step: Callable[[str], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> BootstrapResult:
    """Create or update the builder; `invoke=None` leaves out the self-install."""
    config.validate()
    workdir.mkdir(parents=True, exist_ok=True)
    zip_path = workdir / "builder.zip"
    stats = build_builder_zip(zip_path, builder_dir=builder_dir)
    where = read_account(aws)
    desired = make_desired(config, where, BuilderCode(str(zip_path), stats.code_sha256))
    plan = make_plan(desired, read_state(aws, desired))
    Executor(aws, on_step=on_step).run(plan)
    changes = _plan_changes(plan)
    toolchain = None
    if invoke is not None:
        toolchain = _toolchain(config, aws, invoke, plan, workdir, make_seed, sleep)
        changes += _toolchain_changes(config.name, toolchain)
    function = aws.get_function(config.name)
    result = BootstrapResult(
        builder_arn=function.arn if function else where.arn("lambda", f"function:{config.name}"),
        role_arn=plan.role_arn, bucket=desired.bucket, allow=config.allow, changes=changes,
        deploy_role_arn=plan.deploy_role_arn, scoped_role_arn=plan.scoped_role_arn,
        toolchain_layer_arn=toolchain.toolchain_layer_arn if toolchain else None,
        seed_layer_arn=toolchain.seed_layer_arn if toolchain else None,
        notes=_notes(config, where.account, where.region),
    )
    if plan.deploy_role_arn:
        result.workflow = workflow_snippet(plan.deploy_role_arn, where.region, config.name)
    return result


def _toolchain(config: BootstrapConfig, aws: Aws, invoke: Invoke, plan: Plan, workdir: Path,
               make_seed: SeedMaker | None, sleep: Callable[[float], None]) -> ToolchainOutcome:
    pins = toolchain_pins()
    if make_seed is None:
        def make_seed(target, path):
            return build_seed_layer(target, path, uv_version=pins["uv"], workdir=workdir)
    policy_just_put = any(isinstance(step, PutRolePolicy) and step.role.kind == "role"
                          for step in plan.steps)
    retry = (lambda: sleep(IAM_SETTLE_SECONDS)) if policy_just_put else None
    return ensure_toolchain(aws, attaching_toolchain(invoke, aws, config.name), config.name,
                            make_target(config.runtime, config.architecture),
                            make_seed=make_seed, workdir=workdir, pins=pins, retry_denied=retry)


def attaching_toolchain(invoke: Invoke, aws: Aws, function: str) -> Invoke:
    """`invoke`, where a successful `action: bootstrap` is followed by the client's half:
    the layer version the builder reports is checked against the CodeSha256 it reports and
    attached with these (the operator's) credentials."""
    def call(request: BuildRequest) -> BuildResult:
        result = invoke(request)
        toolchain = result.toolchain
        if request.action != "bootstrap" or not result.ok or toolchain is None:
            return result
        attached = attach_toolchain(aws, function, toolchain.layer_arn, toolchain.code_sha256)
        return replace(result, toolchain=replace(toolchain, attached=attached))

    return call


def _plan_changes(plan: Plan) -> list[Change]:
    details: dict[Any, list[str]] = {}
    for step in plan.steps:
        details.setdefault(step_resource(step), []).append(step_summary(step))
    return [Change(resource.kind, resource.name, action, ", ".join(details.get(resource, [])))
            for resource, action in resource_changes(plan)]


def _toolchain_changes(name: str, toolchain: ToolchainOutcome) -> list[Change]:
    changes = []
    if toolchain.seed_action:
        changes.append(Change("layer", seed_layer_name(name), toolchain.seed_action,
                              "uv for the self-install, detached after it"))
    changes.append(Change("layer", toolchain_layer_name(name), toolchain.toolchain_action,
                          ", ".join(toolchain.packages)))
    return changes


def _notes(config: BootstrapConfig, account: str, region: str) -> list[str]:
    notes = []
    if config.allows_everything:
        notes.append(f"the builder may deploy to EVERY function in account {account}, region "
                     f"{region} (--allow '*'); narrow it with --allow PATTERN")
    else:
        notes.append(f"the builder deploys only to functions matching {', '.join(config.allow)}")
    if config.pass_roles:
        roles = ", ".join(config.pass_roles)
        notes.append(f"the builder may create functions with the roles {roles}")
    else:
        notes.append("the builder updates existing functions only; --pass-role ROLE_PATTERN "
                     "lets it create functions with those roles")
    return notes
