"""`lambda3 rollback FUNCTION --alias A [--to VERSION]`: point an alias back at an earlier
published version (by default the one before the version it points at now)."""
from __future__ import annotations

import argparse

from lambda3.settings import add_aws_arguments


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("rollback", help=summary, description=__doc__)
    p.add_argument("function", help="function name")
    p.add_argument("-a", "--alias", required=True, help="the alias to move")
    p.add_argument("--to", dest="version", help="version to point at (default: the previous)")
    add_aws_arguments(p)


def previous_version(versions: list[str], current: str) -> str | None:
    numbers = sorted(int(v) for v in versions if v.isdigit())
    older = [n for n in numbers if n < int(current)]
    return str(older[-1]) if older else None


def rollback(aws, function: str, alias: str, to: str | None) -> tuple[str, str]:
    from builder.errors import RequestError

    current = aws.get_alias_version(function, alias)
    if current is None and aws.get_function(function) is None:
        raise RequestError(f"function {function} does not exist in {aws.region}",
                           hint="check the name, and -r/--region and -p/--profile")
    if current is None:
        raise RequestError(f"{function} has no alias {alias!r}",
                           hint="check -a/--alias; `lambda3 deploy -a ALIAS` creates one")
    versions = [v["Version"] for v in aws.list_versions(function)]  # every page
    target = to or previous_version(versions, current)
    if target is None:
        raise RequestError(f"alias {alias} is at version {current}; there is no earlier version")
    if target not in versions:
        shown = ", ".join(versions[-20:]) + (" ..." if len(versions) > 20 else "")
        raise RequestError(f"{function} has no version {target} (newest: {shown})")
    aws.set_alias(function, alias, target, exists=True)
    return current, target


def run(args: argparse.Namespace) -> int:
    from builder.aws import Aws
    from lambda3.settings import aws_settings_of, connect

    clients = connect(aws_settings_of(args))
    before, after = rollback(Aws(clients), args.function, args.alias, args.version)
    print(f"{args.function}: alias {args.alias} moved from version {before} to {after}")
    return 0
