"""Which runtime a build targets, and when a build may install natively."""
from __future__ import annotations

import platform
import sys

import pytest

from builder import runtimes
from builder.runtimes import glibc_version, is_native, make_target

HERE = f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def in_lambda(monkeypatch):
    """This process as a Lambda function on `HERE`, on this machine's CPU."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "lambda3-builder")
    monkeypatch.setenv("AWS_EXECUTION_ENV", f"AWS_Lambda_{HERE}")

    def with_glibc(version: str, library: str = "glibc") -> None:
        monkeypatch.setattr(platform, "libc_ver", lambda: (library, version))

    return with_glibc


def _target():
    arch = "arm64" if platform.machine() == "aarch64" else "x86_64"
    return make_target(HERE, arch)


def test_native_only_inside_lambda_on_the_targets_glibc_or_older(in_lambda):
    target = _target()
    major, minor = target.manylinux
    in_lambda(f"{major}.{minor}")
    assert is_native(target)
    in_lambda(f"{major}.{minor - 1}")
    assert is_native(target)
    in_lambda(f"{major}.{minor + 1}")  # an emulated Lambda on a newer Linux
    assert not is_native(target)
    in_lambda("", library="")  # not glibc (musl): its wheels are not manylinux
    assert not is_native(target)


def test_not_native_outside_lambda_or_on_another_runtime(in_lambda, monkeypatch):
    target = _target()
    in_lambda("2.17")
    other = "python3.12" if HERE != "python3.12" else "python3.13"
    monkeypatch.setenv("AWS_EXECUTION_ENV", f"AWS_Lambda_{other}")
    assert not is_native(target)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    monkeypatch.setenv("AWS_EXECUTION_ENV", f"AWS_Lambda_{HERE}")
    assert not runtimes.running_in_lambda() and not is_native(target)


@pytest.mark.parametrize(("libc", "expected"), [
    (("glibc", "2.26"), (2, 26)),
    (("glibc", "2.36"), (2, 36)),
    (("glibc", "2.34.9000"), (2, 34)),
    (("", ""), None),
    (("musl", "1.2"), None),
    (("glibc", "unknown"), None),
])
def test_glibc_version(monkeypatch, libc, expected):
    monkeypatch.setattr(platform, "libc_ver", lambda: libc)
    assert glibc_version() == expected
