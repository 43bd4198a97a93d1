"""Fixtures for the AWS side of the tests: the embedded emulator over real HTTP.

- `aws_credentials` (autouse): every test runs with dummy AWS credentials and no AWS
  profile or config of the user, so no real account is ever reached.
- `emulator`: one started `Emulator` per test session (so per pytest-xdist worker).
- `aws`: the emulator, reset for this test: `aws.endpoint_url`, `aws.region`,
  `aws.client("s3")`, `aws.create_function(name, {"app.py": source})`.

    def test_x(aws):
        aws.create_function("hello", {"app.py": "def handler(e, c):\\n    return e\\n"})
        answer = aws.client("lambda").invoke(FunctionName="hello", Payload=b"{}")
"""
from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config

from lambda3.embedded.emulator import Emulator

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
REGION = "us-east-1"
LOCAL_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}


def make_zip(files: Mapping[str, str | bytes], *, executables: tuple[str, ...] = ()) -> bytes:
    """A zip of `files` (name -> content), the named ones executable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name in executables else 0o644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


@dataclass
class AwsEndpoint:
    """The emulator as a test sees it: an endpoint URL, a region and boto3 clients."""

    emulator: Emulator
    region: str = REGION
    _session: Any = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    @property
    def account(self) -> str:
        return self.emulator.account

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client on the emulator; no retries unless `config` says otherwise."""
        if self._session is None:
            self._session = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing",
                aws_session_token="testing", region_name=self.region,
            )
        kwargs.setdefault("config", Config(retries={"total_max_attempts": 1}))
        return self._session.client(service, endpoint_url=self.endpoint_url, **kwargs)

    def lambda_role(self, name: str = "lambda3-test-function") -> str:
        """The ARN of a role Lambda can assume (created on first use)."""
        iam = self.client("iam")
        try:
            return iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            document = json.dumps(LAMBDA_TRUST)
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)["Role"]["Arn"]

    def create_function(self, name: str, files: Mapping[str, str | bytes], **settings: Any) -> dict:
        """Create a zip function from `files`. `settings` are more CreateFunction arguments;
        Runtime (the local Python), Handler (app.handler) and Role have defaults."""
        arguments = {"Runtime": LOCAL_RUNTIME, "Handler": "app.handler", **settings}
        arguments.setdefault("Role", self.lambda_role())
        return self.client("lambda").create_function(
            FunctionName=name, Code={"ZipFile": make_zip(files)}, **arguments
        )


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    """Dummy credentials, and none of the user's AWS settings, for every test."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """One running emulator for the whole session (each xdist worker has its own)."""
    with Emulator(state_dir=tmp_path_factory.mktemp("emulator"), region=REGION) as running:
        yield running


@pytest.fixture
def aws(emulator) -> AwsEndpoint:
    """The session's emulator with all AWS state wiped and every function cold."""
    emulator.reset()
    return AwsEndpoint(emulator)
