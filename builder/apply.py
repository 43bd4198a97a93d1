"""Executing a plan: each step one AWS call (or a call and a wait), results passed forward.

The order is the plan's: layers are published first, the function's configuration and code
are updated and waited for, a version is published, and the alias moves last. Every call
that takes a precondition carries one: the RevisionId read at plan time until one of our
own calls changes the function, then the one that call produced. Lambda bumps RevisionId
once more when an update finishes, so after each wait the configuration read is compared
with what our call returned: the same code, layers and settings mean the new RevisionId is
ours to carry; anything else is another deploy's change (`ConcurrentChangeError`). A
failure stops the run with an error naming the step; the alias is then where it was.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.aws import Aws, ConcurrentChangeError, LayerVersion, config_fingerprint
from builder.errors import AwsError, Lambda3Error
from builder.plan import (
    URL_STATEMENTS,
    Code,
    CreateFunction,
    Plan,
    Published,
    PublishLayerVersion,
    PublishVersion,
    SetAlias,
    SetFunctionUrl,
    SetProvisionedConcurrency,
    SetRecursion,
    SetReservedConcurrency,
    TagFunction,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UploadArtifact,
)
from builder.steps import run_steps

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What applying produced, for the result."""

    layers: dict[str, LayerVersion] = field(default_factory=dict)  # component -> published
    function_arn: str | None = None
    version: str | None = None
    revision_id: str | None = None  # the function's, as our last call left it
    code_sha256: str | None = None
    changed_function: bool = False  # one of our calls changed it: carry revision_id forward
    plan: Plan | None = None  # the plan applied (after a re-plan, the second one)
    function_url: str | None = None  # the URL a SetFunctionUrl created or updated


class Executor:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def run(self, plan: Plan, applied: Applied | None = None) -> Applied:
        applied = Applied() if applied is None else applied
        applied.plan, applied.version = plan, plan.version
        handlers = {
            UploadArtifact: lambda s: self.aws.upload_file(s.path, s.bucket, s.key),
            PublishLayerVersion: lambda s: self._publish_layer(s, applied),
            CreateFunction: lambda s: self._create_function(s, applied),
            UpdateFunctionConfiguration: lambda s: self._update_configuration(s, applied),
            UpdateFunctionCode: lambda s: self._update_code(s, applied),
            PublishVersion: lambda s: self._publish_version(s, applied),
            SetAlias: lambda s: self._set_alias(s, applied),
            TagFunction: lambda s: self._tag(s, applied),
            SetReservedConcurrency: lambda s: self.aws.call(
                "lambda", "put_function_concurrency", idempotent=True, FunctionName=s.function,
                ReservedConcurrentExecutions=s.reserved),
            SetRecursion: lambda s: self.aws.call(
                "lambda", "put_function_recursion_config", idempotent=True,
                FunctionName=s.function, RecursiveLoop=s.loop),
            SetProvisionedConcurrency: self._provisioned,
            SetFunctionUrl: lambda s: self._function_url(s, applied),
        }
        run_steps(plan.steps, handlers, label="apply", on_step=log.info, after=_after_failure)
        return applied

    def _tag(self, step: TagFunction, applied: Applied) -> None:
        arn = step.arn or applied.function_arn
        if step.set:
            self.aws.call("lambda", "tag_resource", idempotent=True, Resource=arn,
                          Tags=dict(step.set))
        if step.remove:
            self.aws.call("lambda", "untag_resource", idempotent=True, Resource=arn,
                          TagKeys=list(step.remove))

    def _provisioned(self, step: SetProvisionedConcurrency) -> None:
        where = {"FunctionName": step.function, "Qualifier": step.alias}
        if step.put and step.wanted == 0:
            self.aws.call("lambda", "delete_provisioned_concurrency_config", idempotent=True,
                          **where)
            return
        if step.put:
            self.aws.call("lambda", "put_provisioned_concurrency_config", idempotent=True,
                          ProvisionedConcurrentExecutions=step.wanted, **where)
        found = self.aws.wait_provisioned_ready(step.function, step.alias)
        log.info("provisioned concurrency of %s:%s READY (%s available)", step.function,
                 step.alias, found.get("AvailableProvisionedConcurrentExecutions"))

    def _function_url(self, step: SetFunctionUrl, applied: Applied) -> None:
        where = {"FunctionName": step.function,
                 **({"Qualifier": step.qualifier} if step.qualifier else {})}
        for sid in step.remove_statements:
            self.aws.maybe("lambda", "remove_permission", StatementId=sid, **where)
        if step.remove:
            if step.exists:
                self.aws.maybe("lambda", "delete_function_url_config", **where)
            return
        if not step.exists:
            found = self.aws.call("lambda", "create_function_url_config", idempotent=False,
                                  **dict(step.config), **where)
        elif step.config:
            found = self.aws.call("lambda", "update_function_url_config", idempotent=True,
                                  **dict(step.config), **where)
        else:
            found = {}
        for sid in step.add_statements:
            self.aws.call("lambda", "add_permission", idempotent=False, StatementId=sid,
                          Principal="*", **_public_statement(sid), **where)
        applied.function_url = found.get("FunctionUrl") or applied.function_url
        if found.get("FunctionUrl"):
            log.info("function URL %s", found["FunctionUrl"])

    def _publish_layer(self, step: PublishLayerVersion, applied: Applied) -> None:
        layer = step.layer
        kwargs: dict[str, Any] = {"LayerName": layer.layer_name, "Content": _content(layer.code)}
        if layer.description:
            kwargs["Description"] = layer.description[:256]
        if layer.runtimes:
            kwargs["CompatibleRuntimes"] = list(layer.runtimes)
        if layer.architectures:
            kwargs["CompatibleArchitectures"] = list(layer.architectures)
        if layer.license:
            kwargs["LicenseInfo"] = layer.license[:512]
        published = self.aws.publish_layer_version(code_sha256=layer.code.code_sha256,
                                                   **kwargs)
        log.info("published %s", published.arn)
        applied.layers[layer.code.component] = published

    def _layer_arns(self, refs, applied: Applied) -> list[str]:
        return [applied.layers[r.component].arn if isinstance(r, Published) else r for r in refs]

    def _create_function(self, step: CreateFunction, applied: Applied) -> None:
        kwargs = {key: _setting(key, value) for key, value in step.settings}
        kwargs.update(FunctionName=step.function, Code=_content(step.code, function=True),
                      Architectures=[step.architecture], Publish=False,
                      Layers=self._layer_arns(step.layers, applied))
        self._settled(step.function, self.aws.create_function(**kwargs), applied)

    def _update_configuration(self, step: UpdateFunctionConfiguration, applied: Applied) -> None:
        kwargs = {key: _setting(key, value) for key, value in step.settings}
        if step.layers is not None:
            kwargs["Layers"] = self._layer_arns(step.layers, applied)
        kwargs.update(_revision(_current_revision(step.revision_id, applied)))
        result = self.aws.update_function_configuration(FunctionName=step.function, **kwargs)
        self._settled(step.function, result, applied)

    def _update_code(self, step: UpdateFunctionCode, applied: Applied) -> None:
        kwargs = {"FunctionName": step.function, "Publish": False,
                  **_content(step.code, function=True),
                  **_revision(_current_revision(step.revision_id, applied))}
        if step.architecture:
            kwargs["Architectures"] = [step.architecture]
        config = self._settled(step.function, self.aws.update_function_code(**kwargs), applied)
        if config.get("CodeSha256") != step.code.code_sha256:
            raise AwsError(f"the function's code is {config.get('CodeSha256')}, expected "
                           f"{step.code.code_sha256}: the uploaded zip is not the one built",
                           code="CodeMismatch")

    def _settled(self, function: str, response: Mapping[str, Any],
                 applied: Applied) -> Mapping[str, Any]:
        """Wait for our change to finish; what we then read must be what we made."""
        config = self.aws.wait_until_updated(function)
        ours = response.get("RevisionId")
        if config.get("RevisionId") != ours and (config_fingerprint(config)
                                                 != config_fingerprint(response)):
            raise ConcurrentChangeError(function, "its code or configuration changed while "
                                                  "our update was being applied")
        applied.function_arn = response.get("FunctionArn") or applied.function_arn
        applied.revision_id = config.get("RevisionId")
        applied.code_sha256 = config.get("CodeSha256")
        applied.changed_function = True
        return config

    def _publish_version(self, step: PublishVersion, applied: Applied) -> None:
        kwargs = {"FunctionName": step.function, "CodeSha256": step.code_sha256,
                  "Description": step.description[:256],
                  **_revision(_current_revision(step.revision_id, applied))}
        result = self.aws.publish_version(**kwargs)
        applied.version = result["Version"]
        log.info("published version %s", applied.version)
        if step.wait_active:
            self.aws.wait_version_active(step.function, applied.version)

    def _set_alias(self, step: SetAlias, applied: Applied) -> None:
        version = step.version or applied.version
        if version is None:
            raise AwsError("no version to point the alias at")
        self.aws.set_alias(step.function, step.alias, version, exists=step.exists,
                           revision_id=step.revision_id, weights=step.weights)
        log.info("alias %s -> version %s", step.alias, version)


def _public_statement(sid: str) -> dict[str, Any]:
    """The two statements that make an auth-NONE function URL public (Lambda, since
    October 2025: lambda:InvokeFunctionUrl and lambda:InvokeFunction)."""
    if sid == URL_STATEMENTS[0]:
        return {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"}
    return {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True}


_AFTER_ALIAS = (":TagFunction", ":SetReservedConcurrency", ":SetRecursion",
                ":SetProvisionedConcurrency", ":SetFunctionUrl")


def _after_failure(error: Lambda3Error) -> str:
    again = "" if "re-run" in error.message else ", re-run to continue"
    if error.step.endswith(_AFTER_ALIAS):  # after the alias
        return f"; the version and the alias are deployed{again}"
    return f"; the alias was not moved{again}"


def _current_revision(planned: str | None, applied: Applied) -> str | None:
    return applied.revision_id if applied.changed_function else planned


def _revision(revision_id: str | None) -> dict[str, str]:
    return {"RevisionId": revision_id} if revision_id else {}


def _content(code: Code, *, function: bool = False) -> dict[str, Any]:
    if code.bucket:
        return {"S3Bucket": code.bucket, "S3Key": code.key}
    return {"ZipFile": Path(code.path).read_bytes()}


def _setting(key: str, value: Any) -> Any:
    if key == "Environment":
        return {"Variables": dict(value)}
    if key == "SnapStart":
        return {"ApplyOn": value}
    if key == "EphemeralStorage":
        return {"Size": value}
    if key == "TracingConfig":
        return {"Mode": value}
    if key == "DeadLetterConfig":
        return {"TargetArn": value}
    if key in ("LoggingConfig", "VpcConfig"):
        return dict(value)
    return value
