"""The builder's own settings, read once from its environment into one typed object.

Bootstrap writes these variables on the builder function (`bootstrap/config.py` uses
`BuilderSettings.to_environment()`), so both sides share the names:

| variable | meaning |
| --- | --- |
| `LAMBDA3_ALLOW` | function-name patterns this builder may deploy to (comma or space separated) |
| `LAMBDA3_ALLOWED_HOSTS` | git hosts a request's repository may name (default `github.com`) |
| `LAMBDA3_BUCKET` | the artifact bucket for zips over the direct-upload limit |
| `LAMBDA3_WORKDIR` | where checkouts, caches and zips live (default `<tmp>/lambda3`) |
| `LAMBDA3_ENDPOINT_URL` | an AWS endpoint other than AWS's own (the embedded emulator) |
| `LAMBDA3_DEPLOY_ROLE` | a role assumed per request, scoped to that request's function and layers |

`service` is true when the builder answers requests as a deployed function (inside Lambda or
the local invoker): then only https repositories on the allowed hosts are accepted.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ALLOWED_HOSTS = ("github.com",)


def split_list(value: str | None) -> tuple[str, ...]:
    """Names separated by commas, spaces or newlines."""
    return tuple(p for p in re.split(r"[\s,]+", value or "") if p)


@dataclass(frozen=True)
class BuilderSettings:
    allow: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    bucket: str | None = None
    workdir: Path | None = None
    endpoint_url: str | None = None
    deploy_role: str | None = None
    own_name: str | None = None
    region: str | None = None
    service: bool = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> BuilderSettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        workdir = get("LAMBDA3_WORKDIR")
        hosts = split_list(get("LAMBDA3_ALLOWED_HOSTS"))
        return cls(
            allow=split_list(get("LAMBDA3_ALLOW")),
            allowed_hosts=tuple(h.lower() for h in hosts) or DEFAULT_ALLOWED_HOSTS,
            bucket=get("LAMBDA3_BUCKET"),
            workdir=Path(workdir) if workdir else None,
            endpoint_url=get("LAMBDA3_ENDPOINT_URL"),
            deploy_role=get("LAMBDA3_DEPLOY_ROLE"),
            own_name=get("AWS_LAMBDA_FUNCTION_NAME"),
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
            service=bool(get("AWS_LAMBDA_FUNCTION_NAME")),
        )

    def to_environment(self) -> dict[str, str]:
        """The variables bootstrap sets on the builder function for these settings."""
        env = {"LAMBDA3_ALLOW": ",".join(self.allow),
               "LAMBDA3_ALLOWED_HOSTS": ",".join(self.allowed_hosts)}
        if self.bucket:
            env["LAMBDA3_BUCKET"] = self.bucket
        if self.workdir:
            env["LAMBDA3_WORKDIR"] = str(self.workdir)
        if self.endpoint_url:
            env["LAMBDA3_ENDPOINT_URL"] = self.endpoint_url
        if self.deploy_role:
            env["LAMBDA3_DEPLOY_ROLE"] = self.deploy_role
        return env

    def work_path(self) -> Path:
        """Where sources, caches and zips live (in Lambda, /tmp is the only writable place
        and survives while the function stays warm). Created on first use."""
        path = self.workdir or Path(tempfile.gettempdir()) / "lambda3"
        path.mkdir(parents=True, exist_ok=True)
        return path
