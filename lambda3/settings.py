"""Deploy settings from flags, config.ini and defaults (in that order of precedence).

config.ini keeps the original tool's sections: `[aws]` profile, region, bucket and
builder (the builder function's name); `[github]` user and token; `[deploy]` function,
repository, ref, alias, log_file. A token is read from the environment (LAMBDA3_TOKEN,
GITHUB_TOKEN) or config.ini, never from a command-line value that `ps` would show.
"""
from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import RequestError

DEFAULT_BUILDER = "lambda3-builder"


@dataclass(frozen=True)
class DeploySettings:
    repository: str
    function: str
    ref: str | None
    alias: str | None
    publish: bool
    components: tuple[str, ...]
    build_file: str | None
    builder: str
    region: str | None
    profile: str | None
    bucket: str | None
    endpoint_url: str | None
    log_file: str | None
    token: str | None = field(default=None, repr=False)


def read_config(path: str | Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    path = Path(path)
    if path.exists():
        parser.read(path)
    return parser


def _get(config: configparser.ConfigParser, section: str, key: str) -> str | None:
    value = config.get(section, key, fallback=None)
    return value.strip() or None if value is not None else None


def repository_url(value: str, github_user: str | None) -> str:
    """A full URL or local path as is; `owner/name` -> GitHub; `name` -> the config's user."""
    if "://" in value or value.startswith((".", "/")) or Path(value).exists():
        return value
    if value.count("/") == 1:
        return f"https://github.com/{value}.git"
    if github_user:
        return f"https://github.com/{github_user}/{value}.git"
    raise RequestError(
        f"cannot tell where repository {value!r} lives: give owner/name, a full URL, or set "
        f"`user` in the [github] section of config.ini"
    )


def resolve(args, environ: Mapping[str, str] | None = None, cwd: Path | None = None
            ) -> DeploySettings:
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    config = read_config(args.config)
    folder = cwd.name

    def pick(flag, section, key, default=None):
        return flag if flag not in (None, "") else (_get(config, section, key) or default)

    components = tuple(args.components)
    if args.git_repo and args.source:  # with -g, a leading positional is a component name
        components = (args.source, *components)
    repo_value = pick(args.git_repo or args.source, "deploy", "repository", folder)
    token = (environ.get("LAMBDA3_TOKEN") or environ.get("GITHUB_TOKEN")
             or _get(config, "github", "token"))
    alias = pick(args.alias, "deploy", "alias")
    return DeploySettings(
        repository=repository_url(repo_value, _get(config, "github", "user")),
        function=pick(args.function, "deploy", "function", folder),
        ref=pick(args.ref, "deploy", "ref"),
        alias=alias,
        publish=True if args.publish is None else args.publish,
        components=components,
        build_file=pick(args.build_file, "deploy", "build_file"),
        builder=pick(args.builder, "aws", "builder", DEFAULT_BUILDER),
        region=pick(args.region, "aws", "region", environ.get("AWS_REGION")
                    or environ.get("AWS_DEFAULT_REGION")),
        profile=pick(args.profile, "aws", "profile", environ.get("AWS_PROFILE")),
        bucket=pick(getattr(args, "bucket", None), "aws", "bucket"),
        endpoint_url=pick(args.endpoint_url, "aws", "endpoint_url",
                          environ.get("LAMBDA3_ENDPOINT_URL")),
        log_file=pick(args.log_file, "deploy", "log_file"),
        token=token,
    )
