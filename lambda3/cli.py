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
    "bootstrap": "create or update the builder in an AWS account",
    "invoke": "invoke a function and print its answer and log",
    "emulator": "run the embedded AWS emulator in the foreground",
    "demo": "the whole flow on the embedded emulator, no AWS account needed",
}


def _load(name: str):
    return importlib.import_module(f"lambda3.commands.{name}")


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lambda3", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        if only is None or name == only:
            _load(name).add_parser(subparsers, summary)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = make_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    return _load(args.command).run(args)


if __name__ == "__main__":
    sys.exit(main())
