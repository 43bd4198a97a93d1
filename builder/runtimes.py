"""What each Lambda Python runtime is: its Python version, its glibc (and so the
manylinux level its wheels may have), and the AWS SDK packages it already provides.

Inside Lambda the provided versions are read from the runtime itself; elsewhere the
table below stands in for it.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import date

ARCHITECTURES = ("x86_64", "arm64")
_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}

# Runtime -> glibc manylinux level. python3.10/3.11 run on Amazon Linux 2 (glibc 2.26),
# python3.12 and later on Amazon Linux 2023 (glibc 2.34).
_MANYLINUX = {
    "python3.10": (2, 26),
    "python3.11": (2, 26),
    "python3.12": (2, 34),
    "python3.13": (2, 34),
    "python3.14": (2, 34),
}
RUNTIMES = tuple(_MANYLINUX)

# The boto3 closure the runtimes ship (pinned together, so resolution stays consistent).
PROVIDED_PACKAGES = {
    "boto3": "1.40.4",
    "botocore": "1.40.4",
    "s3transfer": "0.13.1",
    "jmespath": "1.0.1",
    "python-dateutil": "2.9.0.post0",
    "six": "1.17.0",
    "urllib3": "1.26.20",
}
# Naming any of these in a requirements file means "I want my own SDK": the whole closure
# is then installed and kept instead of left to the runtime.
SDK_ROOTS = ("boto3", "botocore", "s3transfer")


@dataclass(frozen=True)
class Deprecation:
    """AWS's schedule for one runtime: deprecated (no more security patches), then function
    creation blocked, then function updates blocked (a deploy can no longer change it)."""

    runtime: str
    deprecated: date
    block_create: date
    block_update: date
    next_runtime: str
    confirmed: bool = True  # False: the block dates are not confirmed from AWS's table


# From AWS's "Lambda runtimes" table (docs/build-file.md#runtime-deprecation says which
# dates are not confirmed). python3.14 has no published date yet.
DEPRECATIONS = {d.runtime: d for d in (
    Deprecation("python3.9", date(2025, 12, 15), date(2026, 6, 1), date(2026, 7, 1),
                "python3.13", confirmed=False),
    Deprecation("python3.10", date(2026, 6, 30), date(2026, 7, 31), date(2026, 8, 31),
                "python3.13", confirmed=False),
    Deprecation("python3.11", date(2027, 6, 30), date(2027, 7, 31), date(2027, 8, 31),
                "python3.13"),
    Deprecation("python3.12", date(2028, 10, 31), date(2028, 11, 30), date(2029, 1, 10),
                "python3.13"),
    Deprecation("python3.13", date(2029, 6, 30), date(2029, 7, 31), date(2029, 8, 31),
                "python3.14"),
)}


class RuntimeBlocked(Exception):
    """The runtime is past the date Lambda stops function updates on it."""


def deprecation_warning(runtime: str, today: date) -> str | None:
    """None while `runtime` is supported on `today`; a warning once it is deprecated;
    `RuntimeBlocked` from its block-update date on."""
    found = DEPRECATIONS.get(runtime)
    if found is None or today < found.deprecated:
        return None
    if today >= found.block_update:
        raise RuntimeBlocked(
            f"{runtime} is deprecated since {found.deprecated.isoformat()} and Lambda blocks "
            f"updates of functions on it since {found.block_update.isoformat()}: a deploy "
            f"would be refused; use {found.next_runtime}")
    return (f"{runtime} is deprecated since {found.deprecated.isoformat()} (no more security "
            f"patches); Lambda blocks creating functions on it from "
            f"{found.block_create.isoformat()} and updating them from "
            f"{found.block_update.isoformat()}: move to {found.next_runtime}")


@dataclass(frozen=True)
class Target:
    """The platform a package must run on."""

    runtime: str
    architecture: str

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    @property
    def manylinux(self) -> tuple[int, int]:
        return _MANYLINUX[self.runtime]

    @property
    def machine(self) -> str:
        return _MACHINE[self.architecture]

    def pip_platforms(self) -> list[str]:
        """Every manylinux tag the target accepts, newest first (pip needs them listed)."""
        major, minor = self.manylinux
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        tags += [f"manylinux2014_{self.machine}"]
        if self.machine == "x86_64":
            tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
        return tags

    def describe(self) -> str:
        major, minor = self.manylinux
        return f"{self.runtime} {self.architecture} (manylinux_{major}_{minor}_{self.machine})"


def make_target(runtime: str, architecture: str | None = None) -> Target:
    if runtime not in _MANYLINUX:
        raise ValueError(f"unsupported runtime {runtime!r}; allowed: {', '.join(RUNTIMES)}")
    architecture = architecture or "x86_64"
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unsupported architecture {architecture!r}; allowed: x86_64, arm64")
    return Target(runtime, architecture)


def running_in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and os.environ.get(
        "AWS_EXECUTION_ENV", ""
    ).startswith("AWS_Lambda_")


def is_native(target: Target) -> bool:
    """True when this process *is* the target: inside Lambda, same Python, same CPU, and a
    glibc no newer than the target's (an emulated Lambda on a newer Linux would otherwise
    install wheels that the real runtime cannot load)."""
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return (
        running_in_lambda()
        and os.environ.get("AWS_EXECUTION_ENV") == f"AWS_Lambda_{target.runtime}"
        and here == target.runtime
        and platform.machine() == target.machine
        and (glibc_version() or (99, 0)) <= target.manylinux
    )


def glibc_version() -> tuple[int, int] | None:
    """This process's glibc as (major, minor); None when it is not linked against glibc."""
    library, version = platform.libc_ver()
    parts = version.split(".")
    if library != "glibc" or len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return None
    return int(parts[0]), int(parts[1])


def provided_versions() -> dict[str, str]:
    """The SDK closure's versions: read from the runtime inside Lambda, else the table."""
    if not running_in_lambda():
        return dict(PROVIDED_PACKAGES)
    from importlib import metadata

    found = {}
    for name, default in PROVIDED_PACKAGES.items():
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = default
    return found


# Lambda refuses these in a function's environment ("reserved keys that are currently not
# supported for modification"; AWS docs, "Defined runtime environment variables").
RESERVED_ENVIRONMENT = frozenset((
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
))
