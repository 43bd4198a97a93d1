"""The builder installing its own toolchain, natively, in its own runtime.

`lambda3 bootstrap` invokes the builder with `{"action": "bootstrap"}`. The builder then
installs the pinned list shipped in its code (`builder/toolchain.txt`, generated from
`bootstrap/toolchain.txt`) with uv or pip from its runtime (or from the seed layer bootstrap
attached), compiles it to bytecode for its own runtime (`builder.bytecode`: a cold start
then imports dulwich and yaml without compiling them), zips the result as a layer (`python/`
layout, `bin/` kept: uv's binary lives in `python/bin/uv`), and publishes it as
`<name>-toolchain` unless a version with the same CodeSha256 exists already. It answers
with the layer version's ARN and the zip's CodeSha256, and changes nothing on itself: its
role may not (`bootstrap/policies.py`).

The other half runs in the bootstrap client, with the operator's credentials:
`attach_toolchain` checks that the layer version holds exactly the bytes the builder
reported and puts it in the builder's layers in place of any earlier toolchain or seed,
keeping the others. The zip is reproducible, so the same pins give the same bytes and a
re-run publishes and updates nothing.

Imports: standard library, boto3 and builder modules only; it runs before the toolchain is
there.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from builder.aws import Aws, LayerVersion, layer_name_of
from builder.bytecode import compile_bytecode
from builder.contract import ToolchainResult
from builder.errors import AwsError, Lambda3Error, RequestError
from builder.install import scrubbed_env
from builder.limits import DIRECT_UPLOAD_LIMIT
from builder.package import ZipStats, make_zip, walk_entries
from builder.runtimes import RUNTIMES, Target, make_target

log = logging.getLogger(__name__)

TOOLCHAIN_FILE = Path(__file__).resolve().with_name("toolchain.txt")
# In a source checkout (tests, in-process runs) the list is still in bootstrap/.
_CHECKOUT_TOOLCHAIN = Path(__file__).resolve().parent.parent / "bootstrap" / "toolchain.txt"
MAX_COMPARED = 25  # layer versions compared by CodeSha256 before publishing a new one


class ToolchainMismatch(Lambda3Error):
    step = "self-install"


def toolchain_layer_name(function: str) -> str:
    return f"{function}-toolchain"


def seed_layer_name(function: str) -> str:
    return f"{function}-seed"


def toolchain_file() -> Path:
    for candidate in (TOOLCHAIN_FILE, _CHECKOUT_TOOLCHAIN):
        if candidate.is_file():
            return candidate
    raise RequestError("this builder has no toolchain.txt in its code",
                       hint="re-run `lambda3 bootstrap` to deploy a complete builder")


def own_target(environ: Mapping[str, str]) -> Target:
    """The runtime this process is (AWS_EXECUTION_ENV), on this machine's CPU."""
    runtime = environ.get("AWS_EXECUTION_ENV", "").removeprefix("AWS_Lambda_")
    if runtime not in RUNTIMES:
        runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    architecture = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    return make_target(runtime, architecture)


def self_install(workdir: Path, *, aws: Aws | None = None, install: Callable | None = None,
                 environ: Mapping[str, str] | None = None,
                 requirements: Path | None = None) -> ToolchainResult:
    """Install and publish (or reuse) the toolchain layer; the handler's result. Attaching
    it is the bootstrap client's part (`attach_toolchain`)."""
    environ = os.environ if environ is None else environ
    function = environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not function:
        raise RequestError("the bootstrap action runs inside the builder function only")
    target = own_target(environ)
    packages, zip_path, stats = build_toolchain(Path(workdir), target, install=install,
                                                requirements=requirements or toolchain_file())
    if aws is None:
        from builder.clients import Clients

        aws = Aws(Clients.from_environ(environ))
    name = toolchain_layer_name(function)
    layer = find_layer_version(aws, name, stats.code_sha256)
    published = layer is None
    if layer is None:
        layer = publish_toolchain(aws, name, zip_path, stats, target, environ)
        log.info("published %s (%d bytes)", layer.arn, stats.size)
    else:
        log.info("the toolchain is unchanged: reusing %s", layer.arn)
    return ToolchainResult(layer_arn=layer.arn, code_sha256=stats.code_sha256,
                           size=stats.size, published=published, attached=False,
                           packages=tuple(packages), target=target.describe())


def build_toolchain(workdir: Path, target: Target, *, requirements: Path,
                    install: Callable | None = None) -> tuple[list[str], Path, ZipStats]:
    """Install the pinned list natively into a fresh stage and zip it as a layer."""
    if install is None:
        from builder.install import install_requirements as install
    stage = workdir / "toolchain-stage"
    shutil.rmtree(stage, ignore_errors=True)
    site = stage / "python"
    # "include": dulwich needs a newer urllib3 than some runtimes provide, and the list is
    # pinned whole, so nothing is left to (or constrained by) the runtime's SDK closure.
    result = install([requirements], site, target, cache_dir=workdir / "cache" / "installer",
                     repo_root=requirements.parent, runtime_packages="include", keep_bin=True)
    compiled = compile_bytecode(site, "/opt/python", env=scrubbed_env())
    zip_path = workdir / "toolchain.zip"
    stats = make_zip(walk_entries(site, "python", bytecode=True), zip_path)
    packages = [f"{name}=={version}" for name, version in result.packages]
    log.info("toolchain: %s; %d files (%d compiled modules), %d bytes zipped",
             ", ".join(packages), stats.files, compiled, stats.size)
    return packages, zip_path, stats


def find_layer_version(aws: Aws, name: str, code_sha256: str, *,
                       limit: int = MAX_COMPARED) -> LayerVersion | None:
    """The newest of the last `limit` versions of layer `name` that holds these bytes."""
    versions: list[Mapping[str, Any]] = []
    kwargs: dict[str, Any] = {"LayerName": name}
    while True:
        try:
            page = aws.call("lambda", "list_layer_versions", **kwargs)
        except AwsError as error:
            if error.code == "ResourceNotFoundException":
                return None
            raise
        versions += page.get("LayerVersions", [])
        if not page.get("NextMarker"):
            break
        kwargs["Marker"] = page["NextMarker"]
    newest = sorted(versions, key=lambda v: v["Version"], reverse=True)[:limit]
    for listed in newest:
        found = aws.get_layer_version(listed["LayerVersionArn"])
        if found is not None and found.code_sha256 == code_sha256:
            return found
    return None


def publish_toolchain(aws: Aws, name: str, zip_path: Path, stats: ZipStats, target: Target,
                      environ: Mapping[str, str]) -> LayerVersion:
    return aws.publish_layer_version(
        LayerName=name, Content=_content(aws, zip_path, stats, environ),
        Description=f"lambda3 builder toolchain for {target.describe()}",
        CompatibleRuntimes=[target.runtime], CompatibleArchitectures=[target.architecture])


def _content(aws: Aws, zip_path: Path, stats: ZipStats,
             environ: Mapping[str, str]) -> dict[str, Any]:
    if stats.size <= DIRECT_UPLOAD_LIMIT:
        return {"ZipFile": zip_path.read_bytes()}
    bucket = environ.get("LAMBDA3_BUCKET")
    if not bucket:
        raise RequestError(f"the toolchain is {stats.size} bytes zipped, too large to upload "
                           "directly, and the builder has no LAMBDA3_BUCKET",
                           hint="re-run `lambda3 bootstrap` (it sets the bucket)")
    key = f"lambda3/toolchain/{stats.sha256_hex}.zip"
    aws.upload_file(str(zip_path), bucket, key)
    return {"S3Bucket": bucket, "S3Key": key}


def attach_toolchain(aws: Aws, function: str, layer_arn: str, code_sha256: str) -> bool:
    """The client's half: put `layer_arn` in the function's layers in place of any version
    of its toolchain or seed layer, other layers kept in their order; False when it is
    there already. Refused unless the layer version holds the bytes the builder reported."""
    found = aws.get_layer_version(layer_arn)
    if found is None or layer_name_of(layer_arn) != toolchain_layer_name(function):
        raise ToolchainMismatch(f"{layer_arn} is not a version of {toolchain_layer_name(function)}")
    if found.code_sha256 != code_sha256:
        raise ToolchainMismatch(f"{layer_arn} holds {found.code_sha256}, not the toolchain the "
                                f"builder built ({code_sha256}): not attached",
                                hint="re-run `lambda3 bootstrap`; if it recurs, someone else "
                                     "publishes that layer")
    current = aws.get_function(function)
    if current is None:
        raise RequestError(f"function {function} not found while updating its layers")
    layers = with_toolchain(current.layers, function, layer_arn)
    if layers == current.layers:
        return False
    log.info("attaching %s to %s (was: %s)", layer_arn, function,
             ", ".join(current.layers) or "no layers")
    revision = {"RevisionId": current.revision_id} if current.revision_id else {}
    aws.update_function_configuration(FunctionName=function, Layers=list(layers), **revision)
    aws.wait_until_updated(function)
    return True


def with_toolchain(layers: tuple[str, ...], function: str, layer_arn: str) -> tuple[str, ...]:
    """`layers` without the function's toolchain and seed versions, then `layer_arn`."""
    own = {toolchain_layer_name(function), seed_layer_name(function)}
    return tuple(arn for arn in layers if layer_name_of(arn) not in own) + (layer_arn,)
