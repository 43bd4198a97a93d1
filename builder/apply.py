"""Executing a plan: each step one AWS call (or a call and a wait), results passed forward.

The order is the plan's: layers are published first, the function's configuration and code
are updated and waited for, a version is published with the CodeSha256 and RevisionId just
read (so a concurrent deploy cannot slip in between), and the alias moves last. A failure
stops the run with an error naming the step; the alias is then where it was.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.aws import Aws, LayerVersion
from builder.errors import AwsError, Lambda3Error
from builder.plan import (
    Code,
    CreateFunction,
    Plan,
    Published,
    PublishLayerVersion,
    PublishVersion,
    SetAlias,
    Step,
    UpdateFunctionCode,
    UpdateFunctionConfiguration,
    UploadArtifact,
    describe_step,
)

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What applying produced, for the result."""

    layers: dict[str, LayerVersion] = field(default_factory=dict)  # component -> published
    function_arn: str | None = None
    version: str | None = None
    revision_id: str | None = None
    code_sha256: str | None = None


class Executor:
    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def run(self, plan: Plan) -> Applied:
        applied = Applied(version=plan.version)
        for number, step in enumerate(plan.steps, 1):
            log.info("apply %d/%d: %s", number, len(plan.steps), describe_step(step))
            try:
                self._dispatch(step, applied)
            except Lambda3Error as error:
                error.step = f"apply:{type(step).__name__}"
                error.message = (f"{describe_step(step)} failed: {error.message}; the alias was "
                                 f"not moved, re-run to continue")
                raise
        return applied

    def _dispatch(self, step: Step, applied: Applied) -> None:
        if isinstance(step, UploadArtifact):
            self.aws.upload_file(step.path, step.bucket, step.key)
        elif isinstance(step, PublishLayerVersion):
            applied.layers[step.layer.code.component] = self._publish_layer(step)
        elif isinstance(step, CreateFunction):
            self._create_function(step, applied)
        elif isinstance(step, UpdateFunctionConfiguration):
            self._update_configuration(step, applied)
        elif isinstance(step, UpdateFunctionCode):
            self._update_code(step, applied)
        elif isinstance(step, PublishVersion):
            self._publish_version(step, applied)
        elif isinstance(step, SetAlias):
            self._set_alias(step, applied)
        else:
            raise TypeError(f"not a plan step: {step!r}")

    def _publish_layer(self, step: PublishLayerVersion) -> LayerVersion:
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
        published = self.aws.publish_layer_version(**kwargs)
        log.info("published %s", published.arn)
        return published

    def _layer_arns(self, refs, applied: Applied) -> list[str]:
        return [applied.layers[r.component].arn if isinstance(r, Published) else r for r in refs]

    def _create_function(self, step: CreateFunction, applied: Applied) -> None:
        kwargs = {key: _setting(key, value) for key, value in step.settings}
        kwargs.update(FunctionName=step.function, Code=_content(step.code, function=True),
                      Architectures=[step.architecture], Publish=False,
                      Layers=self._layer_arns(step.layers, applied))
        created = self.aws.create_function(**kwargs)
        applied.function_arn = created["FunctionArn"]
        config = self.aws.wait_until_updated(step.function)
        applied.revision_id = config.get("RevisionId")
        applied.code_sha256 = config.get("CodeSha256")

    def _update_configuration(self, step: UpdateFunctionConfiguration, applied: Applied) -> None:
        kwargs = {key: _setting(key, value) for key, value in step.settings}
        if step.layers is not None:
            kwargs["Layers"] = self._layer_arns(step.layers, applied)
        result = self.aws.update_function_configuration(FunctionName=step.function, **kwargs)
        applied.function_arn = result["FunctionArn"]
        config = self.aws.wait_until_updated(step.function)
        applied.revision_id = config.get("RevisionId")

    def _update_code(self, step: UpdateFunctionCode, applied: Applied) -> None:
        if applied.revision_id is None:
            current = self.aws.wait_until_updated(step.function)
            applied.revision_id = current.get("RevisionId")
        kwargs = {"FunctionName": step.function, "Publish": False,
                  **_content(step.code, function=True)}
        if step.architecture:
            kwargs["Architectures"] = [step.architecture]
        if applied.revision_id:
            kwargs["RevisionId"] = applied.revision_id
        result = self.aws.update_function_code(**kwargs)
        applied.function_arn = result["FunctionArn"]
        config = self.aws.wait_until_updated(step.function)
        if config.get("CodeSha256") != step.code.code_sha256:
            raise AwsError(
                f"the function's code is {config.get('CodeSha256')}, expected "
                f"{step.code.code_sha256}: another deploy changed it meanwhile",
                code="CodeChangedConcurrently")
        applied.revision_id = config.get("RevisionId")
        applied.code_sha256 = config.get("CodeSha256")

    def _publish_version(self, step: PublishVersion, applied: Applied) -> None:
        kwargs = {"FunctionName": step.function, "CodeSha256": step.code_sha256,
                  "Description": step.description[:256]}
        if applied.revision_id is None:
            applied.revision_id = self.aws.wait_until_updated(step.function).get("RevisionId")
        if applied.revision_id:
            kwargs["RevisionId"] = applied.revision_id
        result = self.aws.publish_version(**kwargs)
        applied.version = result["Version"]
        log.info("published version %s", applied.version)

    def _set_alias(self, step: SetAlias, applied: Applied) -> None:
        version = step.version or applied.version
        if version is None:
            raise AwsError("no version to point the alias at")
        self.aws.set_alias(step.function, step.alias, version, exists=step.exists)
        log.info("alias %s -> version %s", step.alias, version)


def _content(code: Code, *, function: bool = False) -> dict[str, Any]:
    if code.bucket:
        return {"S3Bucket": code.bucket, "S3Key": code.key}
    return {"ZipFile": Path(code.path).read_bytes()}


def _setting(key: str, value: Any) -> Any:
    if key == "Environment":
        return {"Variables": dict(value)}
    return value
