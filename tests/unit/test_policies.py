"""Bootstrap's IAM documents and its decisions (what to create, update or leave alone)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bootstrap.config import BootstrapConfig, make_desired
from bootstrap.github import workflow_snippet
from bootstrap.plan import (
    BlockPublicAccess,
    BucketState,
    BuilderCode,
    CreateBucket,
    CreateFunction,
    CreateOidcProvider,
    CreateRole,
    EncryptBucket,
    ProviderState,
    PutRolePolicy,
    RoleState,
    State,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UpdateTrustPolicy,
    canonical,
    function_settings,
    make_plan,
    resource_changes,
)
from bootstrap.policies import (
    Account,
    PolicyError,
    builder_policy,
    check_github,
    check_patterns,
    deploy_role_name,
    deploy_role_policy,
    function_arns,
    github_trust_policy,
    lambda_trust_policy,
    layer_arns,
    scoped_role_name,
    scoped_role_policy,
    scoped_role_trust_policy,
)
from bootstrap.toolchain import ToolchainError, ensure_toolchain, missing_tools, usable_installers
from builder.aws import FunctionState
from builder.contract import CONTRACT, BuilderInfo, BuildResult, ToolchainResult
from builder.runtimes import make_target
from builder.scope import FUNCTION_ACTIONS, KMS_ACTIONS, VPC_ACTIONS
from tests.policy_eval import allowed as evaluated

WHERE = Account("123456789012", "eu-west-1")
PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
CODE = BuilderCode("/tmp/builder.zip", "c29tZXNoYQ==")


def statements(document):
    return {s["Sid"]: s for s in document["Statement"]}


def allowed(document, action: str, arn: str, context=None) -> bool:
    return evaluated([document], action, arn, context)


FN = "arn:aws:lambda:eu-west-1:123456789012:function:"
# what a public function URL's two AddPermission calls carry (lambda:InvokeFunctionUrl with
# FunctionUrlAuthType NONE; lambda:InvokeFunction with InvokedViaFunctionUrl)
PUBLIC_URL = {"lambda:Principal": "*", "lambda:FunctionUrlAuthType": "NONE"}
PUBLIC_URL_INVOKE = {"lambda:Principal": "*", "lambda:InvokedViaFunctionUrl": True}
SETTINGS_ACTIONS = ("lambda:GetFunctionUrlConfig", "lambda:CreateFunctionUrlConfig",
                    "lambda:UpdateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig",
                    "lambda:GetPolicy", "lambda:RemovePermission",
                    "lambda:GetProvisionedConcurrencyConfig",
                    "lambda:PutProvisionedConcurrencyConfig",
                    "lambda:DeleteProvisionedConcurrencyConfig",
                    "lambda:GetFunctionRecursionConfig", "lambda:PutFunctionRecursionConfig")


# -- the builder role ----------------------------------------------------------------------
def test_the_builder_role_is_for_lambda_only():
    (statement,) = lambda_trust_policy()["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_allow_patterns_become_function_arns_with_their_qualifiers():
    assert function_arns(WHERE, ["app-*", "api"]) == [
        "arn:aws:lambda:eu-west-1:123456789012:function:app-*",
        "arn:aws:lambda:eu-west-1:123456789012:function:app-*:*",
        "arn:aws:lambda:eu-west-1:123456789012:function:api",
        "arn:aws:lambda:eu-west-1:123456789012:function:api:*",
    ]


def test_layers_follow_the_function_names():
    assert layer_arns(WHERE, ["app-*"]) == ["arn:aws:lambda:eu-west-1:123456789012:layer:app-*-*"]
    assert layer_arns(WHERE, ["*"]) == ["arn:aws:lambda:eu-west-1:123456789012:layer:*"]


def test_the_deploy_role_reaches_allowed_functions_only():
    policy = scoped_role_policy(WHERE, "lambda3-builder", "art", ["app-*"])
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:"
    for action in ("lambda:UpdateFunctionCode", "lambda:PublishVersion", "lambda:UpdateAlias",
                   "lambda:GetFunctionConfiguration", "lambda:ListVersionsByFunction"):
        assert allowed(policy, action, arn + "app-orders")
        assert allowed(policy, action, arn + "app-orders:live")
        assert not allowed(policy, action, arn + "billing")
    assert allowed(policy, "lambda:PublishLayerVersion",
                   "arn:aws:lambda:eu-west-1:123456789012:layer:app-orders-dependencies")
    assert not allowed(policy, "lambda:PublishLayerVersion",
                       "arn:aws:lambda:eu-west-1:123456789012:layer:billing-dependencies")


def test_the_deploy_role_never_touches_the_builder_or_its_layers():
    policy = scoped_role_policy(WHERE, "b", "art", ["*"])
    own = "arn:aws:lambda:eu-west-1:123456789012:function:b"
    assert not allowed(policy, "lambda:UpdateFunctionCode", own)  # denied even with *
    assert not allowed(policy, "lambda:UpdateFunctionConfiguration", own + ":live")
    assert not allowed(policy, "lambda:PublishLayerVersion",
                       "arn:aws:lambda:eu-west-1:123456789012:layer:b-toolchain")
    assert allowed(policy, "lambda:PublishLayerVersion",
                   "arn:aws:lambda:eu-west-1:123456789012:layer:b-x-dependencies")
    assert allowed(policy, "s3:GetObject", "arn:aws:s3:::art/lambda3/artifacts/x.zip")


@pytest.mark.parametrize("action", SETTINGS_ACTIONS)
def test_the_deploy_role_manages_urls_provisioned_concurrency_and_recursion(action):
    assert action in FUNCTION_ACTIONS
    policy = scoped_role_policy(WHERE, "b", "art", ["app-*"])
    for target in ("app-orders", "app-orders:live", "app-orders:7"):
        assert allowed(policy, action, FN + target)
    for other in ("billing", "billing:live", "b", "b:live"):
        assert not allowed(policy, action, FN + other)
    everything = scoped_role_policy(WHERE, "b", "art", ["*"])
    assert allowed(everything, action, FN + "billing:live")
    assert not allowed(everything, action, FN + "b")  # the builder, even with *
    assert not allowed(everything, action, FN + "b:live")


def test_add_permission_only_makes_a_function_url_public():
    policy = scoped_role_policy(WHERE, "b", "art", ["*"])
    for target in ("app-orders", "app-orders:live"):
        assert allowed(policy, "lambda:AddPermission", FN + target, PUBLIC_URL)
        assert allowed(policy, "lambda:AddPermission", FN + target, PUBLIC_URL_INVOKE)
        assert allowed(policy, "lambda:AddPermission", FN + target,
                       {**PUBLIC_URL_INVOKE, "lambda:InvokedViaFunctionUrl": "true"})
    refused = [
        {},  # no principal, no URL
        {"lambda:Principal": "*"},  # public, but not through the URL
        {"lambda:Principal": "*", "lambda:FunctionUrlAuthType": "AWS_IAM"},
        {"lambda:Principal": "*", "lambda:InvokedViaFunctionUrl": False},
        {"lambda:Principal": "210987654321", "lambda:FunctionUrlAuthType": "NONE"},
        {"lambda:Principal": "s3.amazonaws.com", "lambda:InvokedViaFunctionUrl": True},
        {"lambda:Principal": "arn:aws:iam::210987654321:root",
         "lambda:FunctionUrlAuthType": "NONE"},
    ]
    for context in refused:
        assert not allowed(policy, "lambda:AddPermission", FN + "app-orders", context), context
    for builder in ("b", "b:live"):
        assert not allowed(policy, "lambda:AddPermission", FN + builder, PUBLIC_URL)
    narrow = scoped_role_policy(WHERE, "b", "art", ["app-*"])
    assert not allowed(narrow, "lambda:AddPermission", FN + "billing", PUBLIC_URL)


def test_the_deploy_role_checks_vpcs_and_uses_keys_only_through_lambda():
    policy = scoped_role_policy(WHERE, "b", "art", ["app-*"])
    for action in VPC_ACTIONS:
        assert allowed(policy, action, "*")
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    via_lambda = {"kms:ViaService": "lambda.eu-west-1.amazonaws.com"}
    for action in KMS_ACTIONS:
        assert allowed(policy, action, key, via_lambda)
        assert not allowed(policy, action, key)  # called directly
        assert not allowed(policy, action, key, {"kms:ViaService": "s3.eu-west-1.amazonaws.com"})
        assert not allowed(policy, action, key,
                           {"kms:ViaService": "lambda.us-east-1.amazonaws.com"})
        assert not allowed(policy, action, key.replace("eu-west-1", "us-east-1"),
                           {"kms:ViaService": "lambda.us-east-1.amazonaws.com"})
    for action in ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:GenerateDataKey",
                   "ec2:CreateNetworkInterface", "sqs:SendMessage", "sns:Publish"):
        assert not allowed(policy, action, "*", via_lambda)
        assert not allowed(policy, action, key, via_lambda)


def test_the_deploy_role_trusts_the_builder_role_only():
    (statement,) = scoped_role_trust_policy(WHERE, "b")["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/b-role"}
    assert statement["Action"] == "sts:AssumeRole"


def test_builder_policy_own_logs_bucket_prefix_toolchain_and_deploy_role():
    policy = builder_policy(WHERE, "b", "art")
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/b"
    assert allowed(policy, "logs:PutLogEvents", group + ":log-stream:x")
    assert not allowed(policy, "logs:PutLogEvents",
                       "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/other:x")
    assert allowed(policy, "s3:PutObject", "arn:aws:s3:::art/lambda3/artifacts/x.zip")
    assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::art/elsewhere")
    assert allowed(policy, "s3:ListBucket", "arn:aws:s3:::art")
    own = "arn:aws:lambda:eu-west-1:123456789012:function:b"
    assert allowed(policy, "lambda:GetFunctionConfiguration", own)
    assert not allowed(policy, "lambda:UpdateFunctionConfiguration", own)
    assert not allowed(policy, "lambda:UpdateFunctionCode", own)
    assert allowed(policy, "lambda:PublishLayerVersion",
                   "arn:aws:lambda:eu-west-1:123456789012:layer:b-toolchain")
    assert allowed(policy, "sts:AssumeRole", "arn:aws:iam::123456789012:role/b-deploy")
    assert not allowed(policy, "sts:AssumeRole", "arn:aws:iam::123456789012:role/other")


def test_creating_functions_needs_pass_role_patterns():
    without = scoped_role_policy(WHERE, "b", "art", ["*"])
    assert "lambda:CreateFunction" not in statements(without)["TargetFunctions"]["Action"]
    assert not any("iam:PassRole" in s["Action"] for s in without["Statement"])
    with_roles = scoped_role_policy(WHERE, "b", "art", ["*"], pass_roles=["app-*"])
    found = statements(with_roles)
    assert "lambda:CreateFunction" in found["TargetFunctions"]["Action"]
    assert found["PassFunctionRoles"]["Resource"] == ["arn:aws:iam::123456789012:role/app-*"]
    assert found["PassFunctionRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert not allowed(with_roles, "iam:PassRole", "arn:aws:iam::123456789012:role/b-role")
    assert not allowed(with_roles, "iam:PassRole", "arn:aws:iam::123456789012:role/b-deploy")
    assert not any("iam:PassRole" in s.get("Action", [])
                   for s in builder_policy(WHERE, "b", "art")["Statement"])


def test_role_names_fit_iam():
    assert scoped_role_name("lambda3-builder") == "lambda3-builder-deploy"
    assert len(scoped_role_name("b" * 59)) == 64


def test_a_policy_over_the_iam_limit_is_refused():
    patterns = [f"function-number-{i}" for i in range(100)]
    with pytest.raises(PolicyError, match="over IAM's 10240"):
        scoped_role_policy(WHERE, "b", "art", patterns)


def test_patterns_are_checked():
    assert check_patterns(["a-*", "a-*", "b"]) == ("a-*", "b")
    for bad in (["arn:aws:lambda:*"], ["a[bc]"], [""], []):
        with pytest.raises(PolicyError):
            check_patterns(bad)


# -- GitHub --------------------------------------------------------------------------------
def test_github_trust_is_exact_on_audience_and_subject():
    (statement,) = github_trust_policy(PROVIDER, "acme/shop", "ref:refs/heads/main")["Statement"]
    assert statement["Principal"] == {"Federated": PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {
            "token.actions.githubusercontent.com:sub": "repo:acme/shop:ref:refs/heads/main"},
    }
    (any_ref,) = github_trust_policy(PROVIDER, "acme/shop")["Statement"]
    assert any_ref["Condition"]["StringLike"] == {
        "token.actions.githubusercontent.com:sub": "repo:acme/shop:*"}


def test_deploy_role_may_only_invoke_the_builder_and_read_its_log():
    policy = deploy_role_policy(WHERE, "lambda3-builder")
    builder = "arn:aws:lambda:eu-west-1:123456789012:function:lambda3-builder"
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/lambda3-builder"
    assert allowed(policy, "lambda:InvokeFunction", builder)
    assert not allowed(policy, "lambda:InvokeFunction", builder.replace("lambda3-builder", "x"))
    assert not allowed(policy, "lambda:UpdateFunctionCode", builder)
    for action in ("logs:FilterLogEvents", "logs:GetLogEvents", "logs:DescribeLogStreams"):
        assert allowed(policy, action, group)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {"lambda:InvokeFunction", "logs:FilterLogEvents", "logs:GetLogEvents",
                       "logs:DescribeLogStreams"}


def test_deploy_role_names_are_valid_and_unique():
    assert deploy_role_name("lambda3-builder", "acme/shop") == "lambda3-builder-github-acme-shop"
    long_a = deploy_role_name("lambda3-builder", "some-organisation/" + "a" * 60)
    long_b = deploy_role_name("lambda3-builder", "some-organisation/" + "a" * 59 + "b")
    assert len(long_a) == 64 and len(long_b) == 64 and long_a != long_b
    assert deploy_role_name("b", "o/my.repo_x") == "b-github-o-my.repo_x"


def test_github_options_are_checked():
    check_github("acme/shop", "environment:prod")
    for repo, ref in (("acme", "*"), ("acme/shop", "ref:refs/heads/main\"}"),
                      ("a/b c", "*")):
        with pytest.raises(PolicyError):
            check_github(repo, ref)


def test_workflow_snippet_asks_for_an_id_token():
    text = workflow_snippet("arn:aws:iam::1:role/r", "eu-west-1", "lambda3-builder")
    assert "id-token: write" in text and "contents: read" in text
    assert "role-to-assume: arn:aws:iam::1:role/r" in text
    assert "aws-region: eu-west-1" in text
    assert "builder-function" not in text
    assert "builder-function: other" in workflow_snippet("r", "eu-west-1", "other")


# -- the plan ------------------------------------------------------------------------------
def desired(**options):
    return make_desired(BootstrapConfig(**options).validate(), WHERE, CODE)


def existing(want, **changes) -> State:
    """The state in which everything `want` describes exists already."""
    config = function_settings(want.function, want.role.arn)
    config = {**config, "Architectures": [want.function.architecture], **changes}
    function = FunctionState(want.function.name, "arn:fn", want.function.code.code_sha256,
                             None, (), config)
    role = RoleState(want.role.arn, json.loads(json.dumps(want.role.trust)),
                     {"lambda3": want.role.policy})
    github, scoped = want.github, want.scoped_role
    return State(
        role=role, bucket=BucketState(True, True), function=function,
        scoped_role=RoleState(scoped.arn, scoped.trust, {"lambda3": scoped.policy}),
        provider=ProviderState(github.provider_arn, ("sts.amazonaws.com",)) if github else None,
        deploy_role=RoleState(github.role.arn, github.role.trust,
                              {"lambda3": github.role.policy}) if github else None)


def test_an_empty_account_gets_everything():
    want = desired(github_repo="acme/shop")
    plan = make_plan(want, State())
    kinds = [type(step) for step in plan.steps]
    assert kinds == [CreateRole, PutRolePolicy, CreateRole, PutRolePolicy, CreateBucket,
                     BlockPublicAccess, EncryptBucket, CreateFunction, CreateOidcProvider,
                     CreateRole, PutRolePolicy]
    assert [s.role.kind for s in plan.steps[:4]] == ["role", "role", "scoped role", "scoped role"]
    assert plan.role_arn == "arn:aws:iam::123456789012:role/lambda3-builder-role"
    assert plan.scoped_role_arn == "arn:aws:iam::123456789012:role/lambda3-builder-deploy"
    assert plan.deploy_role_arn == ("arn:aws:iam::123456789012:role/"
                                    "lambda3-builder-github-acme-shop")
    assert {action for _, action in resource_changes(plan)} == {"created"}
    assert want.bucket == "lambda3-artifacts-123456789012-eu-west-1"
    assert want.function.environment == {
        "LAMBDA3_ALLOW": "*", "LAMBDA3_ALLOWED_HOSTS": "github.com",
        "LAMBDA3_BUCKET": "lambda3-artifacts-123456789012-eu-west-1",
        "LAMBDA3_DEPLOY_ROLE": "arn:aws:iam::123456789012:role/lambda3-builder-deploy"}


def test_an_up_to_date_account_gets_nothing():
    want = desired(github_repo="acme/shop", allow=("app-*", "api"))
    plan = make_plan(want, existing(want))
    assert plan.steps == ()
    assert {action for _, action in resource_changes(plan)} == {"unchanged"}


def test_changed_code_updates_only_the_code():
    want = desired()
    state = existing(want)
    moved = replace(state, function=FunctionState(
        "lambda3-builder", "arn:fn", "b2xkc2hh", None, (), state.function.config))
    plan = make_plan(want, moved)
    assert plan.steps == (UpdateFunctionCode("lambda3-builder", CODE, None),)


def test_changed_settings_update_only_those_and_keep_foreign_variables():
    want = desired(allow=("app-*",))
    state = existing(want, Timeout=60, Environment={"Variables": {
        **want.function.environment, "LAMBDA3_ALLOW": "*", "EXTRA": "1"}})
    (step,) = make_plan(want, state).steps
    assert isinstance(step, UpdateFunctionConfiguration)
    assert dict(step.settings) == {"Timeout": 900, "Environment": {"Variables": {
        **want.function.environment, "LAMBDA3_ALLOW": "app-*", "EXTRA": "1"}}}


def test_a_new_architecture_detaches_the_old_toolchain():
    want = desired(architecture="arm64")
    state = existing(want, Architectures=["x86_64"])
    function = FunctionState(want.function.name, "arn:fn", CODE.code_sha256, None,
                             ("arn:layer:1",), state.function.config)
    steps = make_plan(want, replace(state, function=function)).steps
    assert steps == (UpdateFunctionConfiguration("lambda3-builder", (("Layers", ()),)),
                     UpdateFunctionCode("lambda3-builder", CODE, "arm64"))


def test_a_builder_bootstrapped_before_the_deploy_role_is_moved_to_it():
    want = desired()
    variables = {k: v for k, v in want.function.environment.items()
                 if k != "LAMBDA3_DEPLOY_ROLE"}
    state = existing(want, Environment={"Variables": variables})
    old_policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "SelfConfiguration", "Effect": "Allow",
        "Action": ["lambda:UpdateFunctionConfiguration"], "Resource": ["arn:fn"]}]}
    before = replace(state, role=replace(state.role, policies={"lambda3": old_policy}),
                     scoped_role=None)
    steps = make_plan(want, before).steps
    assert steps[:3] == (PutRolePolicy(want.role), CreateRole(want.scoped_role),
                         PutRolePolicy(want.scoped_role))
    (update,) = steps[3:]
    assert dict(update.settings)["Environment"]["Variables"]["LAMBDA3_DEPLOY_ROLE"] == \
        want.scoped_role.arn


def test_policies_compare_by_meaning():
    want = desired()
    state = existing(want)
    as_aws_keeps_it = json.loads(json.dumps(want.role.trust).replace('"sts:AssumeRole"',
                                                                     '["sts:AssumeRole"]'))
    same = replace(state, role=RoleState(want.role.arn, as_aws_keeps_it, state.role.policies))
    assert make_plan(want, same).steps == ()
    assert canonical('{"a": ["x"]}') == canonical({"a": "x"})
    changed = replace(state, role=RoleState(want.role.arn, want.role.trust,
                                            {"lambda3": {"Statement": []}}))
    assert make_plan(want, changed).steps == (PutRolePolicy(want.role),)
    tampered = replace(state, role=RoleState(want.role.arn, {"Statement": []},
                                             state.role.policies))
    assert make_plan(want, tampered).steps == (UpdateTrustPolicy(want.role),)


def test_a_bucket_without_protection_gets_it():
    want = desired()
    state = existing(want)
    steps = make_plan(want, replace(state, bucket=BucketState(True, False))).steps
    assert steps == (EncryptBucket(want.bucket),)


# -- the toolchain decisions ---------------------------------------------------------------
@pytest.mark.parametrize("installers, usable", [
    ({"uv": "0.13.9", "pip": None}, ["uv"]),
    ({"uv": None, "pip": None}, []),
    (["pip"], ["pip"]),
    ({"uv": {"usable": False}, "pip": {"usable": True, "version": "24"}}, ["pip"]),
    (None, []),
])
def test_usable_installers(installers, usable):
    assert usable_installers(ping_answer(installers=installers)) == usable


def ping_answer(*, installers=None, toolchain=None) -> BuildResult:
    return BuildResult(ok=True, action="ping", builder=BuilderInfo(
        contract=CONTRACT, installers=installers, toolchain=toolchain or {}))


def test_missing_tools_compares_with_the_pins():
    pins = {"dulwich": "1.2.21", "PyYAML": "6.0.4"}
    ping = ping_answer(toolchain={"dulwich": "1.2.21", "PyYAML": "6.0.4", "uv": None})
    assert missing_tools(ping, pins) == []
    assert missing_tools(ping_answer(toolchain={"dulwich": "1.0", "PyYAML": None}), pins) == [
        "dulwich (has 1.0, wants 1.2.21)", "PyYAML (has none, wants 6.0.4)"]


class ScriptedBuilder:
    """Answers ping with the toolchain present and bootstrap from a script of results."""

    def __init__(self, *bootstrap_results):
        self.results = list(bootstrap_results)
        self.events = []

    def __call__(self, request):
        self.events.append(request.action)
        if request.action == "ping":
            return ping_answer(installers={"uv": "0.13.9"},
                               toolchain={"dulwich": "1.2.21", "PyYAML": "6.0.4"})
        return self.results.pop(0)


INSTALLED = BuildResult(ok=True, action="bootstrap", toolchain=ToolchainResult(
    layer_arn="arn:t:1", code_sha256="sha=", packages=("dulwich==1.2.21",)))
DENIED = BuildResult.from_json({"ok": False, "error": {
    "step": "apply", "message": "PublishLayerVersion failed: AccessDeniedException: no"}})
PINS = {"dulwich": "1.2.21", "PyYAML": "6.0.4"}


def toolchain(builder, retry=None):
    return ensure_toolchain(None, builder, "b", make_target("python3.12"), make_seed=None,
                            workdir=None, pins=PINS, retry_denied=retry)


def test_a_builder_with_an_installer_needs_no_seed():
    builder = ScriptedBuilder(INSTALLED)
    outcome = toolchain(builder)
    assert builder.events == ["ping", "bootstrap", "ping"]
    assert (outcome.seed_layer_arn, outcome.toolchain_action) == (None, "unchanged")


def test_a_refused_self_install_is_retried_once_after_a_policy_change():
    waits = []
    outcome = toolchain(ScriptedBuilder(DENIED, INSTALLED), retry=lambda: waits.append(1))
    assert waits == [1] and outcome.toolchain_layer_arn == "arn:t:1"
    with pytest.raises(ToolchainError, match="AccessDenied"):
        toolchain(ScriptedBuilder(DENIED, INSTALLED))  # no policy change: no retry
    with pytest.raises(ToolchainError, match="AccessDenied"):
        toolchain(ScriptedBuilder(DENIED, DENIED), retry=lambda: None)


def test_with_releases_the_deploy_role_drives_rollouts_but_never_touches_the_builder():
    policy = deploy_role_policy(WHERE, "lambda3-builder", ("app-*",))
    base = "arn:aws:lambda:eu-west-1:123456789012:function:"
    for action in ("lambda:UpdateAlias", "lambda:GetAlias", "lambda:DeleteFunction"):
        assert allowed(policy, action, base + "app-api:live")
        assert not allowed(policy, action, base + "lambda3-builder")
        assert not allowed(policy, action, base + "billing")
    assert allowed(policy, "lambda:InvokeFunction", base + "lambda3-builder")
    assert allowed(policy, "lambda:InvokeFunction", base + "app-api:7")  # pre-traffic checks
    assert allowed(policy, "cloudwatch:DescribeAlarms", "*")
    assert allowed(policy, "lambda:DeleteLayerVersion",
                   "arn:aws:lambda:eu-west-1:123456789012:layer:app-api-dependencies:3")
    assert not allowed(policy, "lambda:UpdateFunctionCode", base + "app-api")


def test_the_release_role_publishes_the_layers_a_promote_copies():
    layer = "arn:aws:lambda:eu-west-1:123456789012:layer:"
    policy = deploy_role_policy(WHERE, "lambda3-builder", ("app-*",))
    assert allowed(policy, "lambda:PublishLayerVersion", layer + "app-api-dependencies")
    assert allowed(policy, "lambda:GetLayerVersion", layer + "app-api-dependencies:3")
    assert allowed(policy, "lambda:ListLayerVersions", "*")  # no resource-level permissions
    assert not allowed(policy, "lambda:PublishLayerVersion", layer + "billing-dependencies")
    everything = deploy_role_policy(WHERE, "lambda3-builder", ("*",))
    assert allowed(everything, "lambda:PublishLayerVersion", layer + "billing-dependencies")
    for own in ("lambda3-builder-toolchain", "lambda3-builder-seed"):
        for action in ("lambda:PublishLayerVersion", "lambda:DeleteLayerVersion"):
            assert not allowed(everything, action, layer + own)
            assert not allowed(everything, action, layer + own + ":4")
    assert not any("lambda:PublishLayerVersion" in s["Action"]
                   for s in deploy_role_policy(WHERE, "lambda3-builder")["Statement"])


def test_every_action_bootstrap_grants_is_in_its_permissions_doc():
    text = (Path(__file__).parents[2] / "docs" / "bootstrap.md").read_text()
    documents = [builder_policy(WHERE, "b", "art", ["acme/pypi"]),
                 scoped_role_policy(WHERE, "b", "art", ["*"], pass_roles=["app-*"]),
                 deploy_role_policy(WHERE, "b", ("*",))]
    actions = {a for d in documents for s in d["Statement"]
               for a in s.get("Action", []) + s.get("NotAction", [])}
    missing = sorted(a for a in actions
                     if f"`{a}`" not in text and f"`{a.split(':', 1)[1]}`" not in text)
    assert missing == []
