"""Executing a bootstrap plan: each step one AWS call (a function change also waits until
Lambda has applied it). A failure stops the run with an error naming the step; re-running
bootstrap continues from what exists, since the next plan is made from the account again.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable

from bootstrap.plan import (
    POLICY_NAME,
    AddOidcClientId,
    BlockPublicAccess,
    CreateBucket,
    CreateFunction,
    CreateOidcProvider,
    CreateRole,
    EncryptBucket,
    Plan,
    PutRolePolicy,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UpdateTrustPolicy,
    function_settings,
)
from builder.aws import Aws
from builder.errors import Lambda3Error
from builder.steps import run_steps

log = logging.getLogger(__name__)
# A trust policy naming a role IAM has just created is refused for a few seconds.
_PRINCIPAL_NOT_READY = "invalid principal"
PRINCIPAL_ATTEMPTS = 6
FUNCTION_DESCRIPTION = "lambda3 builder: builds and deploys Python functions from git"


class Executor:
    def __init__(self, aws: Aws, *, on_step: Callable[[str], None] | None = None) -> None:
        self.aws = aws
        self.on_step = on_step or log.info

    def run(self, plan: Plan) -> None:
        handlers = {
            CreateRole: self._role, UpdateTrustPolicy: self._role, PutRolePolicy: self._role,
            CreateBucket: self._bucket, BlockPublicAccess: self._bucket,
            EncryptBucket: self._bucket, CreateFunction: self._create_function,
            UpdateFunctionConfiguration: self._update_configuration,
            UpdateFunctionCode: self._update_code, CreateOidcProvider: self._provider,
            AddOidcClientId: self._provider,
        }
        run_steps(plan.steps, handlers, label="bootstrap", on_step=self.on_step,
                  after=lambda error: "; re-run to continue")

    def _update_configuration(self, step: UpdateFunctionConfiguration) -> None:
        settings = dict(step.settings)
        if "Layers" in settings:
            settings["Layers"] = list(settings["Layers"])
        self.aws.update_function_configuration(FunctionName=step.function, **settings)
        self.aws.wait_until_updated(step.function)

    def _update_code(self, step: UpdateFunctionCode) -> None:
        extra = {"Architectures": [step.architecture]} if step.architecture else {}
        with open(step.code.path, "rb") as handle:
            self.aws.update_function_code(FunctionName=step.function, ZipFile=handle.read(),
                                          **extra)
        self.aws.wait_until_updated(step.function)

    def _role(self, step: CreateRole | UpdateTrustPolicy | PutRolePolicy) -> None:
        role = step.role
        if isinstance(step, CreateRole):
            self._trust_call("create_role", RoleName=role.name,
                             AssumeRolePolicyDocument=json.dumps(role.trust),
                             Description=role.description)
        elif isinstance(step, UpdateTrustPolicy):
            self._trust_call("update_assume_role_policy", RoleName=role.name,
                             PolicyDocument=json.dumps(role.trust))
        else:
            self.aws.call("iam", "put_role_policy", RoleName=role.name, PolicyName=POLICY_NAME,
                          PolicyDocument=json.dumps(role.policy))

    def _trust_call(self, method: str, **kwargs) -> None:
        """An IAM call with a trust policy, retried while a role it names is too new."""
        for attempt in range(1, PRINCIPAL_ATTEMPTS + 1):
            try:
                self.aws.call("iam", method, **kwargs)
                return
            except Lambda3Error as error:
                not_ready = getattr(error, "code", None) == "MalformedPolicyDocument" and \
                    _PRINCIPAL_NOT_READY in error.message.lower()
                if not not_ready or attempt == PRINCIPAL_ATTEMPTS:
                    raise
            log.info("IAM does not know the role the trust policy names yet; waiting")
            self.aws.sleep(2.0 * attempt)

    def _bucket(self, step: CreateBucket | BlockPublicAccess | EncryptBucket) -> None:
        if isinstance(step, CreateBucket):
            region = self.aws.region
            where = {} if region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            self.aws.call("s3", "create_bucket", Bucket=step.bucket, **where)
        elif isinstance(step, BlockPublicAccess):
            self.aws.call("s3", "put_public_access_block", Bucket=step.bucket,
                          PublicAccessBlockConfiguration={
                              "BlockPublicAcls": True, "IgnorePublicAcls": True,
                              "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        else:
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            self.aws.call("s3", "put_bucket_encryption", Bucket=step.bucket,
                          ServerSideEncryptionConfiguration={"Rules": [rule]})

    def _create_function(self, step: CreateFunction) -> None:
        spec = step.function
        with open(spec.code.path, "rb") as handle:
            code = handle.read()
        # retried while IAM has not yet propagated the role just created
        self.aws.create_function(FunctionName=spec.name, Code={"ZipFile": code},
                                 PackageType="Zip", Architectures=[spec.architecture],
                                 Description=FUNCTION_DESCRIPTION,
                                 **function_settings(spec, step.role_arn))
        self.aws.wait_until_updated(spec.name)

    def _provider(self, step: CreateOidcProvider | AddOidcClientId) -> None:
        if isinstance(step, CreateOidcProvider):
            self.aws.call("iam", "create_open_id_connect_provider", Url=step.url,
                          ClientIDList=[step.client_id], ThumbprintList=list(step.thumbprints))
        else:
            self.aws.call("iam", "add_client_id_to_open_id_connect_provider",
                          OpenIDConnectProviderArn=step.provider_arn, ClientID=step.client_id)
