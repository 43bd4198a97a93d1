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


# -- deprecation -----------------------------------------------------------------------------
from datetime import date  # noqa: E402 - this part of the module

from builder.build import BuildOptions, build  # noqa: E402
from builder.errors import SpecError  # noqa: E402
from builder.runtimes import DEPRECATIONS, RuntimeBlocked, deprecation_warning  # noqa: E402


def test_a_supported_runtime_has_no_warning():
    assert deprecation_warning("python3.11", date(2027, 6, 29)) is None
    assert deprecation_warning("python3.14", date(2040, 1, 1)) is None  # no date published


def test_a_deprecated_runtime_warns_with_the_block_dates_and_the_next_runtime():
    warning = deprecation_warning("python3.11", date(2027, 6, 30))
    assert warning == ("python3.11 is deprecated since 2027-06-30 (no more security patches); "
                       "Lambda blocks creating functions on it from 2027-07-31 and updating "
                       "them from 2027-08-31: move to python3.13")


def test_from_the_block_update_date_the_runtime_is_refused():
    assert deprecation_warning("python3.11", date(2027, 8, 30)) is not None
    with pytest.raises(RuntimeBlocked, match="since 2027-08-31: a deploy would be refused; "
                                             "use python3.13"):
        deprecation_warning("python3.11", date(2027, 8, 31))


def test_python_3_9_dates_and_every_schedule_in_order():
    old = DEPRECATIONS["python3.9"]
    assert old.deprecated == date(2025, 12, 15)
    for entry in DEPRECATIONS.values():
        assert entry.deprecated < entry.block_create < entry.block_update, entry


def function_repo(make_repo, runtime_line):
    repo = make_repo({"app.py": "def handler(e, c):\n    return 1\n",
                      "build.yaml": f"function:\n  files: [app.py]\n{runtime_line}"})
    return str(repo.work)


def test_a_build_on_a_deprecated_runtime_carries_the_warning(make_repo, tmp_path):
    repo = function_repo(make_repo, "  runtimes: [python3.11]\n")
    output = build(BuildOptions(repository=repo, workdir=tmp_path / "w", today=date(2027, 7, 1)))
    assert [w for w in output.warnings if "deprecated" in w] == [
        deprecation_warning("python3.11", date(2027, 7, 1))]
    fresh = build(BuildOptions(repository=repo, workdir=tmp_path / "v", today=date(2027, 1, 1)))
    assert not [w for w in fresh.warnings if "deprecated" in w]


def test_a_build_past_the_block_update_date_is_refused_at_the_runtime(make_repo, tmp_path):
    repo = function_repo(make_repo, "  runtime: python3.11\n")
    with pytest.raises(SpecError) as info:
        build(BuildOptions(repository=repo, workdir=tmp_path / "w", today=date(2027, 9, 1)))
    error = info.value
    assert (error.step, error.file, error.line, error.key) == (
        "spec", "build.yaml", 3, "function.runtime")
    assert "2027-08-31" in error.message and "use python3.13" in error.message
