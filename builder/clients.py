"""The one way to make AWS clients, on both sides (the builder and every client command).

`Clients` holds one boto3 session (a profile, explicit credentials, or the default chain),
one region and one endpoint URL (`--endpoint-url`, `LAMBDA3_ENDPOINT_URL`: the emulator),
and makes one client per service and botocore `Config`. Each service may get its own
Config; `client(service, config=...)` makes a separate client for a call that needs
another one (the builder invoke: a read timeout past the builder's own and no retries).

The Lambda client gets no botocore retries unless a caller configures it otherwise: the
`builder.aws.Aws` wrapper retries what may be retried itself, and a retry botocore makes
on its own would send a non-idempotent call (PublishLayerVersion, Invoke) twice.

A missing region is an error here, never a silent us-east-1: the message names what sets it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from builder.errors import Lambda3Error

REGION_HINT = "pass -r/--region, set AWS_REGION, or set region in config.ini or ~/.aws/config"


class ConfigError(Lambda3Error):
    """The AWS settings are incomplete or wrong: no region, an unknown profile."""

    step = "settings"


def endpoint_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    return (environ.get("LAMBDA3_ENDPOINT_URL") or "").strip() or None


class Clients:
    """boto3 clients for one credential source, region and endpoint."""

    def __init__(self, *, region: str | None = None, endpoint_url: str | None = None,
                 profile: str | None = None, credentials: Mapping[str, str] | None = None,
                 session: Any = None, configs: Mapping[str, Any] | None = None,
                 region_hint: str = REGION_HINT) -> None:
        self.session = session if session is not None else _session(profile, region,
                                                                     credentials)
        self.region = region or self.session.region_name
        if not self.region:
            raise ConfigError("no AWS region is set", hint=region_hint)
        self.endpoint_url = endpoint_url or None
        self.profile = profile
        self.configs = dict(configs or {})
        self._cache: dict[tuple[str, int], Any] = {}

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Clients:
        """`endpoint_url` falls back to `LAMBDA3_ENDPOINT_URL`, the region to `AWS_REGION`."""
        environ = os.environ if environ is None else environ
        kwargs.setdefault("endpoint_url", endpoint_url_from_env(environ))
        kwargs.setdefault("region", environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
                          or None)
        return cls(**kwargs)

    def __call__(self, service: str) -> Any:
        return self.client(service)

    def client(self, service: str, *, config: Any = None) -> Any:
        """One client per service and Config, made on first use and kept."""
        if config is None:
            config = self.configs.get(service) or _default_config(service)
        key = (service, id(config))
        if key not in self._cache:
            self._cache[key] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=config)
        return self._cache[key]

    def with_credentials(self, credentials: Mapping[str, str]) -> Clients:
        """The same region, endpoint and Configs with other (e.g. assumed) credentials."""
        return Clients(region=self.region, endpoint_url=self.endpoint_url,
                       credentials=credentials, configs=self.configs)


_DEFAULTS: dict[str, Any] = {}


def _default_config(service: str) -> Any:
    if service != "lambda":
        return None
    if service not in _DEFAULTS:
        from botocore.config import Config

        _DEFAULTS[service] = Config(retries={"total_max_attempts": 1})
    return _DEFAULTS[service]


def _session(profile: str | None, region: str | None, credentials: Mapping[str, str] | None):
    import boto3
    import botocore.exceptions

    try:
        return boto3.session.Session(profile_name=profile, region_name=region,
                                     **dict(credentials or {}))
    except botocore.exceptions.ProfileNotFound:
        raise ConfigError(f"the AWS profile {profile!r} does not exist",
                          hint="check -p/--profile, AWS_PROFILE and ~/.aws/config") from None
