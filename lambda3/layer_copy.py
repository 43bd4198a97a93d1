"""The promoted version's layers, made usable in the target's account.

A function may attach a layer version of another account only if that account granted it;
a promote does not depend on such a grant: it copies. In the same account every layer stays
as it is. Into another account, a layer version stays when the target's account owns it,
or when a third account (AWS's, a public or an organisation's layer) owns it and the target
can already read it (GetLayerVersion with the target's credentials). Every other one, the
source account's own above all, is copied: a version of the layer of the same name in the
target account with the same CodeSha256 is reused (the newest first), else the source
version's zip is downloaded with the source's credentials, checked against its CodeSha256
and published there with the same name, Description, compatible runtimes and architectures
and license. Sizes are checked for every layer before the first is published.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from builder.aws import Aws, LayerVersion, layer_name_of, layer_version_of
from builder.errors import AwsError
from lambda3 import transfer

_COPIED_KEYS = ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo")


@dataclass(frozen=True)
class LayerCopy:
    source: str  # the promoted version's layer version ARN
    arn: str  # what the target attaches: a copy's ARN, or `source` when it stays
    published: bool = False  # this promote published the copy

    @property
    def copied(self) -> bool:
        return self.arn != self.source


@dataclass(frozen=True)
class _Wanted:
    arn: str
    details: Mapping[str, Any] | None = None  # the source's GetLayerVersion; None: it stays
    existing: LayerVersion | None = None  # a copy already in the target account

    @property
    def content(self) -> Mapping[str, Any]:
        return (self.details or {}).get("Content") or {}


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def kept(arns: Sequence[str]) -> tuple[LayerCopy, ...]:
    return tuple(LayerCopy(arn, arn) for arn in arns)


def copy_layers(source_aws: Aws, target_aws: Aws, arns: Sequence[str], *,
                source_account: str, target_account: str, bucket: str | None = None,
                fetch: transfer.Fetch = transfer.download) -> tuple[LayerCopy, ...]:
    """What the target attaches for each of `arns`, in their order, copies published."""
    if target_account == source_account:
        return kept(arns)
    wanted = [_want(source_aws, target_aws, arn, source_account, target_account)
              for arn in arns]
    for item in wanted:
        if item.details is not None and item.existing is None:
            transfer.check_size(item.content.get("CodeSize") or 0, bucket,
                                f"layer version {item.arn}")
    return tuple(_copy(target_aws, item, target_account, bucket, fetch) for item in wanted)


def _want(source_aws: Aws, target_aws: Aws, arn: str, source_account: str,
          target_account: str) -> _Wanted:
    if _stays(target_aws, arn, source_account, target_account):
        return _Wanted(arn)
    details = _read_source(source_aws, arn)
    sha = (details.get("Content") or {}).get("CodeSha256") or ""
    with _in_target(arn, target_account):
        existing = target_aws.find_layer_version(layer_name_of(arn), sha)
    return _Wanted(arn, details, existing)


def _stays(target_aws: Aws, arn: str, source_account: str, target_account: str) -> bool:
    owner = account_of(arn)
    if owner == target_account:
        return True
    if owner == source_account:
        return False
    try:
        _get_layer_version(target_aws, arn)
    except AwsError:  # not granted to the target, or not readable: copy it
        return False
    return True


def _read_source(source_aws: Aws, arn: str) -> Mapping[str, Any]:
    try:
        return _get_layer_version(source_aws, arn)
    except AwsError as error:
        if error.code == "ResourceNotFoundException":
            raise AwsError(f"layer version {arn} of the promoted version no longer exists, so "
                           "it cannot be copied: deploy that build again and promote the new "
                           "version", code=error.code) from None
        raise AwsError(f"layer version {arn} cannot be read to copy it: {error.message}",
                       code=error.code, hint="the source credentials need "
                       "lambda:GetLayerVersion on it") from None


def _get_layer_version(aws: Aws, arn: str) -> Mapping[str, Any]:
    """GetLayerVersion by the layer's ARN, so that it reads the ARN's account."""
    return aws.call("lambda", "get_layer_version", LayerName=arn.rsplit(":", 1)[0],
                    VersionNumber=layer_version_of(arn))


def _copy(target_aws: Aws, item: _Wanted, target_account: str, bucket: str | None,
          fetch: transfer.Fetch) -> LayerCopy:
    if item.details is None:
        return LayerCopy(item.arn, item.arn)
    if item.existing is not None:
        return LayerCopy(item.arn, item.existing.arn)
    what = f"layer version {item.arn}"
    sha = item.content.get("CodeSha256") or ""
    data = transfer.checked(fetch, item.content.get("Location"), sha, what)
    with _in_target(item.arn, target_account):
        kwargs = {key: item.details[key] for key in _COPIED_KEYS if item.details.get(key)}
        published = target_aws.publish_layer_version(
            code_sha256=sha, LayerName=layer_name_of(item.arn),
            Content=transfer.content(target_aws, data, bucket, what), **kwargs)
    return LayerCopy(item.arn, published.arn, published=True)


@contextmanager
def _in_target(arn: str, account: str) -> Iterator[None]:
    """An AWS error on the target's side, as one line naming the layer and the fix."""
    try:
        yield
    except AwsError as error:
        name = layer_name_of(arn)
        hint = (f"the target credentials need lambda:ListLayerVersions, lambda:GetLayerVersion "
                f"and lambda:PublishLayerVersion on layer {name}"
                if error.code == "AccessDeniedException" else error.hint)
        raise AwsError(f"copying layer version {arn} into account {account} failed: "
                       f"{error.message}", code=error.code, hint=hint) from None
