"""`lambda3 demo`: bootstrap, deploy with the GitHub Action, invoke, redeploy a code-only
change: all on an embedded AWS emulator, with no account and nothing left running."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def add_parser(subparsers, summary: str) -> None:
    parser = subparsers.add_parser("demo", help=summary, description=__doc__)
    parser.add_argument("--workdir", help="keep the demo's files here (default: a temp dir "
                        "removed at the end)")


def run(args: argparse.Namespace) -> int:
    from lambda3.embedded.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    return run_demo(Path(args.workdir) if args.workdir else None,
                    say=lambda text: print(text, flush=True))
