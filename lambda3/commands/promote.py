"""`lambda3 promote FUNCTION --from-alias staging --to-alias prod [--to-function F]
[--role-arn ARN] [--bucket B] [--rollout STRATEGY]`: deploy exactly the version an alias
points at (its code, CodeSha256 for CodeSha256, and its layers), with no rebuild, to another
alias of the same function or to another function (in another account with --role-arn), at
once or as a rollout.

To another function, the code is downloaded from the source version (GetFunction's code
location), checked against its CodeSha256, uploaded, and a version is published with the
source version's Description (`lambda3 <commit> <time>`), so it names the commit promoted.
The target function must exist; its own settings (memory, environment, role) are kept.
In another account the source's layer versions are copied into the target's account
(`lambda3.layer_copy`: a copy with the same CodeSha256 already there is reused) and the
target attaches the copies, in the source's order. Zips over Lambda's 50 MB direct-upload
limit go through --bucket, an S3 bucket of the target account.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.aws import Aws, FunctionState, layer_name_of, layer_version_of
from builder.errors import AwsError, RequestError
from builder.plan import parse_stamp
from lambda3 import transfer
from lambda3.layer_copy import LayerCopy, account_of, copy_layers, kept


@dataclass(frozen=True)
class Source:
    function: str
    version: str
    code_sha256: str
    layers: tuple[str, ...]
    description: str
    arn: str  # the version's FunctionArn: its account is the source's
    code_size: int  # zipped

    @property
    def commit(self) -> str | None:
        stamp = parse_stamp(self.description)
        return stamp.commit if stamp else None


@dataclass(frozen=True)
class Promoted:
    source: Source
    function: str
    alias: str
    version: str
    published: bool  # a version was published on the target function
    previous: str | None  # the version the target alias pointed at
    layers: tuple[LayerCopy, ...]  # per source layer, what the target attaches

    @property
    def attached(self) -> tuple[str, ...]:
        return tuple(layer.arn for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.source.commit, "from_function": self.source.function,
                "from_version": self.source.version, "function": self.function,
                "alias": self.alias, "version": self.version, "previous": self.previous,
                "published": self.published, "code_sha256": self.source.code_sha256,
                "layers": list(self.attached), "copied_layers": [
                    {"source": x.source, "arn": x.arn, "published": x.published}
                    for x in self.layers if x.copied]}

    def line(self) -> str:
        commit = (self.source.commit or "an unknown commit")[:12]
        how = "published as" if self.published else "as"
        text = (f"promoted {commit} (version {self.source.version} of {self.source.function}) "
                f"to {self.function}:{self.alias}, {how} version {self.version}")
        copies = [x for x in self.layers if x.copied]
        if not copies:
            return text
        return text + f"; layers copied into account {account_of(copies[0].arn)}: " + ", ".join(
            f"{layer_name_of(x.source)}:{layer_version_of(x.source)} as version "
            f"{layer_version_of(x.arn)} ({'published' if x.published else 'already there'})"
            for x in copies)


def read_source(aws: Aws, function: str, alias: str) -> Source:
    found = aws.get_alias(function, alias)
    if found is None:
        raise RequestError(f"{function} has no alias {alias!r} to promote from")
    if found.weights:
        raise RequestError(f"alias {alias} of {function} is mid-rollout (version {found.version} "
                           f"with {dict(found.weights)}); promote once it completes",
                           hint=f"`lambda3 rollout status {function} -a {alias}`")
    config = aws.call("lambda", "get_function_configuration", FunctionName=function,
                      Qualifier=found.version)
    return Source(function, found.version, config["CodeSha256"],
                  tuple(layer["Arn"] for layer in config.get("Layers") or []),
                  config.get("Description") or "", config.get("FunctionArn") or "",
                  config.get("CodeSize") or 0)


def same_build(config: Mapping[str, Any], code_sha256: str, layers: Sequence[str]) -> bool:
    return (config.get("CodeSha256") == code_sha256
            and tuple(x["Arn"] for x in config.get("Layers") or []) == tuple(layers))


def fetch_code(aws: Aws, source: Source, fetch: transfer.Fetch) -> bytes:
    found = aws.call("lambda", "get_function", FunctionName=source.function,
                     Qualifier=source.version)
    return transfer.checked(fetch, (found.get("Code") or {}).get("Location"),
                            source.code_sha256, _code_of(source))


def _code_of(source: Source) -> str:
    return f"the code of version {source.version} of {source.function}"


def publish_copy(aws: Aws, current: FunctionState, source: Source, layers: tuple[str, ...],
                 code: Callable[[], Mapping[str, Any]]) -> str:
    """The source's code (`code()`: UpdateFunctionCode's arguments, called only when the
    code differs) with `layers` on the `current` function, published as one version."""
    target, revision = current.name, current.revision_id
    if current.layers != layers:
        aws.update_function_configuration(FunctionName=target, Layers=list(layers),
                                          **_revision(revision))
        revision = aws.wait_until_updated(target).get("RevisionId")
    if current.code_sha256 != source.code_sha256:
        aws.update_function_code(FunctionName=target, Publish=False, **code(),
                                 **_revision(revision))
        revision = aws.wait_until_updated(target).get("RevisionId")
    config = aws.call("lambda", "get_function_configuration", FunctionName=target)
    if not same_build(config, source.code_sha256, layers):
        raise AwsError(f"function {target} changed while promoting to it: re-run the promote")
    published = aws.publish_version(FunctionName=target, CodeSha256=source.code_sha256,
                                    Description=source.description[:256], **_revision(revision))
    return published["Version"]


def _revision(revision: str | None) -> dict[str, str]:
    return {"RevisionId": revision} if revision else {}


def target_version(source_aws: Aws, aws: Aws, target: str, source: Source, *,
                   bucket: str | None, fetch: transfer.Fetch
                   ) -> tuple[str, bool, tuple[LayerCopy, ...]]:
    """(the target's version holding the source's build, whether it was published now,
    the layers it attaches)."""
    current = aws.get_function(target)
    if current is None:
        raise RequestError(f"function {target} does not exist in the target account and region",
                           hint="deploy it once (lambda3 deploy -f ...), then promote to it")
    if current.code_sha256 != source.code_sha256:  # before any layer is copied
        transfer.check_size(source.code_size, bucket, _code_of(source))
    layers = copy_layers(source_aws, aws, source.layers, source_account=account_of(source.arn),
                         target_account=account_of(current.arn), bucket=bucket, fetch=fetch)
    arns = tuple(layer.arn for layer in layers)
    latest = aws.latest_published_version(target)
    if latest is not None and same_build(latest, source.code_sha256, arns) and (
            latest.get("Description") == source.description):
        return latest["Version"], False, layers
    version = publish_copy(aws, current, source, arns, lambda: transfer.content(
        aws, fetch_code(source_aws, source, fetch), bucket, _code_of(source)))
    return version, True, layers


def promote(source_aws: Aws, function: str, from_alias: str, to_alias: str, *,
            to_function: str | None = None, target_aws: Aws | None = None,
            rollout: str | None = None, bucket: str | None = None,
            checks: bool = False, post_checks: bool = False,
            fetch: transfer.Fetch = transfer.download,
            now: Callable[[], float] = time.time) -> Promoted:
    """Point `to_alias` (of `to_function`, default the same function) at the source alias's
    build; with a gradual `rollout`, or `checks` / `post_checks` to run, only its first step
    (recorded on the alias) for `lambda3.rollout.Driver` to finish. The alias moves last: a
    failure leaves it."""
    from builder import rollout as model

    target_aws = target_aws or source_aws
    strategy = model.parse_strategy(rollout)  # a wrong strategy, before anything changes
    source = read_source(source_aws, function, from_alias)
    target = to_function or function
    if target == function and target_aws is source_aws:
        version, published, layers = source.version, False, kept(source.layers)
    else:
        version, published, layers = target_version(source_aws, target_aws, target, source,
                                                    bucket=bucket, fetch=fetch)
    alias = target_aws.get_alias(target, to_alias)
    if alias is not None and alias.version == version and not alias.weights:
        pass
    elif alias is not None and (strategy.gradual or checks or post_checks):
        state = model.start_state(strategy, alias.version, version, now(), checks=checks,
                                  post_checks=post_checks)
        target_aws.call("lambda", "update_alias", idempotent=False, **model.update_alias_args(
            target, to_alias, state, alias.revision_id))
    else:
        target_aws.set_alias(target, to_alias, version, exists=alias is not None,
                             revision_id=alias.revision_id if alias else None)
    return Promoted(source, target, to_alias, version, published,
                    alias.version if alias else None, layers)


# -- the command ---------------------------------------------------------------------------
def add_parser(subparsers, summary: str) -> None:
    from lambda3.commands.rollout import add_aws_flags

    p = subparsers.add_parser("promote", help=summary, description=__doc__)
    p.add_argument("function", help="the function whose alias holds the tested version")
    p.add_argument("--from-alias", required=True, help="alias with the tested version")
    p.add_argument("--to-alias", required=True, help="alias to point at it")
    p.add_argument("--to-function", help="another function to deploy it to")
    p.add_argument("--role-arn", help="role to assume for the target (another account)")
    p.add_argument("--bucket", help="S3 bucket of the target account for zips over 50 MB")
    p.add_argument("--rollout", help="all-at-once (default), canary P M, linear P every M")
    p.add_argument("--check", action="append", default=[], metavar="EVENT_FILE",
                   help="pre-traffic check: invoke the version with this event first")
    p.add_argument("--post-check", action="append", default=[], metavar="EVENT_FILE",
                   help="post-traffic check: invoke the alias with it once it moved")
    p.add_argument("--poll", type=float, default=30.0, help="rollout: seconds between looks")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_aws_flags(p)


def run(args: argparse.Namespace) -> int:
    from builder.errors import Lambda3Error
    from lambda3.commands.rollout import aws_of
    from lambda3.rollout import Driver, checks_from_files

    try:
        checks = checks_from_files(args.check)  # before anything moves
        post_checks = checks_from_files(args.post_check, "--post-check")
        source_aws = aws_of(args)
        target_aws = aws_of(args, role_arn=args.role_arn) if args.role_arn else source_aws
        done = promote(source_aws, args.function, args.from_alias, args.to_alias,
                       to_function=args.to_function, target_aws=target_aws,
                       rollout=args.rollout, bucket=args.bucket, checks=bool(checks),
                       post_checks=bool(post_checks))
        print(done.line(), file=sys.stderr if args.json else sys.stdout)
        driver = Driver(target_aws, done.function, done.alias, poll=args.poll,
                        show=lambda line: print(line, file=sys.stderr))
        state = driver.read().state
        if state is not None and state.new == done.version and not state.final:
            driver.run(checks, post_checks)
    except Lambda3Error as error:
        print(f"lambda3 promote: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(done.to_json(), indent=2))
    return 0


def as_result(done: Promoted, aws: Aws) -> Any:
    """The promote as a `BuildResult`, for the action's outputs and summary."""
    from builder.contract import BuildResult, LayerResult
    from builder.reconcile import rollout_result
    from builder.rollout import decode

    found = aws.call("lambda", "get_alias", FunctionName=done.function, Name=done.alias)
    state = decode(found.get("Description"))
    config = aws.call("lambda", "get_function_configuration", FunctionName=done.function,
                      Qualifier=done.version)
    return BuildResult(
        ok=True, commit=done.source.commit, function=done.function,
        function_arn=config.get("FunctionArn"), version=done.version, alias=done.alias,
        code_sha256=done.source.code_sha256,
        layers=tuple(LayerResult(component=layer_name_of(x.arn), name=layer_name_of(x.arn),
                                 arn=x.arn, version=layer_version_of(x.arn), changed=x.published)
                     for x in done.layers),
        plan_text=(done.line(),),
        rollout=rollout_result(state) if state and state.new == done.version
        and not state.final else None)
