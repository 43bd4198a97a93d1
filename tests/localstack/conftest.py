"""The LocalStack tier: the deploy engine against LocalStack's stricter Lambda control plane.

LocalStack enforces what moto does not: functions stay Pending and updates InProgress for a
moment (409 ResourceConflictException meanwhile), and a stale RevisionId is refused with
412 PreconditionFailedException. It runs from `.localstack-venv` (scripts/localstack.py).

- Without that environment the tier is skipped, unless `LAMBDA3_LOCALSTACK=1`: then it is
  installed, and a failure to install or start fails the tests. `LAMBDA3_LOCALSTACK=0`
  skips the tier even when the environment exists.
- `localstack_server`: one LocalStack per session (per xdist worker); every test here is
  marked `localstack` and put in the xdist group "localstack" (`--dist loadgroup` keeps them
  on one worker).
- `localstack_aws`: an `AwsEndpoint` (tests/fixtures_aws.py) on it. LocalStack is not reset
  between tests: each test uses its own function name (`function_name`).
- `project`: a repository served by the git server, deployed by the builder's engine in
  this process (tests/localstack/project.py).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import localstack
from tests.fixtures_aws import AwsEndpoint
from tests.localstack.project import Project

HERE = Path(__file__).resolve().parent
ACCOUNT = "000000000000"  # LocalStack's default account
PREPARE_SECONDS = "0.5"  # how long the executor plugin keeps a version Pending / InProgress


def _wanted() -> str | None:
    """None when the tier runs; otherwise why it is skipped."""
    setting = os.environ.get("LAMBDA3_LOCALSTACK", "")
    if setting == "1":
        return None
    if setting == "0":
        return "LAMBDA3_LOCALSTACK=0"
    if not localstack.is_installed():
        return (f"LocalStack is not installed in {localstack.VENV}: run "
                f"`.venv/bin/python scripts/localstack.py install` or set LAMBDA3_LOCALSTACK=1")
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "localstack: runs against LocalStack (tests/localstack)")
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist's, for --dist loadgroup")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group markers
def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    skip_reason = _wanted() if ours else None
    for item in ours:
        item.add_marker(pytest.mark.localstack)
        item.add_marker(pytest.mark.xdist_group("localstack"))
        if skip_reason:
            item.add_marker(pytest.mark.skip(reason=skip_reason))


@dataclass(frozen=True)
class LocalStackEndpoint:
    """What `AwsEndpoint` needs of an emulator."""

    endpoint_url: str
    account: str = ACCOUNT


@pytest.fixture(scope="session")
def localstack_server():
    """One LocalStack for the session; installing or starting it failing is an error here."""
    try:
        python = localstack.ensure_venv()
        server = localstack.LocalStack(
            python, environment={"LAMBDA3_PREPARE_SECONDS": PREPARE_SECONDS}).start()
    except localstack.LocalStackError as error:
        pytest.fail(f"LocalStack could not be set up: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def localstack_aws(localstack_server) -> AwsEndpoint:
    return AwsEndpoint(LocalStackEndpoint(localstack_server.endpoint_url))


@pytest.fixture
def function_name(request) -> str:
    """A function name of this test's own (LocalStack keeps state between tests)."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name).strip("-")
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    return f"t-{name[:40]}-{digest}"


@pytest.fixture
def project(localstack_aws, function_name, git_server, git_token, make_repo, tmp_path,
            monkeypatch) -> Project:
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    return Project.create(localstack_aws, function_name, git_server, make_repo, git_token)
