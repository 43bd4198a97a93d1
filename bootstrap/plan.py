"""What bootstrap creates or updates, as data: `make_plan(desired, state)` is pure.

`Desired` is what the account should hold (from the command's options and the builder zip),
`State` what it holds now (read by `bootstrap.state`). The plan is a list of frozen steps,
each touching one resource; `bootstrap.apply` executes them in order. A resource no step
touches is "unchanged", which is how a second run knows it has nothing to do.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.aws import FunctionState

BUILDER_HANDLER = "builder.handler.lambda_handler"
BUILDER_TIMEOUT = 900
BUILDER_MEMORY = 3008
BUILDER_STORAGE = 10240
POLICY_NAME = "lambda3"


# -- inputs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleSpec:
    kind: str  # "role" (the builder's), "scoped role" (per request) or "deploy role" (GitHub's)
    name: str
    arn: str
    trust: Mapping[str, Any]
    policy: Mapping[str, Any]
    description: str


@dataclass(frozen=True)
class BuilderCode:
    path: str
    code_sha256: str


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    code: BuilderCode
    runtime: str
    architecture: str
    environment: Mapping[str, str]  # ours; other variables on the function are kept


@dataclass(frozen=True)
class GithubSpec:
    provider_url: str
    provider_arn: str
    client_id: str
    thumbprints: tuple[str, ...]
    role: RoleSpec


@dataclass(frozen=True)
class Desired:
    role: RoleSpec
    bucket: str
    function: FunctionSpec
    github: GithubSpec | None = None
    scoped_role: RoleSpec | None = None  # `<name>-deploy`, assumed by the builder per request


@dataclass(frozen=True)
class RoleState:
    arn: str
    trust: Mapping[str, Any]
    policies: Mapping[str, Mapping[str, Any]]  # inline policy name -> document


@dataclass(frozen=True)
class BucketState:
    public_access_blocked: bool
    encrypted: bool


@dataclass(frozen=True)
class ProviderState:
    arn: str
    client_ids: tuple[str, ...]


@dataclass(frozen=True)
class State:
    role: RoleState | None = None
    bucket: BucketState | None = None
    function: FunctionState | None = None
    provider: ProviderState | None = None
    deploy_role: RoleState | None = None
    scoped_role: RoleState | None = None


# -- steps ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateRole:
    role: RoleSpec

    def describe(self) -> str:
        return f"create {self.role.kind} {self.role.name}"


@dataclass(frozen=True)
class UpdateTrustPolicy:
    role: RoleSpec

    def describe(self) -> str:
        return f"update the trust policy of {self.role.name}"


@dataclass(frozen=True)
class PutRolePolicy:
    role: RoleSpec

    def describe(self) -> str:
        return f"put the inline policy {POLICY_NAME} on {self.role.name}"


@dataclass(frozen=True)
class CreateBucket:
    bucket: str

    def describe(self) -> str:
        return f"create bucket {self.bucket}"


@dataclass(frozen=True)
class BlockPublicAccess:
    bucket: str

    def describe(self) -> str:
        return f"block public access to {self.bucket}"


@dataclass(frozen=True)
class EncryptBucket:
    bucket: str

    def describe(self) -> str:
        return f"turn on default encryption (SSE-S3) of {self.bucket}"


@dataclass(frozen=True)
class CreateFunction:
    function: FunctionSpec
    role_arn: str

    def describe(self) -> str:
        return (f"create function {self.function.name} ({self.function.runtime}, "
                f"{self.function.architecture})")


@dataclass(frozen=True)
class UpdateFunctionConfiguration:
    function: str
    settings: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        return f"update configuration of {self.function}: {', '.join(k for k, _ in self.settings)}"


@dataclass(frozen=True)
class UpdateFunctionCode:
    function: str
    code: BuilderCode
    architecture: str | None  # set only when it changes

    def describe(self) -> str:
        arch = f", architecture {self.architecture}" if self.architecture else ""
        return f"update code of {self.function} (sha256 {self.code.code_sha256[:12]}{arch})"


@dataclass(frozen=True)
class CreateOidcProvider:
    provider_arn: str  # the ARN IAM will give it
    url: str
    client_id: str
    thumbprints: tuple[str, ...]

    def describe(self) -> str:
        return f"create OIDC provider {self.url}"


@dataclass(frozen=True)
class AddOidcClientId:
    provider_arn: str
    client_id: str

    def describe(self) -> str:
        return f"add client id {self.client_id} to {self.provider_arn}"


Step = (CreateRole | UpdateTrustPolicy | PutRolePolicy | CreateBucket | BlockPublicAccess
        | EncryptBucket | CreateFunction | UpdateFunctionConfiguration | UpdateFunctionCode
        | CreateOidcProvider | AddOidcClientId)


@dataclass(frozen=True)
class Resource:
    kind: str  # "role", "scoped role", "bucket", "function", "oidc provider", "deploy role",
    # "layer"
    name: str


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    resources: tuple[Resource, ...]
    role_arn: str
    deploy_role_arn: str | None = None
    scoped_role_arn: str | None = None

    @property
    def changes(self) -> bool:
        return bool(self.steps)


# -- planning ------------------------------------------------------------------------------
def make_plan(desired: Desired, state: State) -> Plan:
    role_arn = state.role.arn if state.role else desired.role.arn
    steps = _role_steps(desired.role, state.role)
    resources = [Resource("role", desired.role.name)]
    scoped_role_arn = None
    scoped = desired.scoped_role
    if scoped is not None:  # after the builder role: its trust policy names that role
        steps += _role_steps(scoped, state.scoped_role)
        resources.append(Resource(scoped.kind, scoped.name))
        scoped_role_arn = state.scoped_role.arn if state.scoped_role else scoped.arn
    steps += _bucket_steps(desired.bucket, state.bucket)
    steps += _function_steps(desired.function, state.function, role_arn)
    resources += [Resource("bucket", desired.bucket), Resource("function", desired.function.name)]
    deploy_role_arn = None
    github = desired.github
    if github is not None:
        steps += _provider_steps(github, state.provider)
        steps += _role_steps(github.role, state.deploy_role)
        resources += [Resource("oidc provider", provider_name(github.provider_arn)),
                      Resource("deploy role", github.role.name)]
        deploy_role_arn = state.deploy_role.arn if state.deploy_role else github.role.arn
    return Plan(tuple(steps), tuple(resources), role_arn, deploy_role_arn, scoped_role_arn)


def provider_name(arn: str) -> str:
    """arn:aws:iam::ACCOUNT:oidc-provider/HOST -> HOST"""
    return arn.split(":oidc-provider/", 1)[-1]


def canonical(document: Any) -> str:
    """A policy in a form where equal meaning compares equal: keys sorted, one-element lists
    as their element (IAM treats `"Action": ["x"]` and `"Action": "x"` alike)."""
    def normal(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: normal(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            items = [normal(v) for v in value]
            return items[0] if len(items) == 1 else items
        return value

    if isinstance(document, str):
        document = json.loads(document)
    return json.dumps(normal(document), sort_keys=True)


def _role_steps(spec: RoleSpec, current: RoleState | None) -> list[Step]:
    if current is None:
        return [CreateRole(spec), PutRolePolicy(spec)]
    steps: list[Step] = []
    if canonical(current.trust) != canonical(spec.trust):
        steps.append(UpdateTrustPolicy(spec))
    found = current.policies.get(POLICY_NAME)
    if found is None or canonical(found) != canonical(spec.policy):
        steps.append(PutRolePolicy(spec))
    return steps


def _bucket_steps(bucket: str, current: BucketState | None) -> list[Step]:
    if current is None:
        return [CreateBucket(bucket), BlockPublicAccess(bucket), EncryptBucket(bucket)]
    steps: list[Step] = []
    if not current.public_access_blocked:
        steps.append(BlockPublicAccess(bucket))
    if not current.encrypted:
        steps.append(EncryptBucket(bucket))
    return steps


def function_settings(spec: FunctionSpec, role_arn: str,
                      current_variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The builder's configuration; variables someone else set on it are kept."""
    variables = {**(current_variables or {}), **spec.environment}
    return {"Role": role_arn, "Runtime": spec.runtime, "Handler": BUILDER_HANDLER,
            "Timeout": BUILDER_TIMEOUT, "MemorySize": BUILDER_MEMORY,
            "EphemeralStorage": {"Size": BUILDER_STORAGE},
            "Environment": {"Variables": variables}}


def _function_steps(spec: FunctionSpec, current: FunctionState | None,
                    role_arn: str) -> list[Step]:
    if current is None:
        return [CreateFunction(spec, role_arn)]
    config = current.config
    variables = config.get("Environment", {}).get("Variables", {})
    wanted = function_settings(spec, role_arn, variables)
    changed = [(key, value) for key, value in wanted.items() if _current(config, key) != value]
    architecture = spec.architecture
    if architecture in config.get("Architectures", ["x86_64"]):
        architecture = None
    elif current.layers:
        changed.append(("Layers", ()))  # the toolchain was built for the other machine
    steps: list[Step] = []
    if changed:
        steps.append(UpdateFunctionConfiguration(spec.name, tuple(changed)))
    if architecture or current.code_sha256 != spec.code.code_sha256:
        steps.append(UpdateFunctionCode(spec.name, spec.code, architecture))
    return steps


def _current(config: Mapping[str, Any], key: str) -> Any:
    if key == "Environment":
        return {"Variables": config.get("Environment", {}).get("Variables", {})}
    if key == "EphemeralStorage":
        return {"Size": config.get("EphemeralStorage", {}).get("Size", 512)}
    return config.get(key)


def _provider_steps(github: GithubSpec, current: ProviderState | None) -> list[Step]:
    if current is None:
        return [CreateOidcProvider(github.provider_arn, github.provider_url, github.client_id,
                                   github.thumbprints)]
    if github.client_id not in current.client_ids:
        return [AddOidcClientId(current.arn, github.client_id)]
    return []


# -- rendering -----------------------------------------------------------------------------
def step_resource(step: Step) -> Resource:
    if isinstance(step, (CreateRole, UpdateTrustPolicy, PutRolePolicy)):
        return Resource(step.role.kind, step.role.name)
    if isinstance(step, (CreateBucket, BlockPublicAccess, EncryptBucket)):
        return Resource("bucket", step.bucket)
    if isinstance(step, CreateFunction):
        return Resource("function", step.function.name)
    if isinstance(step, (UpdateFunctionConfiguration, UpdateFunctionCode)):
        return Resource("function", step.function)
    if isinstance(step, (CreateOidcProvider, AddOidcClientId)):
        return Resource("oidc provider", provider_name(step.provider_arn))
    raise TypeError(f"not a bootstrap step: {step!r}")


def describe_step(step: Step) -> str:
    return step.describe()


def step_summary(step: Step) -> str:
    """A few words for the changes table, where the resource is named already."""
    summaries = {CreateRole: "trust policy", UpdateTrustPolicy: "trust policy",
                 PutRolePolicy: f"inline policy {POLICY_NAME}", CreateBucket: "new bucket",
                 BlockPublicAccess: "public access blocked",
                 EncryptBucket: "default encryption SSE-S3", UpdateFunctionCode: "code",
                 CreateOidcProvider: "client id sts.amazonaws.com",
                 AddOidcClientId: "client id sts.amazonaws.com"}
    if isinstance(step, CreateFunction):
        return f"{step.function.runtime} {step.function.architecture}"
    if isinstance(step, UpdateFunctionConfiguration):
        return "configuration: " + ", ".join(key for key, _ in step.settings)
    return summaries[type(step)]


def resource_changes(plan: Plan) -> list[tuple[Resource, str]]:
    """Each resource with "created", "updated" or "unchanged"."""
    created = {step_resource(s) for s in plan.steps
               if isinstance(s, (CreateRole, CreateBucket, CreateFunction, CreateOidcProvider))}
    touched = {step_resource(s) for s in plan.steps}
    return [(r, "created" if r in created else "updated" if r in touched else "unchanged")
            for r in plan.resources]
