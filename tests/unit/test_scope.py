"""builder.scope: the session policy of one request, and assuming the deploy role with it."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from builder.clients import Clients
from builder.redact import REDACTOR
from builder.scope import (
    KMS_ACTIONS,
    MAX_SESSION_POLICY,
    SESSION_SECONDS,
    UNSCOPED_ACTIONS,
    ScopeError,
    packed_size,
    role_account,
    scoped_clients,
    session_name,
    session_policy,
)

WHERE = {"region": "eu-west-1", "account": "123456789012", "partition": "aws"}


def policy(**kwargs):
    arguments = {**WHERE, "function": "shop-cart", "layer_names": ["shop-cart-dependencies"],
                 "bucket": "art", **kwargs}
    return session_policy(**arguments)


def resources(document, action):
    return [r for s in document["Statement"] if action in s["Action"] for r in s["Resource"]]


def test_the_function_and_its_qualifiers_only():
    base = "arn:aws:lambda:eu-west-1:123456789012:function:shop-cart"
    assert resources(policy(), "lambda:*") == [base, f"{base}:*"]
    named = [r for s in policy()["Statement"] for r in s["Resource"] if ":function:" in r]
    assert named == [base, f"{base}:*"]  # no other statement names a function


def test_only_listings_and_the_vpc_checks_are_on_every_resource():
    (statement,) = [s for s in policy()["Statement"] if s["Resource"] == ["*"]]
    assert tuple(statement["Action"]) == UNSCOPED_ACTIONS
    assert set(UNSCOPED_ACTIONS) == {"lambda:ListLayerVersions", "lambda:ListLayers",
                                     "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
                                     "ec2:DescribeVpcs"}
    assert "Condition" not in statement


@pytest.mark.parametrize("partition, region", [("aws", "eu-west-1"), ("aws-cn", "cn-north-1")])
def test_the_environment_key_is_used_only_through_lambda_in_the_region(partition, region):
    document = policy(partition=partition, region=region)
    (statement,) = [s for s in document["Statement"] if "kms:CreateGrant" in s["Action"]]
    assert set(statement["Action"]) == set(KMS_ACTIONS) == {
        "kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"}
    assert statement["Resource"] == [f"arn:{partition}:kms:{region}:*:key/*"]
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": f"lambda.{region}.amazonaws.com"}}


def test_the_named_layers_only():
    found = resources(policy(layer_names=["shop-cart-dependencies", "shop-cart-assets"]),
                      "lambda:PublishLayerVersion")
    assert found == ["arn:aws:lambda:eu-west-1:123456789012:layer:shop-cart-dependencies",
                     "arn:aws:lambda:eu-west-1:123456789012:layer:shop-cart-assets"]
    assert resources(policy(layer_names=[]), "lambda:PublishLayerVersion") == []


def test_the_buckets_lambda3_prefix_only():
    assert resources(policy(), "s3:PutObject") == ["arn:aws:s3:::art/lambda3/*"]
    assert resources(policy(bucket=None), "s3:PutObject") == []


def test_a_role_is_passed_only_when_named_and_only_to_lambda():
    assert resources(policy(), "iam:PassRole") == []
    role = "arn:aws:iam::123456789012:role/shop-app"
    (statement,) = [s for s in policy(pass_role=role)["Statement"]
                    if "iam:PassRole" in s["Action"]]
    assert statement["Resource"] == [role]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}


@pytest.mark.parametrize("arguments", [
    {"function": "shop-*"}, {"function": "arn:aws:lambda:eu-west-1:1:function:x"},
    {"layer_names": ["shop-cart-*"]}, {"layer_names": ["a:b"]}, {"bucket": "Bad_Bucket"},
    {"pass_role": "arn:aws:iam::123456789012:role/*"}, {"pass_role": "shop-app"},
])
def test_wildcards_and_odd_names_are_refused(arguments):
    with pytest.raises(ScopeError):
        policy(**arguments)


def test_the_packed_policy_stays_within_iams_limit():
    many = [f"shop-cart-{'x' * 40}-{n}" for n in range(5)]
    assert packed_size(policy(layer_names=many,
                              pass_role="arn:aws:iam::123456789012:role/shop-app")) \
        <= MAX_SESSION_POLICY
    with pytest.raises(ScopeError, match="over IAM's 2048"):
        policy(layer_names=[f"shop-cart-{'x' * 100}-{n}" for n in range(20)])


def test_a_longest_function_name_with_its_layers_fits():
    name = "f" * 64
    document = policy(function=name, region="ap-southeast-2",
                      layer_names=[f"{name}-dependencies", f"{name}-assets", f"{name}-models"],
                      bucket="lambda3-artifacts-123456789012-ap-southeast-2",
                      pass_role="arn:aws:iam::123456789012:role/" + "r" * 64)
    assert packed_size(document) <= MAX_SESSION_POLICY


def test_the_deploy_roles_arn_says_partition_and_account():
    assert role_account("arn:aws-cn:iam::123456789012:role/b-deploy") == ("aws-cn",
                                                                         "123456789012")
    with pytest.raises(ScopeError, match="LAMBDA3_DEPLOY_ROLE"):
        role_account("b-deploy")


def test_session_names_are_valid_role_session_names():
    assert session_name("shop-cart", "3f2a") == "lambda3-shop-cart-3f2a"
    long = session_name("f" * 64, "request/id")
    assert len(long) == 64 and "/" not in long


class FakeSts:
    def __init__(self):
        self.calls = []

    def assume_role(self, **kwargs):
        self.calls.append(kwargs)
        return {"Credentials": {"AccessKeyId": "ASIAFAKE", "SecretAccessKey": "s3cr3t-" * 4,
                                "SessionToken": "t0ken-" * 8}}


class FakeClients:
    def __init__(self):
        self.sts = FakeSts()
        self.credentials = None

    def __call__(self, service):
        assert service == "sts"
        return self.sts

    def with_credentials(self, credentials):
        self.credentials = dict(credentials)
        return "scoped"


def test_scoped_clients_assume_the_role_with_the_policy_for_15_minutes():
    clients, document = FakeClients(), policy()
    role = "arn:aws:iam::123456789012:role/lambda3-builder-deploy"
    assert scoped_clients(clients, role_arn=role, policy=document,
                          session_name="lambda3-shop-cart") == "scoped"
    (call,) = clients.sts.calls
    assert call["RoleArn"] == role and call["RoleSessionName"] == "lambda3-shop-cart"
    assert json.loads(call["Policy"]) == document
    assert call["DurationSeconds"] == SESSION_SECONDS == 900
    assert clients.credentials == {"aws_access_key_id": "ASIAFAKE",
                                   "aws_secret_access_key": "s3cr3t-" * 4,
                                   "aws_session_token": "t0ken-" * 8}
    assert "s3cr3t" not in REDACTOR("secret: " + "s3cr3t-" * 4)


def test_scoped_clients_against_the_emulator(aws):
    iam = aws.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": f"arn:aws:iam::{aws.account}:role/lambda3-builder-role"}}]}
    role = iam.create_role(RoleName="lambda3-builder-deploy",
                           AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    clients = Clients(region="eu-west-1", endpoint_url=aws.endpoint_url)
    scoped = scoped_clients(clients, role_arn=role, policy=policy(),
                            session_name="lambda3-shop-cart")
    who = scoped("sts").get_caller_identity()["Arn"]
    assert who.endswith(":assumed-role/lambda3-builder-deploy/lambda3-shop-cart")
    assert scoped.region == "eu-west-1" and scoped.endpoint_url == aws.endpoint_url


class RefusingSts:
    def assume_role(self, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
                          "AssumeRole")


def test_a_refused_assume_role_is_one_clear_error():
    clients = FakeClients()
    clients.sts = RefusingSts()
    with pytest.raises(ScopeError, match="could not assume its deploy role .*: AccessDenied"):
        scoped_clients(clients, role_arn="arn:aws:iam::123456789012:role/lambda3-builder-deploy",
                       policy=policy(), session_name="lambda3-shop-cart")
    assert clients.credentials is None
