"""Reading what the account holds now, for `bootstrap.plan.make_plan`.

Every read is one call through the AWS wrapper; "does not exist" becomes None, anything
else (no permission, a bucket name taken by another account) is an error the user sees.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from bootstrap.plan import (
    POLICY_NAME,
    BucketState,
    Desired,
    ProviderState,
    RoleState,
    State,
)
from bootstrap.policies import Account
from builder.aws import Aws
from builder.errors import AwsError

_MISSING = {"NoSuchEntity", "NoSuchBucket", "NotFound", "404", "ResourceNotFoundException",
            "NoSuchPublicAccessBlockConfiguration",
            "ServerSideEncryptionConfigurationNotFoundError"}


def read_account(aws: Aws) -> Account:
    found = aws.call("sts", "get_caller_identity")
    partition = found["Arn"].split(":")[1] if found.get("Arn") else "aws"
    return Account(found["Account"], aws.region, partition)


def read_state(aws: Aws, desired: Desired) -> State:
    github = desired.github
    return State(
        role=read_role(aws, desired.role.name),
        bucket=read_bucket(aws, desired.bucket),
        function=aws.get_function(desired.function.name),
        provider=read_provider(aws, github.provider_arn) if github else None,
        deploy_role=read_role(aws, github.role.name) if github else None,
        scoped_role=read_role(aws, desired.scoped_role.name) if desired.scoped_role else None,
    )


def _maybe(aws: Aws, service: str, method: str, **kwargs: Any) -> Any:
    try:
        return aws.call(service, method, **kwargs)
    except AwsError as error:
        if error.code in _MISSING:
            return None
        raise


def _document(value: Any) -> Mapping[str, Any]:
    """IAM returns policies URL-encoded; boto3 usually decodes them already."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value


def read_role(aws: Aws, name: str) -> RoleState | None:
    found = _maybe(aws, "iam", "get_role", RoleName=name)
    if found is None:
        return None
    role = found["Role"]
    policy = _maybe(aws, "iam", "get_role_policy", RoleName=name, PolicyName=POLICY_NAME)
    policies = {POLICY_NAME: _document(policy["PolicyDocument"])} if policy else {}
    return RoleState(role["Arn"], _document(role["AssumeRolePolicyDocument"]), policies)


def read_bucket(aws: Aws, bucket: str) -> BucketState | None:
    try:
        aws.call("s3", "head_bucket", Bucket=bucket)
    except AwsError as error:
        if error.code in _MISSING:
            return None
        if error.code in ("403", "AccessDenied", "Forbidden"):
            raise AwsError(f"bucket {bucket} exists but this account cannot use it",
                           hint="bucket names are global: pass --bucket with another name",
                           code=error.code, step="bootstrap") from None
        raise
    block = _maybe(aws, "s3", "get_public_access_block", Bucket=bucket)
    flags = (block or {}).get("PublicAccessBlockConfiguration", {})
    blocked = bool(flags) and all(flags.get(key) for key in (
        "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"))
    encryption = _maybe(aws, "s3", "get_bucket_encryption", Bucket=bucket)
    rules = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    return BucketState(blocked, bool(rules))


def read_provider(aws: Aws, arn: str) -> ProviderState | None:
    found = _maybe(aws, "iam", "get_open_id_connect_provider", OpenIDConnectProviderArn=arn)
    if found is None:
        return None
    return ProviderState(arn, tuple(found.get("ClientIDList", [])))
