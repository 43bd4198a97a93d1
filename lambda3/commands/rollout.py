"""`lambda3 rollout status|continue|abort FUNCTION -a ALIAS`: a rollout recorded on an alias,
shown, driven to its end (alarms and the error guard watched, weights moved), or rolled back
now. Works from any machine: the state is on the alias (docs/releases.md)."""
from __future__ import annotations

import argparse
import sys


def add_aws_flags(p) -> None:
    p.add_argument("-p", "--profile", help="AWS profile")
    p.add_argument("-r", "--region", help="AWS region")
    p.add_argument("--endpoint-url", help="AWS endpoint (e.g. the embedded emulator)")


def aws_of(args, *, role_arn: str | None = None):
    """The AWS wrapper for the flags (and, with `role_arn`, that role assumed)."""
    from builder.aws import Aws
    from builder.clients import Clients

    given = {"region": args.region, "endpoint_url": args.endpoint_url}
    clients = Clients.from_environ(profile=args.profile,
                                   **{key: value for key, value in given.items() if value})
    if role_arn:
        found = clients("sts").assume_role(RoleArn=role_arn, RoleSessionName="lambda3-promote")
        creds = found["Credentials"]
        clients = clients.with_credentials({
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]})
    return Aws(clients)


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("rollout", help=summary, description=__doc__)
    p.add_argument("what", choices=("status", "continue", "abort"))
    p.add_argument("function", help="function name")
    p.add_argument("-a", "--alias", required=True, help="the alias being rolled out")
    p.add_argument("--check", action="append", default=[], metavar="EVENT_FILE",
                   help="continue: pre-traffic check events, when the checks have not run")
    p.add_argument("--post-check", action="append", default=[], metavar="EVENT_FILE",
                   help="continue: post-traffic check events, when those have not run")
    p.add_argument("--poll", type=float, default=30.0,
                   help="continue: seconds between looks at the alarms (default: %(default)s)")
    add_aws_flags(p)


def run(args: argparse.Namespace) -> int:
    from builder.errors import Lambda3Error
    from lambda3.rollout import Driver, checks_from_files, describe_alias

    try:
        driver = Driver(aws_of(args), args.function, args.alias, poll=args.poll)
        if args.what == "status":
            for line in describe_alias(driver):
                print(line)
            return 0
        if args.what == "abort":
            state = driver.abort("aborted with `lambda3 rollout abort`")
            print(f"{args.function}: alias {args.alias} is on version {state.routing()[0]}")
            return 0
        state = driver.run(checks_from_files(args.check),
                           checks_from_files(args.post_check, "--post-check"))
    except Lambda3Error as error:
        print(f"lambda3 rollout: {error}", file=sys.stderr)
        return 1
    print(f"{args.function}: alias {args.alias} is on version {state.routing()[0]}")
    return 0
