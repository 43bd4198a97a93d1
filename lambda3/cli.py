"""The `lambda3` command: a thin dispatcher to one module per subcommand.

Each module in `lambda3.commands` has `add_parser(subparsers)` and `run(args) -> int`;
they are imported only when needed so that `lambda3 --help` and each command start fast.
"""
from __future__ import annotations

import argparse
import importlib
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
    return _load(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
