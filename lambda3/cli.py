"""The `lambda3` command: a thin dispatcher to one module per subcommand.

Each module in `lambda3.commands` has `add_parser(subparsers)` and `run(args) -> int`;
they are imported only when needed so that `lambda3 --help` and each command start fast.

`main()` turns every failure into one line on stderr and a non-zero exit status: a
`Lambda3Error` as it says, botocore's credential, region, profile and connection errors
with the flag, variable or file that fixes them, Ctrl-C as "interrupted" (130), and
anything else as an internal error (`LAMBDA3_DEBUG=1` shows its traceback).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMANDS = {
    "build": "build packages locally, no AWS",
    "deploy": "build and deploy a function through the builder",
    "rollback": "point an alias back at an earlier version",
    "rollout": "show, continue or abort a gradual rollout of an alias",
    "promote": "deploy the version an alias points at to another alias or function",
    "prune": "delete old versions and unused layer versions; sweep pull-request previews",
    "bootstrap": "create or update the builder in an AWS account",
    "invoke": "invoke a function and print its answer and log",
    "emulator": "run the embedded AWS emulator in the foreground",
    "demo": "the whole flow on the embedded emulator, no AWS account needed",
}


def _load(name: str):
    return importlib.import_module(f"lambda3.commands.{name}")


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lambda3", description="Build and deploy Python AWS Lambda functions from a git ref.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        if only is None or name == only:
            _load(name).add_parser(subparsers, summary)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def parse(argv: list[str]) -> argparse.Namespace | None:
    """Options and positionals may be mixed (`build SRC --ref X function`)."""
    if not argv or argv[0] not in COMMANDS:
        make_parser().parse_args(argv)  # prints help or the usage error
        return None
    parser = make_parser(argv[0])
    command = parser._subparsers._group_actions[0].choices[argv[0]]  # noqa: SLF001
    args = command.parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args is None:
        make_parser().print_help()
        return 2
    _quiet_libraries()
    try:
        return _load(args.command).run(args)
    except BaseException as error:  # noqa: BLE001 - the one place that catches broadly
        if isinstance(error, SystemExit) or os.environ.get("LAMBDA3_DEBUG") == "1":
            raise
        line, code = describe_error(error)
        _say(f"lambda3 {args.command}: {line}")
        return code


def _quiet_libraries() -> None:
    """boto3's "Found credentials in environment variables." and the like are noise here."""
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _say(line: str) -> None:
    from builder.redact import REDACTOR

    try:
        sys.stderr.write(REDACTOR(line) + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


def describe_error(error: BaseException) -> tuple[str, int]:
    """(one line saying what failed and how to fix it, exit status) for any error."""
    from builder.errors import Lambda3Error
    from lambda3.settings import CREDENTIALS_HINT, ENDPOINT_HINT, REGION_HINT

    if isinstance(error, Lambda3Error):
        return f"{error.step}: {error}", 1
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(error, BrokenPipeError):
        _silence_stdout()
        return "output closed early (broken pipe)", 1
    name = type(error).__name__
    botocore = {
        "NoCredentialsError": f"no AWS credentials found ({CREDENTIALS_HINT})",
        "PartialCredentialsError": f"incomplete AWS credentials: {error} ({CREDENTIALS_HINT})",
        "NoRegionError": f"no AWS region is set ({REGION_HINT})",
        "ProfileNotFound": f"{error} (check -p/--profile, AWS_PROFILE and ~/.aws/config)",
        "EndpointConnectionError": f"cannot reach AWS: {error} ({ENDPOINT_HINT})",
        "ConnectTimeoutError": f"cannot reach AWS: {error} ({ENDPOINT_HINT})",
    }
    if type(error).__module__.startswith("botocore"):
        return botocore.get(name) or _other_aws_error(error), 1
    return (f"internal error: {name}: {error} "
            "(re-run with LAMBDA3_DEBUG=1 for the traceback)"), 1


def _other_aws_error(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):  # a ClientError: AWS answered with an error
        found = response.get("Error", {})
        return (f"AWS refused a call: {found.get('Code', 'Unknown')}: {found.get('Message', '')}"
                " (check the credentials' permissions, -r/--region and the names given)")
    return f"an AWS call failed: {error} (check the network and --endpoint-url, then re-run)"


def _silence_stdout() -> None:
    """After a closed pipe, Python's flush at exit must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
