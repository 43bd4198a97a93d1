"""What a stolen builder credential can do, evaluated on the documents bootstrap writes.

The builder role (the credentials every build runs with) and the deploy role under a
request's session policy are evaluated with tests/policy_eval.py; one denial is also made
for real against moto's server with IAM authorization switched on.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from bootstrap.config import BootstrapConfig, make_desired
from bootstrap.plan import BuilderCode
from bootstrap.policies import Account
from builder.scope import session_policy
from tests.policy_eval import ALLOW, EXPLICIT_DENY, allowed, decide, trusts

WHERE = Account("123456789012", "eu-west-1")
NAME = "lambda3-builder"
BUCKET = "lambda3-artifacts-123456789012-eu-west-1"


def lam(resource: str) -> str:
    return WHERE.arn("lambda", resource)


BUILDER = lam(f"function:{NAME}")
BUILDER_ROLE = WHERE.role_arn(f"{NAME}-role")
DEPLOY_ROLE = WHERE.role_arn(f"{NAME}-deploy")
WRITES = ["lambda:UpdateFunctionConfiguration", "lambda:UpdateFunctionCode",
          "lambda:PublishVersion", "lambda:AddPermission", "lambda:RemovePermission",
          "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteFunction",
          "lambda:PutFunctionConcurrency", "lambda:CreateFunctionUrlConfig",
          "lambda:UpdateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig",
          "lambda:PutProvisionedConcurrencyConfig", "lambda:DeleteProvisionedConcurrencyConfig",
          "lambda:PutFunctionRecursionConfig", "lambda:InvokeFunction", "lambda:TagResource"]
# the settings a deploy manages beyond code, configuration, versions and aliases
SETTINGS = ["lambda:GetFunctionUrlConfig", "lambda:CreateFunctionUrlConfig",
            "lambda:UpdateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig",
            "lambda:GetPolicy", "lambda:RemovePermission",
            "lambda:GetProvisionedConcurrencyConfig", "lambda:PutProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig", "lambda:GetFunctionRecursionConfig",
            "lambda:PutFunctionRecursionConfig"]
# a public function URL's two resource-policy statements, as AddPermission is asked for them
PUBLIC_URL = [{"lambda:Principal": "*", "lambda:FunctionUrlAuthType": "NONE"},
              {"lambda:Principal": "*", "lambda:InvokedViaFunctionUrl": "true"}]
KEY = WHERE.arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab")
VIA_LAMBDA = {"kms:ViaService": f"lambda.{WHERE.region}.amazonaws.com"}


def documents(allow=("*",), pass_roles=()):
    config = BootstrapConfig(name=NAME, allow=tuple(allow), pass_roles=tuple(pass_roles))
    return make_desired(config, WHERE, BuilderCode("builder.zip", "sha"))


@pytest.fixture(params=[("*",), ("shop-*", "api")], ids=["allow-everything", "allow-shop"])
def desired(request):
    return documents(request.param, pass_roles=("shop-*",))


def builder_may(desired, action, resource, context=None):
    return allowed([desired.role.policy], action, resource, context)


def request_may(desired, function, layers, action, resource, context=None, pass_role=None):
    session = session_policy(region=WHERE.region, account=WHERE.account,
                             partition=WHERE.partition, function=function, layer_names=layers,
                             bucket=BUCKET, pass_role=pass_role)
    return allowed([desired.scoped_role.policy], action, resource, context, session=session)


# -- the evaluator itself --------------------------------------------------------------------
def test_the_evaluator_reads_wildcards_negations_conditions_and_deny():
    policy = {"Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/p/*"},
        {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
         "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/p/secret"},
    ]}
    assert decide([policy], "S3:GETOBJECT", "arn:aws:s3:::b/p/x") == ALLOW
    assert decide([policy], "s3:GetObject", "arn:aws:s3:::b/p/secret") == EXPLICIT_DENY
    assert not allowed([policy], "s3:GetObject", "arn:aws:s3:::b/q/x")
    assert allowed([policy], "ec2:RunInstances", "arn:aws:ec2:eu-west-1:1:instance/i")
    assert not allowed([policy], "iam:CreateUser", "arn:aws:iam::1:user/u")
    assert allowed([policy], "iam:PassRole", "r", {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not allowed([policy], "iam:PassRole", "r", {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allowed([policy], "iam:PassRole", "r")
    session = {"Statement": [{"Effect": "Allow", "Action": "s3:*",
                              "Resource": "arn:aws:s3:::b/p/1"}]}
    assert allowed([policy], "s3:GetObject", "arn:aws:s3:::b/p/1", session=session)
    assert not allowed([policy], "s3:GetObject", "arn:aws:s3:::b/p/2", session=session)
    assert not allowed([policy], "s3:PutObject", "arn:aws:s3:::b/p/1", session=session)
    flagged = {"Statement": [{"Effect": "Allow", "Action": "lambda:AddPermission",
                              "Resource": "*", "Condition": {
                                  "StringEquals": {"lambda:Principal": "*"},
                                  "Bool": {"lambda:InvokedViaFunctionUrl": "true"}}}]}
    for value in ("true", True, "TRUE"):
        assert allowed([flagged], "lambda:AddPermission", "f",
                       {"lambda:Principal": "*", "lambda:InvokedViaFunctionUrl": value})
    for context in ({"lambda:Principal": "*", "lambda:InvokedViaFunctionUrl": False},
                    {"lambda:Principal": "*"}, {"lambda:InvokedViaFunctionUrl": True}):
        assert not allowed([flagged], "lambda:AddPermission", "f", context)


# -- the builder role: builds, and nothing on functions ---------------------------------------
@pytest.mark.parametrize("action", WRITES + ["lambda:GetFunction"])
@pytest.mark.parametrize("resource", [BUILDER, f"{BUILDER}:$LATEST", f"{BUILDER}:live"])
def test_the_builder_role_cannot_change_the_builder(desired, action, resource):
    assert not builder_may(desired, action, resource)


@pytest.mark.parametrize("action", WRITES)
@pytest.mark.parametrize("function", ["shop-cart", "api", "payroll"])
def test_the_builder_role_cannot_change_any_function(desired, action, function):
    assert not builder_may(desired, action, lam(f"function:{function}"))


def test_the_builder_role_publishes_its_toolchain_layer_only(desired):
    assert builder_may(desired, "lambda:PublishLayerVersion", lam(f"layer:{NAME}-toolchain"))
    for layer in (f"{NAME}-seed", "shop-cart-dependencies", "api-dependencies", "x"):
        assert not builder_may(desired, "lambda:PublishLayerVersion", lam(f"layer:{layer}"))
    for action in ("lambda:AddLayerVersionPermission", "lambda:DeleteLayerVersion"):
        assert not builder_may(desired, action, lam(f"layer:{NAME}-toolchain:1"))


def test_the_builder_role_keeps_what_a_build_needs(desired):
    assert builder_may(desired, "logs:PutLogEvents",
                       WHERE.arn("logs", f"log-group:/aws/lambda/{NAME}:log-stream:x"))
    assert builder_may(desired, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/lambda3/artifacts/a.zip")
    assert not builder_may(desired, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/other/a.zip")
    assert builder_may(desired, "lambda:GetFunctionConfiguration", BUILDER)


def test_the_builder_role_uses_no_key_and_makes_nothing_public(desired):
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"):
        assert not builder_may(desired, action, KEY, VIA_LAMBDA)
    for context in PUBLIC_URL:
        for resource in (BUILDER, lam("function:shop-cart")):
            assert not builder_may(desired, "lambda:AddPermission", resource, context)


def test_the_builder_role_passes_no_role(desired):
    for role in ("shop-app", f"{NAME}-role", f"{NAME}-deploy", "admin"):
        assert not builder_may(desired, "iam:PassRole", WHERE.role_arn(role),
                               {"iam:PassedToService": "lambda.amazonaws.com"})


def test_the_builder_role_assumes_the_deploy_role_only(desired):
    assert builder_may(desired, "sts:AssumeRole", DEPLOY_ROLE)
    for role in ("admin", f"{NAME}-role", f"{NAME}-github-acme-shop", "shop-app"):
        assert not builder_may(desired, "sts:AssumeRole", WHERE.role_arn(role))
    for action in ("sts:AssumeRoleWithWebIdentity", "iam:PutRolePolicy", "iam:CreateRole",
                   "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy"):
        assert not builder_may(desired, action, DEPLOY_ROLE)


def test_only_the_builder_role_is_trusted_by_the_deploy_role(desired):
    trust = desired.scoped_role.trust
    assert trusts(trust, {"AWS": BUILDER_ROLE})
    assert not trusts(trust, {"AWS": WHERE.role_arn("shop-app")})
    assert not trusts(trust, {"Service": "lambda.amazonaws.com"})
    assert not trusts(trust, {"AWS": f"arn:aws:iam::{WHERE.account}:root"})


# -- the deploy role under one request's session policy ----------------------------------------
def test_a_request_for_f_deploys_f_and_its_layers(desired):
    f = lam("function:shop-cart")
    for action in ("lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
                   "lambda:PublishVersion", "lambda:GetFunction"):
        assert request_may(desired, "shop-cart", ["shop-cart-dependencies"], action, f)
    assert request_may(desired, "shop-cart", [], "lambda:UpdateAlias", f"{f}:live")
    assert request_may(desired, "shop-cart", ["shop-cart-dependencies"],
                       "lambda:PublishLayerVersion", lam("layer:shop-cart-dependencies"))
    assert request_may(desired, "shop-cart", [], "lambda:GetLayerVersion",
                       "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertools:3")
    assert request_may(desired, "shop-cart", [], "s3:GetObject",
                       f"arn:aws:s3:::{BUCKET}/lambda3/artifacts/a.zip")


def test_a_request_for_f_touches_nothing_else(desired):
    others = [lam("function:shop-orders"), lam("function:api"), BUILDER, f"{BUILDER}:1"]
    for resource in others:
        for action in WRITES:
            assert not request_may(desired, "shop-cart", ["shop-cart-dependencies"], action,
                                   resource)
    for layer in ("shop-orders-dependencies", f"{NAME}-toolchain", f"{NAME}-seed"):
        assert not request_may(desired, "shop-cart", ["shop-cart-dependencies"],
                               "lambda:PublishLayerVersion", lam(f"layer:{layer}"))
    assert not request_may(desired, "shop-cart", [], "s3:GetObject",
                           f"arn:aws:s3:::{BUCKET}/private/a.zip")
    assert not request_may(desired, "shop-cart", [], "s3:DeleteObject",
                           f"arn:aws:s3:::{BUCKET}/lambda3/artifacts/a.zip")


@pytest.mark.parametrize("action", SETTINGS)
def test_a_request_for_f_manages_fs_url_provisioned_concurrency_and_recursion(desired, action):
    f = lam("function:shop-cart")
    for resource in (f, f"{f}:live", f"{f}:7"):
        assert request_may(desired, "shop-cart", [], action, resource)
    for resource in (lam("function:shop-orders"), lam("function:shop-orders:live"),
                     lam("function:api"), BUILDER, f"{BUILDER}:live"):
        assert not request_may(desired, "shop-cart", [], action, resource)


def test_a_request_for_f_makes_only_fs_url_public(desired):
    f = lam("function:shop-cart")
    for context in PUBLIC_URL:
        assert request_may(desired, "shop-cart", [], "lambda:AddPermission", f, context)
        assert request_may(desired, "shop-cart", [], "lambda:AddPermission", f"{f}:live",
                           context)
        for other in (lam("function:shop-orders"), BUILDER, f"{BUILDER}:live"):
            assert not request_may(desired, "shop-cart", [], "lambda:AddPermission", other,
                                   context)
    for context in ({"lambda:Principal": "*"},
                    {"lambda:Principal": "123456789012", "lambda:FunctionUrlAuthType": "NONE"},
                    {"lambda:Principal": "*", "lambda:FunctionUrlAuthType": "AWS_IAM"},
                    {"lambda:Principal": "sns.amazonaws.com"}):
        assert not request_may(desired, "shop-cart", [], "lambda:AddPermission", f, context)


def test_a_request_checks_vpcs_and_uses_keys_only_through_lambda(desired):
    for action in ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"):
        assert request_may(desired, "shop-cart", [], action, "*")
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"):
        assert request_may(desired, "shop-cart", [], action, KEY, VIA_LAMBDA)
        assert not request_may(desired, "shop-cart", [], action, KEY)
        assert not request_may(desired, "shop-cart", [], action, KEY,
                               {"kms:ViaService": f"s3.{WHERE.region}.amazonaws.com"})
    for action in ("ec2:CreateNetworkInterface", "ec2:AuthorizeSecurityGroupIngress",
                   "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "sqs:SendMessage",
                   "sns:Publish"):
        assert not request_may(desired, "shop-cart", [], action, "*", VIA_LAMBDA)


def test_a_request_naming_the_builders_layers_still_cannot_publish_them(desired):
    layer = f"{NAME}-toolchain"
    assert not request_may(desired, "shop-cart", [layer], "lambda:PublishLayerVersion",
                           lam(f"layer:{layer}"))


def test_a_request_outside_the_allow_list_gets_nothing():
    shop = documents(("shop-*",), pass_roles=("shop-*",))
    assert not request_may(shop, "payroll", ["payroll-dependencies"],
                           "lambda:UpdateFunctionCode", lam("function:payroll"))
    assert not request_may(shop, "payroll", ["payroll-dependencies"],
                           "lambda:PublishLayerVersion", lam("layer:payroll-dependencies"))


def test_the_deploy_role_passes_only_pass_role_roles_to_lambda_only(desired):
    to_lambda = {"iam:PassedToService": "lambda.amazonaws.com"}
    app = WHERE.role_arn("shop-app")
    assert request_may(desired, "shop-cart", [], "iam:PassRole", app, to_lambda, pass_role=app)
    assert not request_may(desired, "shop-cart", [], "iam:PassRole", app,
                           {"iam:PassedToService": "ec2.amazonaws.com"}, pass_role=app)
    for role in ("admin", f"{NAME}-role", f"{NAME}-deploy"):
        arn = WHERE.role_arn(role)
        assert not request_may(desired, "shop-cart", [], "iam:PassRole", arn, to_lambda,
                               pass_role=arn)
    without = documents(("*",))
    assert not request_may(without, "shop-cart", [], "iam:PassRole", app, to_lambda,
                           pass_role=app)
    assert not request_may(without, "shop-cart", [], "lambda:CreateFunction",
                           lam("function:shop-cart"))


# -- one real denial: moto's server with IAM authorization on ---------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def authorizing_moto(tmp_path: Path):
    """A moto server of its own (authorization is process-wide in moto), switched to
    checking every request's credentials once the test has set up the account."""
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                               "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "moto.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)

        def authorize() -> None:
            urllib.request.urlopen(urllib.request.Request(  # noqa: S310
                f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                headers={"Content-Type": "text/plain"}), timeout=5)

        yield url, authorize
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_moto_refuses_the_builder_role_what_its_policy_does_not_grant(authorizing_moto):
    """moto authorizes STS, IAM and S3 calls by policy in server mode (Lambda calls fail its
    signature check once authorization is on, so they are left to the evaluator)."""
    url, authorize = authorizing_moto
    region = "us-east-1"

    def client(service, **credentials):
        return boto3.client(service, region_name=region, endpoint_url=url, **credentials)

    where = Account(client("sts").get_caller_identity()["Account"], region)
    desired = make_desired(BootstrapConfig(name=NAME, allow=("*",)), where,
                           BuilderCode("builder.zip", "sha"))
    anyone = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    may_assume_admin = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": where.role_arn("admin")}]}
    iam = client("iam")
    iam.create_role(RoleName="admin", AssumeRolePolicyDocument=json.dumps(anyone))
    stolen = _role_credentials(client, desired.role.name, desired.role.policy, anyone)
    control = _role_credentials(client, "control", may_assume_admin, anyone)
    client("s3").create_bucket(Bucket=desired.bucket)
    authorize()

    client("sts", **control).assume_role(RoleArn=where.role_arn("admin"), RoleSessionName="ok")
    refusals = [
        lambda: client("sts", **stolen).assume_role(RoleArn=where.role_arn("admin"),
                                                    RoleSessionName="escalate"),
        lambda: client("iam", **stolen).put_role_policy(
            RoleName=desired.role.name, PolicyName="more", PolicyDocument=json.dumps(anyone)),
        lambda: client("iam", **stolen).update_assume_role_policy(
            RoleName="admin", PolicyDocument=json.dumps(anyone)),
        lambda: client("s3", **stolen).put_object(Bucket=desired.bucket, Key="other/x",
                                                  Body=b"x"),
    ]
    client("s3", **stolen).put_object(Bucket=desired.bucket, Key="lambda3/x", Body=b"x")
    for call in refusals:
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] in ("AccessDenied", "403")


def _role_credentials(client, name, policy, trust) -> dict:
    """Credentials of role `name` (created with `policy`), assumed before authorization."""
    arn = client("iam").create_role(RoleName=name,
                                    AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    client("iam").put_role_policy(RoleName=name, PolicyName="lambda3",
                                  PolicyDocument=json.dumps(policy))
    found = client("sts").assume_role(RoleArn=arn, RoleSessionName=name[:64])["Credentials"]
    return {"aws_access_key_id": found["AccessKeyId"],
            "aws_secret_access_key": found["SecretAccessKey"],
            "aws_session_token": found["SessionToken"]}
