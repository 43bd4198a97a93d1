"""Settings from flags, the environment, config.ini and defaults, in that order (the AWS
CLI's order: a flag wins over a variable, a variable over a file).

config.ini keeps the original tool's sections: `[aws]` profile, region, endpoint_url, bucket
and builder (the builder function's name); `[github]` user and token; `[deploy]` function,
repository, ref, alias, build_file, log_file. A token is read from the environment
(LAMBDA3_TOKEN, GITHUB_TOKEN) or config.ini, never from a command-line value that `ps`
would show. `-c FILE` given and absent is an error; the default `config.ini` may be absent.
"""
from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.clients import ConfigError
from builder.errors import RequestError

DEFAULT_BUILDER = "lambda3-builder"
DEFAULT_CONFIG = "config.ini"
REGION_HINT = ("pass -r/--region, set AWS_REGION, or set region in the [aws] section of "
               "config.ini or in your profile in ~/.aws/config")


@dataclass(frozen=True)
class AwsSettings:
    region: str | None
    profile: str | None
    endpoint_url: str | None


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
    source_is_local: bool = False

    @property
    def aws(self) -> AwsSettings:
        return AwsSettings(self.region, self.profile, self.endpoint_url)


def add_aws_arguments(parser, *, config: bool = True) -> None:
    """The flags every command that talks to AWS takes."""
    parser.add_argument("-p", "--profile", help="AWS profile (default: AWS_PROFILE, then "
                        "[aws] profile in config.ini)")
    parser.add_argument("-r", "--region", help="AWS region (default: AWS_REGION, "
                        "AWS_DEFAULT_REGION, then [aws] region in config.ini)")
    parser.add_argument("--endpoint-url", help="AWS endpoint, e.g. the embedded emulator "
                        "(default: LAMBDA3_ENDPOINT_URL, then [aws] endpoint_url in config.ini)")
    if config:
        parser.add_argument("-c", "--config", help="config file (default: ./config.ini "
                            "when it exists)")


def read_config(path: str | Path | None, cwd: Path | None = None
                ) -> configparser.ConfigParser:
    """`path` None: config.ini in `cwd` (default: here) if it exists. A path given that does
    not exist is an error."""
    # `key = value   ; comment` as the README shows it; a `%` in a value is a `%`
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    target = Path(path) if path is not None else (cwd or Path.cwd()) / DEFAULT_CONFIG
    if not target.exists():
        if path is None:
            return parser
        raise ConfigError(f"config file {path} does not exist",
                          hint="fix -c/--config, or leave it out to use ./config.ini")
    try:
        parser.read(target)
    except configparser.Error as error:
        message = str(error).splitlines()[0]
        raise ConfigError(f"{target}: not a valid config file: {message}",
                          hint="fix that line (INI format: [section] and key = value)") from None
    return parser


def _get(config: configparser.ConfigParser, section: str, key: str) -> str | None:
    value = config.get(section, key, fallback=None)
    return value.strip() or None if value is not None else None


def _first(*values: str | None) -> str | None:
    return next((v.strip() for v in values if v and v.strip()), None)


def aws_settings(args, config: configparser.ConfigParser,
                 environ: Mapping[str, str] | None = None) -> AwsSettings:
    """Region, profile and endpoint: flag > environment > config.ini (> the profile's own
    region, which boto3 reads)."""
    environ = os.environ if environ is None else environ
    return AwsSettings(
        region=_first(getattr(args, "region", None), environ.get("AWS_REGION"),
                      environ.get("AWS_DEFAULT_REGION"), _get(config, "aws", "region")),
        profile=_first(getattr(args, "profile", None), environ.get("AWS_PROFILE"),
                       _get(config, "aws", "profile")),
        endpoint_url=_first(getattr(args, "endpoint_url", None),
                            environ.get("LAMBDA3_ENDPOINT_URL"),
                            _get(config, "aws", "endpoint_url")),
    )


def aws_settings_of(args, environ: Mapping[str, str] | None = None) -> AwsSettings:
    return aws_settings(args, read_config(getattr(args, "config", None)), environ)


def is_local_path(value: str) -> bool:
    return "://" not in value and (value.startswith((".", "/", "~")) or Path(value).exists())


def repository_url(value: str, github_user: str | None) -> str:
    """A full URL or local path as is; `owner/name` -> GitHub; `name` -> the config's user."""
    if "://" in value or is_local_path(value):
        return value
    if value.count("/") == 1:
        return f"https://github.com/{value}.git"
    if github_user:
        return f"https://github.com/{github_user}/{value}.git"
    raise RequestError(
        f"cannot tell where repository {value!r} lives: give owner/name, a full URL, or set "
        f"`user` in the [github] section of config.ini"
    )


def _check_ambiguous(value: str, config: configparser.ConfigParser) -> None:
    """A SOURCE like `example/hello` that is no local path, with no remote configured."""
    if "://" in value or is_local_path(value) or value.count("/") != 1:
        return
    if _get(config, "github", "user") or _get(config, "deploy", "repository"):
        return
    raise RequestError(
        f"SOURCE {value!r} is neither a local path that exists here nor named as a "
        f"repository: for the GitHub repository {value} pass -g {value}; for a local "
        f"folder, fix the path")


def resolve(args, environ: Mapping[str, str] | None = None, cwd: Path | None = None
            ) -> DeploySettings:
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    config = read_config(args.config, cwd)
    folder = cwd.name

    def pick(flag, section, key, default=None):
        return flag if flag not in (None, "") else (_get(config, section, key) or default)

    components = tuple(args.components)
    if args.git_repo and args.source:  # with -g, a leading positional is a component name
        components = (args.source, *components)
    elif args.source:
        _check_ambiguous(args.source, config)
    repo_value = pick(args.git_repo or args.source, "deploy", "repository", folder)
    token = (environ.get("LAMBDA3_TOKEN") or environ.get("GITHUB_TOKEN")
             or _get(config, "github", "token"))
    aws = aws_settings(args, config, environ)
    return DeploySettings(
        repository=repository_url(repo_value, _get(config, "github", "user")),
        function=pick(args.function, "deploy", "function", folder),
        ref=pick(args.ref, "deploy", "ref"),
        alias=pick(args.alias, "deploy", "alias"),
        publish=True if args.publish is None else args.publish,
        components=components,
        build_file=pick(args.build_file, "deploy", "build_file"),
        builder=pick(args.builder, "aws", "builder", DEFAULT_BUILDER),
        region=aws.region, profile=aws.profile, endpoint_url=aws.endpoint_url,
        bucket=pick(getattr(args, "bucket", None), "aws", "bucket"),
        log_file=pick(args.log_file, "deploy", "log_file"),
        token=token,
        source_is_local=is_local_path(repo_value),
    )


def connect(aws: AwsSettings, *, check: bool = True):
    """`builder.clients.Clients` for these settings, after one quick call (STS
    GetCallerIdentity, which needs no permission) proves the credentials and the endpoint:
    a missing credential or an unreachable endpoint is one clear error up front."""
    from builder.clients import Clients

    clients = Clients(region=aws.region, profile=aws.profile, endpoint_url=aws.endpoint_url,
                      region_hint=REGION_HINT)
    if clients.session.get_credentials() is None:
        raise ConfigError("no AWS credentials found", hint=CREDENTIALS_HINT)
    if check:
        _preflight(clients)
    return clients


CREDENTIALS_HINT = ("pass -p/--profile, set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY; `aws configure` or `aws sso login` writes them")
ENDPOINT_HINT = ("check --endpoint-url, LAMBDA3_ENDPOINT_URL and [aws] endpoint_url in "
                 "config.ini; for the emulator, start `lambda3 emulator`")
NETWORK_HINT = "check the network and -r/--region"


def _preflight(clients) -> None:
    from botocore.config import Config
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

    config = Config(connect_timeout=5, read_timeout=20, retries={"total_max_attempts": 1})
    sts = clients.client("sts", config=config)
    try:
        sts.get_caller_identity()
    except (EndpointConnectionError, ConnectTimeoutError):
        where = clients.endpoint_url or sts.meta.endpoint_url
        raise ConfigError(f"cannot reach the AWS endpoint {where}",
                          hint=ENDPOINT_HINT if clients.endpoint_url else NETWORK_HINT
                          ) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
                    "ExpiredTokenException", "UnrecognizedClientException"):
            raise ConfigError(f"AWS refused the credentials: {code}",
                              hint="refresh them (`aws sso login`, new keys) or "
                                   + CREDENTIALS_HINT.split("; ")[0]) from None


def read_index_credentials(var: str | None, environ=None) -> tuple[tuple[str, str], ...]:
    """Private index credentials from `var` (default LAMBDA3_INDEX_CREDENTIALS): a JSON
    object of host -> "user:password". They travel as the request's secret field only."""
    from builder.redact import REDACTOR

    environ = os.environ if environ is None else environ
    name = var or "LAMBDA3_INDEX_CREDENTIALS"
    text = (environ.get(name) or "").strip()
    if not text:
        if var:
            raise RequestError(f"--index-credentials-env {var}: the variable {var} is not set",
                               hint='set it to JSON such as {"pypi.example.com": "user:pass"}')
        return ()
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and ":" in v for k, v in found.items()):
        raise RequestError(f"{name} must be a JSON object of host to \"user:password\"",
                           hint='e.g. {"pypi.example.com": "deploy:s3cret"}')
    for value in found.values():
        REDACTOR.add(value.partition(":")[2])
        REDACTOR.add(value)
    return tuple(sorted(found.items()))
