"""`lambda3 rollback FUNCTION --alias A [--to VERSION]`: point an alias back at an earlier
published version (by default the one before the version it points at now)."""
from __future__ import annotations

import argparse
import sys


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("rollback", help=summary, description=__doc__)
    p.add_argument("function", help="function name")
    p.add_argument("-a", "--alias", required=True, help="the alias to move")
    p.add_argument("--to", dest="version", help="version to point at (default: the previous)")
    p.add_argument("-p", "--profile", help="AWS profile")
    p.add_argument("-r", "--region", help="AWS region")
    p.add_argument("--endpoint-url", help="AWS endpoint (e.g. the embedded emulator)")


def previous_version(versions: list[str], current: str) -> str | None:
    numbers = sorted(int(v) for v in versions if v.isdigit())
    older = [n for n in numbers if n < int(current)]
    return str(older[-1]) if older else None


def rollback(aws, function: str, alias: str, to: str | None) -> tuple[str, str]:
    from builder.errors import RequestError

    current = aws.get_alias_version(function, alias)
    if current is None:
        raise RequestError(f"{function} has no alias {alias!r}")
    page = aws.call("lambda", "list_versions_by_function", FunctionName=function)
    versions = [v["Version"] for v in page.get("Versions", [])]
    target = to or previous_version(versions, current)
    if target is None:
        raise RequestError(f"alias {alias} is at version {current}; there is no earlier version")
    if target not in versions:
        raise RequestError(f"{function} has no version {target} (has: {', '.join(versions)})")
    aws.set_alias(function, alias, target, exists=True)
    return current, target


def run(args: argparse.Namespace) -> int:
    import boto3

    from builder.aws import Aws, ClientFactory
    from builder.errors import Lambda3Error

    session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
    aws = Aws(ClientFactory(region=args.region, endpoint_url=args.endpoint_url, session=session))
    try:
        before, after = rollback(aws, args.function, args.alias, args.version)
    except Lambda3Error as error:
        print(f"lambda3 rollback: {error}", file=sys.stderr)
        return 1
    print(f"{args.function}: alias {args.alias} moved from version {before} to {after}")
    return 0
