"""Giving the builder its toolchain, from the client: ping, seed if needed, self-install,
and a last ping that proves the builder now imports dulwich and PyYAML from its own layer.

The installing itself happens inside the builder (`builder.selfinstall`), natively in its
runtime. The client only supplies uv when the runtime has no usable installer: the seed
layer (`bootstrap.seed_layer`), published as `<name>-seed` unless the same bytes already are,
and attached alone; the self-install detaches it again.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.aws import Aws
from builder.contract import BuildRequest, BuildResult
from builder.errors import Lambda3Error
from builder.package import ZipStats
from builder.runtimes import Target
from builder.selfinstall import find_layer_version, seed_layer_name, with_toolchain

log = logging.getLogger(__name__)

Invoke = Callable[[BuildRequest], BuildResult]
SeedMaker = Callable[[Target, Path], ZipStats]  # (target, zip path to write) -> stats
REQUIRED = ("dulwich", "PyYAML")
PING = BuildRequest(action="ping")
SELF_INSTALL = BuildRequest(action="bootstrap")


class ToolchainError(Lambda3Error):
    step = "self-install"


@dataclass(frozen=True)
class ToolchainOutcome:
    toolchain_layer_arn: str
    toolchain_action: str  # "created", "updated" (attached an existing one) or "unchanged"
    seed_layer_arn: str | None  # the seed attached in this run, if one was needed
    seed_action: str | None  # "created" or "unchanged"; None when no seed was needed
    packages: tuple[str, ...]
    versions: Mapping[str, str | None]  # what the builder imports now


def usable_installers(ping: BuildResult) -> list[str]:
    """The installers a ping reports as usable: `{"uv": "0.13.9", "pip": None}`, a list of
    names, or `{"uv": {"usable": true, ...}}` all read the same."""
    found = (ping.builder.installers if ping.builder else None) or {}
    if isinstance(found, (list, tuple)):
        return [str(name) for name in found]
    usable = []
    for name, value in found.items():
        if isinstance(value, Mapping):
            value = value.get("usable", value.get("available", value.get("version")))
        if value:
            usable.append(name)
    return usable


def missing_tools(ping: BuildResult, pins: Mapping[str, str]) -> list[str]:
    """The required tools the builder does not import, or imports at another version."""
    versions = ping.builder.toolchain if ping.builder else {}
    missing = []
    for name in REQUIRED:
        have, want = versions.get(name), pins.get(name)
        if not have or (want and have != want):
            missing.append(f"{name} (has {have or 'none'}, wants {want or 'any'})")
    return missing


def ensure_toolchain(aws: Aws, invoke: Invoke, function: str, target: Target, *,
                     make_seed: SeedMaker, workdir: Path, pins: Mapping[str, str],
                     retry_denied: Callable[[], None] | None = None) -> ToolchainOutcome:
    """`retry_denied`, when given, is called once (it sleeps) before retrying a self-install
    that AWS refused: a policy put moments ago may not have propagated yet."""
    first = _call(invoke, PING, function)
    seed_arn = seed_action = None
    if not usable_installers(first):
        log.info("%s has no usable installer (uv or pip): attaching a seed layer", function)
        seed_arn, seed_action = attach_seed(aws, function, target, make_seed, workdir)
    result = _self_install(invoke, function, retry_denied)
    after = _call(invoke, PING, function)
    missing = missing_tools(after, pins)
    if missing:
        raise ToolchainError(f"after its self-install the builder still lacks {', '.join(missing)}",
                             hint="see the builder's log above; re-run lambda3 bootstrap")
    toolchain = result.toolchain
    if toolchain is None:
        raise ToolchainError(f"the builder {function} answered its self-install without a "
                             "toolchain layer", hint="re-run lambda3 bootstrap")
    action = ("created" if toolchain.published else
              "updated" if toolchain.changed else "unchanged")
    return ToolchainOutcome(toolchain.layer_arn, action, seed_arn, seed_action,
                            toolchain.packages, dict(after.builder.toolchain if after.builder
                                                     else {}))


def attach_seed(aws: Aws, function: str, target: Target, make_seed: SeedMaker,
                workdir: Path) -> tuple[str, str]:
    """Publish the seed (unless these bytes are already a version) and put it in place of
    the function's toolchain or seed layer, other layers kept."""
    zip_path = workdir / "seed.zip"
    stats = make_seed(target, zip_path)
    name = seed_layer_name(function)
    layer = find_layer_version(aws, name, stats.code_sha256)
    action = "unchanged"
    if layer is None:
        layer = aws.publish_layer_version(
            LayerName=name, Content={"ZipFile": zip_path.read_bytes()},
            Description=f"lambda3 seed: the uv installer for {target.describe()}",
            CompatibleRuntimes=[target.runtime], CompatibleArchitectures=[target.architecture])
        action = "created"
    current = aws.get_function(function)
    if current is not None:
        layers = with_toolchain(current.layers, function, layer.arn)
        if current.layers != layers:
            precondition = {"RevisionId": current.revision_id} if current.revision_id else {}
            aws.update_function_configuration(FunctionName=function, Layers=list(layers),
                                              **precondition)
            aws.wait_until_updated(function)
    return layer.arn, action


def _self_install(invoke: Invoke, function: str,
                  retry_denied: Callable[[], None] | None) -> BuildResult:
    try:
        return _call(invoke, SELF_INSTALL, function)
    except ToolchainError as error:
        if retry_denied is None or "AccessDenied" not in error.message:
            raise
    log.info("AWS refused the self-install; waiting for IAM to apply the new policy")
    retry_denied()
    return _call(invoke, SELF_INSTALL, function)


def _call(invoke: Invoke, request: BuildRequest, function: str) -> BuildResult:
    result = invoke(request)
    if not result.ok:
        error = result.error
        raise ToolchainError(f"the builder {function} failed {request.action}: "
                             f"{error.step}: {error.message}")
    return result
