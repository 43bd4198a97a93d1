"""Lambda's hard limits, checked before anything is published."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MB = 1024 * 1024
DIRECT_UPLOAD_LIMIT = 50 * MB  # zipped, in a direct API call; larger goes through S3
UNZIPPED_LIMIT = 262_144_000  # function plus all its layers, unzipped (250 MB)
MAX_LAYERS = 5
INVOKE_PAYLOAD_LIMIT = 6 * MB
MAX_TIMEOUT = 900


@dataclass(frozen=True)
class Sized:
    name: str
    size: int
    unzipped_size: int


def human(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} B"


def check_total(function: Sized | None, layers: Sequence[Sized]) -> list[str]:
    """Problems that make a deploy impossible: too many layers, too large unzipped."""
    problems = []
    if len(layers) > MAX_LAYERS:
        names = ", ".join(layer.name for layer in layers)
        problems.append(f"{len(layers)} layers ({names}); Lambda allows at most {MAX_LAYERS}")
    parts = ([function] if function else []) + list(layers)
    total = sum(part.unzipped_size for part in parts)
    if total > UNZIPPED_LIMIT:
        detail = ", ".join(f"{p.name} {human(p.unzipped_size)}" for p in parts)
        problems.append(
            f"function plus layers unzip to {human(total)} ({detail}); Lambda allows "
            f"{human(UNZIPPED_LIMIT)}: move data to S3 or EFS, or trim dependencies with "
            f"`exclude` globs"
        )
    return problems


def needs_s3(size: int) -> bool:
    return size > DIRECT_UPLOAD_LIMIT
