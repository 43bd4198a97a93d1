"""Per-request credentials: the deploy role, assumed with a session policy for one function.

The builder's own role may deploy nothing. Each request assumes the deploy role (bootstrap
sets its ARN as `LAMBDA3_DEPLOY_ROLE`) with a session policy naming only that request's
function (and its versions and aliases), that function's layers and the artifact bucket's
`lambda3/` prefix. The credentials AWS returns allow the intersection of the deploy role's
policy (the whole allow-list) and this session policy (one function), for 15 minutes.

The two documents split the work: the deploy role says which actions (FUNCTION_ACTIONS on
the allow-listed functions, AddPermission only under `public_url_statements`' conditions,
the KMS and EC2 actions a function's settings need); the session policy says on which
resources, allowing `lambda:*` on the request's function only. Repeating the role's action
list here would not narrow the intersection further, and would not fit IAM's 2048
characters for a session policy next to five long layer names.

`session_policy` is pure; `scoped_clients` makes the one STS call.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from builder.errors import Lambda3Error
from builder.redact import REDACTOR

VERSION = "2012-10-17"
MAX_SESSION_POLICY = 2048  # IAM's limit for a session policy's plaintext
SESSION_SECONDS = 900  # AssumeRole's shortest duration
# The lambda actions a deploy calls on its function (bootstrap's deploy role holds them on
# every allow-listed function; a session narrows them to one). Function URLs, provisioned
# concurrency (on an alias or version) and the function's resource policy are read and
# changed on `function:F` and `function:F:*`. RemovePermission only takes statements out of
# F's own policy (F's code is the deploy's to replace anyway); AddPermission, which can
# open F to anyone, is in `public_url_statements`, under conditions.
FUNCTION_ACTIONS = ("lambda:GetFunction", "lambda:GetFunctionConfiguration",
                    "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
                    "lambda:PublishVersion", "lambda:ListVersionsByFunction",
                    "lambda:GetAlias", "lambda:CreateAlias", "lambda:UpdateAlias",
                    "lambda:ListTags", "lambda:TagResource", "lambda:UntagResource",
                    "lambda:GetFunctionConcurrency", "lambda:PutFunctionConcurrency",
                    "lambda:GetFunctionUrlConfig", "lambda:CreateFunctionUrlConfig",
                    "lambda:UpdateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig",
                    "lambda:GetPolicy", "lambda:RemovePermission",
                    "lambda:GetProvisionedConcurrencyConfig",
                    "lambda:PutProvisionedConcurrencyConfig",
                    "lambda:DeleteProvisionedConcurrencyConfig",
                    "lambda:GetFunctionRecursionConfig", "lambda:PutFunctionRecursionConfig")
# Creating or updating a function with VpcConfig: Lambda checks the subnets and security
# groups with the caller's permissions. These EC2 actions have no resource-level
# permissions, so they are granted on "*".
VPC_ACTIONS = ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs")
# A customer managed key (KMSKeyArn) on environment variables: Lambda creates a grant and
# encrypts with the caller's permissions, and decrypts them for the caller on reads; only
# when the request comes through Lambda in the function's region (kms:ViaService).
KMS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:CreateGrant")
# Actions that take no resource ARN: layer listings and the VPC checks.
UNSCOPED_ACTIONS = ("lambda:ListLayerVersions", "lambda:ListLayers") + VPC_ACTIONS
# No wildcards: a name with * or ? would widen the policy beyond the request.
_FUNCTION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LAYER = re.compile(r"^[A-Za-z0-9_-]{1,140}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:[a-z-]+:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
_SESSION_CHARS = re.compile(r"[^A-Za-z0-9+=,.@_-]")


class ScopeError(Lambda3Error):
    step = "scope"


def session_policy(*, region: str, account: str, partition: str, function: str,
                   layer_names: Sequence[str], bucket: str | None,
                   pass_role: str | None = None) -> dict[str, Any]:
    """The session policy for deploying `function`: any Lambda action the deploy role
    allows, on its ARN and qualified ARNs only; publishing `layer_names`; the bucket's
    `lambda3/` prefix; the environment key through Lambda; and passing `pass_role` (the role
    a new function is created with) to Lambda only."""
    _check(function, layer_names, bucket, pass_role)
    lam = f"arn:{partition}:lambda:{region}"
    base = f"{lam}:{account}:function:{function}"
    statements: list[dict[str, Any]] = [
        _allow("Function", ["lambda:*"], [base, f"{base}:*"]),
        _allow("LayerRead", ["lambda:GetLayerVersion"], [f"{lam}:*:layer:*:*"]),
        _allow("Unscoped", UNSCOPED_ACTIONS, ["*"]),
        kms_statement(partition, region),
    ]
    if layer_names:
        layers = [f"{lam}:{account}:layer:{name}" for name in dict.fromkeys(layer_names)]
        statements.append(_allow("Layers", ["lambda:PublishLayerVersion"], layers))
    if bucket:
        s3 = f"arn:{partition}:s3:::{bucket}"
        statements += [_allow("Artifacts", ["s3:GetObject", "s3:PutObject"], [f"{s3}/lambda3/*"]),
                       _allow("ArtifactsList", ["s3:ListBucket"], [s3])]
    if pass_role:
        statements.append(_allow("PassRole", ["iam:PassRole"], [pass_role], condition={
            "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}))
    return _within_limit({"Version": VERSION, "Statement": statements}, function)


def public_url_statements(resources: Sequence[str]) -> list[dict[str, Any]]:
    """AddPermission only for the two statements a public function URL (auth type NONE)
    needs on the function's resource policy, both for Principal "*": lambda:InvokeFunctionUrl
    with FunctionUrlAuthType NONE, and lambda:InvokeFunction with InvokedViaFunctionUrl
    true. No grant to an account, a service or an IAM-authorized URL. (IAM has no key for
    the action a new statement allows; these two conditions are all IAM offers.)"""
    return [
        _allow("PublicUrl", ["lambda:AddPermission"], resources, condition={
            "StringEquals": {"lambda:Principal": "*", "lambda:FunctionUrlAuthType": "NONE"}}),
        _allow("PublicUrlInvoke", ["lambda:AddPermission"], resources, condition={
            "StringEquals": {"lambda:Principal": "*"},
            "Bool": {"lambda:InvokedViaFunctionUrl": "true"}}),
    ]


def kms_statement(partition: str, region: str) -> dict[str, Any]:
    """KMS_ACTIONS on the region's keys, only when Lambda in that region makes the request
    on the caller's behalf (the key's own policy must allow the deploy role too)."""
    return _allow("EnvironmentKey", KMS_ACTIONS, [f"arn:{partition}:kms:{region}:*:key/*"],
                  condition={"StringEquals": {"kms:ViaService": via_lambda(region)}})


def via_lambda(region: str) -> str:
    """The kms:ViaService name of Lambda in `region` (the same suffix in every partition)."""
    return f"lambda.{region}.amazonaws.com"


def _allow(sid: str, actions: Sequence[str], resources: Sequence[str], *,
           condition: dict | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": list(actions),
                                 "Resource": list(resources)}
    if condition:
        statement["Condition"] = condition
    return statement


def _check(function: str, layer_names: Sequence[str], bucket: str | None,
           pass_role: str | None) -> None:
    if not _FUNCTION.match(function):
        raise ScopeError(f"{function!r} is not a function name a deploy can be scoped to")
    for name in layer_names:
        if not _LAYER.match(name):
            raise ScopeError(f"{name!r} is not a layer name a deploy can be scoped to")
    if bucket is not None and not _BUCKET.match(bucket):
        raise ScopeError(f"{bucket!r} is not a bucket name a deploy can be scoped to")
    if pass_role is not None and not _ROLE_ARN.match(pass_role):
        raise ScopeError(f"{pass_role!r} is not a role ARN a deploy can pass")


def role_account(role_arn: str) -> tuple[str, str]:
    """(partition, account) of a role ARN: the deploy role lives in the builder's account,
    so its ARN says where the request's resources are without asking STS."""
    if not _ROLE_ARN.match(role_arn):
        raise ScopeError(f"LAMBDA3_DEPLOY_ROLE {role_arn!r} is not a role ARN",
                         hint="re-run `lambda3 bootstrap` to set it")
    parts = role_arn.split(":")
    return parts[1], parts[4]


def packed_size(policy: dict[str, Any]) -> int:
    return len(json.dumps(policy, separators=(",", ":")))


def _within_limit(policy: dict[str, Any], function: str) -> dict[str, Any]:
    size = packed_size(policy)
    if size > MAX_SESSION_POLICY:
        raise ScopeError(f"the session policy for {function} would be {size} characters, over "
                         f"IAM's {MAX_SESSION_POLICY}", hint="give the build file fewer layers")
    return policy


def session_name(function: str, request_id: str = "") -> str:
    """`lambda3-<function>[-<request id>]` as a valid RoleSessionName (2-64 characters),
    so CloudTrail shows which request each deploy call belongs to."""
    name = _SESSION_CHARS.sub("-", "-".join(p for p in ("lambda3", function, request_id) if p))
    return name[:64]


def scoped_clients(clients: Any, *, role_arn: str, policy: dict[str, Any],
                   session_name: str) -> Any:
    """`clients` with the deploy role's credentials, narrowed by `policy`, for 15 minutes."""
    from botocore.exceptions import ClientError

    try:
        found = clients("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, Policy=json.dumps(policy),
            DurationSeconds=SESSION_SECONDS)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise ScopeError(f"the builder could not assume its deploy role {role_arn}: {code}",
                         hint="re-run `lambda3 bootstrap` (it creates the role and lets the "
                              "builder assume it)") from None
    credentials = found["Credentials"]
    for secret in (credentials["SecretAccessKey"], credentials["SessionToken"]):
        REDACTOR.add(secret)
    return clients.with_credentials({"aws_access_key_id": credentials["AccessKeyId"],
                                     "aws_secret_access_key": credentials["SecretAccessKey"],
                                     "aws_session_token": credentials["SessionToken"]})
