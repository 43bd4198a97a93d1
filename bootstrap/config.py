"""The bootstrap options as one validated dataclass, and what they mean as a desired state."""
from __future__ import annotations

import re
from dataclasses import dataclass

from bootstrap.github import github_spec
from bootstrap.plan import BuilderCode, Desired, FunctionSpec, RoleSpec
from bootstrap.policies import (
    Account,
    PolicyError,
    builder_policy,
    check_codeartifact,
    check_github,
    check_patterns,
    check_role_patterns,
    lambda_trust_policy,
    role_name,
    scoped_role_name,
    scoped_role_policy,
    scoped_role_trust_policy,
)
from builder.hosts import parse_entry
from builder.runtimes import make_target
from builder.settings import DEFAULT_ALLOWED_HOSTS, BuilderSettings

DEFAULT_NAME = "lambda3-builder"
DEFAULT_RUNTIME = "python3.12"
# The embedded mode's git server is plain http on 127.0.0.1 (a loopback host the builder
# may reach only when its allowed hosts name it).
EMBEDDED_ALLOWED_HOSTS = (*DEFAULT_ALLOWED_HOSTS, "127.0.0.1")
# 59 leaves room for "-role"; "<name>-toolchain" and "<name>-seed" stay valid layer names.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,59}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class BootstrapConfig:
    name: str = DEFAULT_NAME
    runtime: str = DEFAULT_RUNTIME
    architecture: str = "x86_64"
    bucket: str | None = None  # None: lambda3-artifacts-<account>-<region>
    allow: tuple[str, ...] = ("*",)
    pass_roles: tuple[str, ...] = ()
    github_repo: str | None = None
    github_ref: str = "*"
    github_releases: bool = False  # the deploy role may also drive rollouts, promote, prune
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS  # git hosts requests may name
    codeartifact: tuple[str, ...] = ()  # DOMAIN/REPOSITORY the builder may read packages from

    def validate(self) -> BootstrapConfig:
        if not _NAME.match(self.name):
            raise PolicyError(f"builder name {self.name!r} is not a valid function name",
                              hint="letters, digits, - and _, at most 59 characters")
        try:
            make_target(self.runtime, self.architecture)
        except ValueError as error:
            raise PolicyError(str(error)) from None
        if self.bucket is not None and not _BUCKET.match(self.bucket):
            raise PolicyError(f"bucket name {self.bucket!r} is not a valid S3 bucket name")
        for host in self.allowed_hosts:
            if parse_entry(host) is None:
                raise PolicyError(f"--allow-host {host!r} is not a host name",
                                  hint="give HOST, HOST:PORT or [IPv6]:PORT, e.g. github.com")
        check_patterns(self.allow)
        check_role_patterns(self.pass_roles)
        check_codeartifact(self.codeartifact)
        if self.github_repo:
            check_github(self.github_repo, self.github_ref)
        return self

    @property
    def allows_everything(self) -> bool:
        return "*" in self.allow


def bucket_name(config: BootstrapConfig, where: Account) -> str:
    return config.bucket or f"lambda3-artifacts-{where.account}-{where.region}"


def make_desired(config: BootstrapConfig, where: Account, code: BuilderCode) -> Desired:
    bucket = bucket_name(config, where)
    name = role_name(config.name)
    role = RoleSpec(
        kind="role", name=name, arn=where.role_arn(name), trust=lambda_trust_policy(),
        policy=builder_policy(where, config.name, bucket, config.codeartifact),
        description=f"lambda3 builder {config.name}: builds; deploys through its deploy role",
    )
    scoped_name = scoped_role_name(config.name)
    scoped = RoleSpec(
        kind="scoped role", name=scoped_name, arn=where.role_arn(scoped_name),
        trust=scoped_role_trust_policy(where, config.name),
        policy=scoped_role_policy(where, config.name, bucket, config.allow, config.pass_roles),
        description=f"lambda3 builder {config.name}: deploys to {', '.join(config.allow)}, "
                    "one function per session"[:1000],
    )
    function = FunctionSpec(
        name=config.name, code=code, runtime=config.runtime, architecture=config.architecture,
        environment=BuilderSettings(allow=config.allow, allowed_hosts=config.allowed_hosts,
                                    bucket=bucket, deploy_role=scoped.arn).to_environment(),
    )
    github = None
    if config.github_repo:
        github = github_spec(where, config.name, config.github_repo, config.github_ref,
                             releases=config.allow if config.github_releases else ())
    return Desired(role, bucket, function, github, scoped)
