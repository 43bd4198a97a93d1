"""The IAM documents bootstrap puts in place, as pure functions of names and patterns.

Two roles split what the builder may do:

- the builder role (`<name>-role`, the function's own) runs the builds: it writes its own
  log group and the `lambda3/` prefix of the artifact bucket, publishes versions of its own
  `<name>-toolchain` layer, reads its own configuration, and may assume the deploy role.
  It cannot change any function, itself included: attaching the toolchain is the bootstrap
  client's job, done with the operator's credentials.
- the scoped deploy role (`<name>-deploy`), trusted by the builder role only, holds the
  deploy permissions on the allow-listed functions (the same patterns the builder enforces
  in `check_allowed`) and their layers; each request assumes it with a session policy for
  its one function (`builder.scope.session_policy`). It never touches the builder, and may
  pass roles to Lambda only when bootstrap was given `--pass-role` patterns.

The GitHub deploy role may only invoke the builder and read the builder's log.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import Lambda3Error
from builder.scope import (
    FUNCTION_ACTIONS,
    UNSCOPED_ACTIONS,
    kms_statement,
    public_url_statements,
)

VERSION = "2012-10-17"
GITHUB_ISSUER = "token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "sts.amazonaws.com"
# IAM patterns know * and ? only, so the allow-list is limited to what both IAM and
# fnmatch read the same way: name characters and those two wildcards.
_PATTERN = re.compile(r"^[A-Za-z0-9_*?-]{1,64}$")
_ROLE_PATTERN = re.compile(r"^[A-Za-z0-9+=,.@_*?-]{1,64}$")
_REPO = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
_REF = re.compile(r"^[A-Za-z0-9_./:*?@+=-]{1,200}$")
_CODEARTIFACT = re.compile(r"^[a-z][a-z0-9-]{1,49}/[A-Za-z0-9][A-Za-z0-9._-]{1,99}$")
_ROLE_CHARS = re.compile(r"[^A-Za-z0-9+=,.@_-]")
MAX_ROLE_NAME = 64
MAX_INLINE_POLICY = 10240  # IAM's limit for a role's inline policies, whitespace not counted

LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
READ_LOG_ACTIONS = ("logs:FilterLogEvents", "logs:GetLogEvents", "logs:DescribeLogStreams")


class PolicyError(Lambda3Error):
    step = "bootstrap"


@dataclass(frozen=True)
class Account:
    """Where the resources live: ARNs are built from these."""

    account: str
    region: str
    partition: str = "aws"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{name}"


# -- names ---------------------------------------------------------------------------------
def check_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    if not patterns:
        raise PolicyError("the allow-list is empty", hint="pass --allow PATTERN, or leave it out "
                          "to allow every function")
    for pattern in patterns:
        if not _PATTERN.match(pattern):
            raise PolicyError(f"allow pattern {pattern!r} is not a function name pattern",
                              hint="use letters, digits, - and _, with * and ? as wildcards")
    return tuple(dict.fromkeys(patterns))


def check_role_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    for pattern in patterns:
        if not _ROLE_PATTERN.match(pattern):
            raise PolicyError(f"--pass-role {pattern!r} is not a role name pattern",
                              hint="a role name (no path), with * and ? as wildcards")
    return tuple(dict.fromkeys(patterns))


def check_github(repo: str, ref_pattern: str) -> None:
    if not _REPO.match(repo):
        raise PolicyError(f"--github-repo {repo!r} is not OWNER/REPO")
    if not _REF.match(ref_pattern):
        raise PolicyError(f"--github-ref {ref_pattern!r} has characters a subject never has",
                          hint="e.g. ref:refs/heads/main, ref:refs/tags/v*, environment:prod")


def check_codeartifact(repositories: Sequence[str]) -> tuple[str, ...]:
    for repository in repositories:
        if not _CODEARTIFACT.match(repository):
            raise PolicyError(f"--codeartifact {repository!r} is not DOMAIN/REPOSITORY",
                              hint="e.g. --codeartifact acme/pypi-store")
    return tuple(dict.fromkeys(repositories))


def role_name(name: str) -> str:
    return f"{name}-role"


def scoped_role_name(name: str) -> str:
    """`<name>-deploy`: the role each request assumes, scoped to its function."""
    return _fit_role_name(f"{name}-deploy")


def deploy_role_name(name: str, repo: str) -> str:
    """`<name>-github-<owner>-<repo>`, made a valid IAM role name."""
    return _fit_role_name(f"{name}-github-{repo.replace('/', '-')}")


def _fit_role_name(wanted: str) -> str:
    """At most 64 characters; a longer name keeps its start and ends with a hash of the
    whole, so it stays unique."""
    full = _ROLE_CHARS.sub("-", wanted)
    if len(full) <= MAX_ROLE_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:MAX_ROLE_NAME - 9]}-{digest}"


def github_subject(repo: str, ref_pattern: str = "*") -> str:
    return f"repo:{repo}:{ref_pattern}"


def oidc_provider_arn(where: Account) -> str:
    return f"arn:{where.partition}:iam::{where.account}:oidc-provider/{GITHUB_ISSUER}"


def function_arns(where: Account, patterns: Sequence[str]) -> list[str]:
    """Each pattern as the function's ARN and its qualified ARNs (versions, aliases)."""
    arns = []
    for pattern in patterns:
        base = where.arn("lambda", f"function:{pattern}")
        arns += [base, f"{base}:*"]
    return arns


def layer_arns(where: Account, patterns: Sequence[str]) -> list[str]:
    """The layers a deploy publishes are named after the function: `<function>-<layer>`."""
    if "*" in patterns:
        return [where.arn("lambda", "layer:*")]
    return [where.arn("lambda", f"layer:{pattern}-*") for pattern in patterns]


def builder_layer_arns(where: Account, name: str) -> list[str]:
    """The builder's own layers (`<name>-toolchain`, `<name>-seed`) and their versions."""
    return [where.arn("lambda", f"layer:{name}-{kind}{version}")
            for kind in ("toolchain", "seed") for version in ("", ":*")]


def log_group_arns(where: Account, function: str) -> list[str]:
    group = where.arn("logs", f"log-group:/aws/lambda/{function}")
    return [group, f"{group}:*"]


# -- documents -----------------------------------------------------------------------------
def _statement(sid: str, actions: Sequence[str], resources: Sequence[str], *,
               effect: str = "Allow", condition: dict | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": list(actions),
                                 "Resource": list(resources)}
    if condition:
        statement["Condition"] = condition
    return statement


def lambda_trust_policy() -> dict[str, Any]:
    return {"Version": VERSION, "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}


def builder_policy(where: Account, name: str, bucket: str,
                   codeartifact: Sequence[str] = ()) -> dict[str, Any]:
    """The builder role's inline policy: builds, its toolchain layer, reading the
    CodeArtifact repositories given (DOMAIN/REPOSITORY), and assuming the deploy role; no
    change to any function."""
    own = where.arn("lambda", f"function:{name}")
    toolchain = where.arn("lambda", f"layer:{name}-toolchain")
    statements = [
        _statement("OwnLogs", LOG_ACTIONS, log_group_arns(where, name)),
        *_artifact_statements(where, bucket),
        _statement("OwnConfiguration", ["lambda:GetFunctionConfiguration"], [own]),
        _statement("OwnToolchain", ["lambda:PublishLayerVersion"], [toolchain]),
        _statement("OwnToolchainVersions", ["lambda:GetLayerVersion"], [f"{toolchain}:*"]),
        _statement("ListLayerVersions", ["lambda:ListLayerVersions"], ["*"]),
        _statement("AssumeDeployRole", ["sts:AssumeRole"],
                   [where.role_arn(scoped_role_name(name))]),
        *_codeartifact_statements(where, codeartifact),
        # nothing above allows more; this stays true if someone attaches a broader policy
        {"Sid": "NeverReconfigureItself", "Effect": "Deny",
         "NotAction": ["lambda:GetFunctionConfiguration"], "Resource": [own, f"{own}:*"]},
    ]
    return _within_limit({"Version": VERSION, "Statement": statements})


def _codeartifact_statements(where: Account, repositories: Sequence[str]) -> list[dict]:
    """A token for each domain and reading each repository (its PyPI endpoint and
    packages); the bearer token CodeArtifact tokens are made from."""
    if not repositories:
        return []
    domains = sorted({r.split("/")[0] for r in repositories})
    return [
        _statement("CodeArtifactToken", ["codeartifact:GetAuthorizationToken"],
                   [where.arn("codeartifact", f"domain/{d}") for d in domains]),
        _statement("CodeArtifactRead", ["codeartifact:GetRepositoryEndpoint",
                                        "codeartifact:ReadFromRepository"],
                   [where.arn("codeartifact", f"repository/{r}") for r in repositories]),
        _statement("CodeArtifactBearerToken", ["sts:GetServiceBearerToken"], ["*"],
                   condition={"StringEquals": {"sts:AWSServiceName":
                                               "codeartifact.amazonaws.com"}}),
    ]


def scoped_role_trust_policy(where: Account, name: str) -> dict[str, Any]:
    """Only the builder's role may assume the deploy role."""
    return {"Version": VERSION, "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": where.role_arn(role_name(name))},
        "Action": "sts:AssumeRole"}]}


def scoped_role_policy(where: Account, name: str, bucket: str, allow: Sequence[str],
                       pass_roles: Sequence[str] = ()) -> dict[str, Any]:
    """The deploy role's inline policy: the allow-listed functions and their layers, never
    the builder or its layers. A request narrows it to one function.

    It holds what a deploy calls for every setting the build file manages: FUNCTION_ACTIONS
    on `function:PATTERN` and `function:PATTERN:*` (qualified: function URLs and provisioned
    concurrency on aliases); AddPermission only for a public function URL's two statements;
    the EC2 reads Lambda makes with the caller's permissions for `VpcConfig`; and the KMS
    actions a customer managed key on environment variables needs, only through Lambda. A
    dead-letter queue or topic needs nothing here: Lambda sends to it with the function's
    execution role (sqs:SendMessage, sns:Publish)."""
    own = where.arn("lambda", f"function:{name}")
    own_layers = builder_layer_arns(where, name)
    target_actions = FUNCTION_ACTIONS + (("lambda:CreateFunction",) if pass_roles else ())
    targets = function_arns(where, allow)
    statements = [
        _statement("TargetFunctions", target_actions, targets),
        *public_url_statements(targets),
        _statement("TargetLayers", ["lambda:PublishLayerVersion"], layer_arns(where, allow)),
        _statement("ReadLayerVersions", ["lambda:GetLayerVersion"],
                   [f"arn:{where.partition}:lambda:{where.region}:*:layer:*:*"]),
        _statement("Unscoped", UNSCOPED_ACTIONS, ["*"]),
        kms_statement(where.partition, where.region),
        *_artifact_statements(where, bucket),
        _statement("NeverTheBuilder", ["lambda:*"], [own, f"{own}:*", *own_layers],
                   effect="Deny"),
    ]
    if pass_roles:
        statements += _pass_role_statements(where, name, pass_roles)
    return _within_limit({"Version": VERSION, "Statement": statements})


def _artifact_statements(where: Account, bucket: str) -> list[dict[str, Any]]:
    """The `lambda3/` prefix (zips too large to upload directly); listing the bucket makes
    a missing object a 404, not a 403."""
    arn = f"arn:{where.partition}:s3:::{bucket}"
    return [_statement("Artifacts", ["s3:GetObject", "s3:PutObject"], [f"{arn}/lambda3/*"]),
            _statement("ArtifactsList", ["s3:ListBucket"], [arn])]


def _within_limit(document: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(document, separators=(",", ":")))
    if size > MAX_INLINE_POLICY:
        raise PolicyError(f"a builder role's policy would be {size} characters, over IAM's "
                          f"{MAX_INLINE_POLICY}", hint="use fewer, broader --allow and "
                          "--pass-role patterns (e.g. a common prefix with *)")
    return document


def _pass_role_statements(where: Account, name: str, pass_roles: Sequence[str]) -> list[dict]:
    """Passing a role to Lambda is what creating a function (or changing its role) takes.
    Only the named roles, only to Lambda, and never the builder's roles (which would hand
    a deployed function the builder's powers)."""
    roles = [where.role_arn(pattern) for pattern in pass_roles]
    to_lambda = {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    own = [where.role_arn(role_name(name)), where.role_arn(scoped_role_name(name))]
    return [_statement("PassFunctionRoles", ["iam:PassRole"], roles, condition=to_lambda),
            _statement("NeverOwnRoles", ["iam:PassRole"], own, effect="Deny")]


def github_trust_policy(provider_arn: str, repo: str, ref_pattern: str = "*") -> dict[str, Any]:
    """Only GitHub's OIDC tokens for this audience and this repository (and ref pattern)."""
    return {"Version": VERSION, "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": {f"{GITHUB_ISSUER}:aud": GITHUB_AUDIENCE},
            "StringLike": {f"{GITHUB_ISSUER}:sub": github_subject(repo, ref_pattern)},
        },
    }]}


RELEASE_ACTIONS = ("lambda:GetAlias", "lambda:UpdateAlias", "lambda:InvokeFunction",
                   "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                   "lambda:ListAliases", "lambda:ListVersionsByFunction",
                   "lambda:DeleteFunction", "lambda:DeleteAlias",
                   "lambda:ListTags",  # a pull request's previews are found by their tags
                   # a preview alias's settings, deleted with it
                   "lambda:GetFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig",
                   "lambda:RemovePermission", "lambda:GetProvisionedConcurrencyConfig",
                   "lambda:DeleteProvisionedConcurrencyConfig")
# Promote into another account copies the source's layers under the same names, so the
# release role may publish versions of the allow-list's layers (and read and delete them,
# for prune). ListLayerVersions has no resource-level permissions: it is a read on "*".
RELEASE_LAYER_ACTIONS = ("lambda:GetLayerVersion", "lambda:PublishLayerVersion",
                         "lambda:DeleteLayerVersion")
RELEASE_READ_ACTIONS = ("lambda:ListFunctions", "lambda:ListLayerVersions",
                        "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricStatistics")


def deploy_role_policy(where: Account, builder: str,
                       releases: Sequence[str] = ()) -> dict[str, Any]:
    """The deploy role may invoke the builder and read its log. With `releases` (the
    builder's allow-list, from `--github-releases`) it may also drive the steps after a
    build on those functions: rollouts (alias weights, checks, alarms and metrics),
    promotion (publishing copies of the layers it promotes, in a target account) and
    pruning; never on the builder itself or its layers."""
    statements = [
        _statement("InvokeBuilder", ["lambda:InvokeFunction"],
                   [where.arn("lambda", f"function:{builder}")]),
        _statement("ReadBuilderLog", READ_LOG_ACTIONS, log_group_arns(where, builder)),
    ]
    if releases:
        builder_arn = where.arn("lambda", f"function:{builder}")
        statements += [
            _statement("Releases", RELEASE_ACTIONS, function_arns(where, releases)),
            _statement("ReleaseLayers", RELEASE_LAYER_ACTIONS, layer_arns(where, releases)),
            _statement("ReleaseReads", RELEASE_READ_ACTIONS, ["*"]),
            _statement("NotTheBuilder", [a for a in RELEASE_ACTIONS
                                         if a != "lambda:InvokeFunction"],
                       [builder_arn, f"{builder_arn}:*"], effect="Deny"),
            _statement("NotTheBuildersLayers", RELEASE_LAYER_ACTIONS,
                       builder_layer_arns(where, builder), effect="Deny"),
        ]
    return {"Version": VERSION, "Statement": statements}
