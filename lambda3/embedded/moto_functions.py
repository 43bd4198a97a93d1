"""The functions and layers the emulator holds, read from its moto backend.

The local invoker lives in the emulator's process, so it reads moto's Lambda backend
directly: at the start of each invocation, the function (and the version or alias a
qualifier names), its configuration, its code zip and its layers' zips.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class FunctionNotFound(LookupError):
    """No such function, version or alias. The message is AWS's ("Function not found: ARN")."""


@dataclass(frozen=True)
class Function:
    """What one invocation needs, read from moto at the start of the invocation."""

    name: str
    version: str
    invoked_arn: str
    region: str
    account: str
    handler: str
    runtime: str
    package_type: str
    timeout: int
    memory: int
    environment: dict = field(repr=False)
    code: bytes = field(repr=False)
    code_sha: str = ""
    layers: tuple = field(default=(), repr=False)  # ((CodeSha256, zip bytes), ...)
    qualifier: str | None = None  # as invoked: a version, $LATEST or an alias
    alias: str | None = None  # when invoked through one: the version is its weights' choice


def parse_reference(reference: str, qualifier: str | None, region: str, account: str):
    """Name, qualifier, region, account of a name, partial ARN or ARN (with ``:qualifier``)."""
    parts = reference.split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        region, account, parts = parts[3], parts[4], parts[6:]
    elif len(parts) >= 3 and parts[1] == "function":
        account, parts = parts[0], parts[2:]
    if len(parts) > 1:
        qualifier = parts[1]
    return parts[0], qualifier, region, account


def read_function(reference: str, qualifier: str | None, region: str, account: str, *,
                  version: str | None = None) -> Function:
    """The function (version, alias) `reference` and `qualifier` name, with its layers;
    FunctionNotFound when moto has no such function or one of its layer versions. Through an
    alias, `version` is the one its weights chose already (an Event invocation's)."""
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.awslambda.utils import get_backend
    from moto.utilities.utils import get_partition

    name, qualifier, region, account = parse_reference(reference, qualifier, region, account)
    backend = get_backend(account, region)  # moto's simple (no Docker) backend when configured
    alias = _alias(backend, name, qualifier)
    try:
        fn = backend.get_function(name, (version or routed(alias)) if alias else qualifier)
    except UnknownFunctionException as e:
        raise FunctionNotFound(e.message) from None
    layers = []
    for layer in fn.layers:
        version = backend.layers_versions_by_arn(layer["Arn"])
        if version is None:
            raise FunctionNotFound(f"Layer version not found: {layer['Arn']}")
        layers.append((version.code_sha_256, version.code_bytes))
    arn = f"arn:{get_partition(region)}:lambda:{region}:{account}:function:{fn.function_name}"
    return Function(
        name=fn.function_name, version=str(fn.version),
        invoked_arn=f"{arn}:{qualifier}" if qualifier else arn,
        region=region, account=account, handler=fn.handler or "", runtime=fn.run_time or "",
        package_type=fn.package_type, timeout=int(fn.timeout), memory=int(fn.memory_size),
        environment=dict(fn.environment_vars or {}), code=getattr(fn, "code_bytes", b""),
        code_sha=getattr(fn, "code_sha_256", ""), layers=tuple(layers),
        qualifier=qualifier, alias=alias.name if alias else None,
    )


def _alias(backend, name: str, qualifier: str | None):
    """The alias `qualifier` names, or None (a version, $LATEST, no qualifier, no alias)."""
    if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
        return None
    try:
        return backend.get_alias(qualifier, name)
    except Exception:  # noqa: BLE001 - moto's UnknownAlias/UnknownFunction: get_function says
        return None


def routed(alias, draw=None) -> str:
    """The version an invocation through `alias` runs: each of its AdditionalVersionWeights
    by its share, else the alias's own version (Lambda's weighted alias routing)."""
    import random

    weights = (alias.routing_config or {}).get("AdditionalVersionWeights") or {}
    point, below = (draw or random.random)(), 0.0
    for version, weight in weights.items():
        below += float(weight)
        if point < below:
            return str(version)
    return str(alias.function_version)
