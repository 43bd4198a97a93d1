"""`lambda3 build SOURCE`: build the packages locally, with no AWS at all."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from lambda3.output import components_table, print_json


def add_parser(subparsers, summary: str) -> None:
    parser = subparsers.add_parser("build", help=summary, description=__doc__)
    parser.add_argument("source", help="git URL (https) or local path")
    parser.add_argument("components", nargs="*", metavar="COMPONENT",
                        help="build only these: function, dependencies, or a layer's name")
    parser.add_argument("--ref", help="branch, tag or commit SHA (default: the remote HEAD, "
                        "or the working tree of a local path)")
    parser.add_argument("--build-file", help="build file relative to the repository "
                        "(default: build.yaml, build.yml or build.json)")
    parser.add_argument("--out", default="dist", help="where the zips go (default: ./dist)")
    parser.add_argument("--token-env", metavar="VAR",
                        help="environment variable that holds the git token (default: "
                        "LAMBDA3_TOKEN, then GITHUB_TOKEN)")
    parser.add_argument("--workdir", help="cache directory (default: a lambda3 folder in the "
                        "system temp dir, kept between builds)")
    parser.add_argument("--refresh", action="store_true",
                        help="reinstall dependencies even when the requirements are unchanged")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(command="build")


def read_token(var: str | None) -> str | None:
    names = [var] if var else ["LAMBDA3_TOKEN", "GITHUB_TOKEN"]
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "lambda3-cache"


def run(args: argparse.Namespace) -> int:
    from builder.build import BuildOptions, build
    from builder.contract import ComponentResult
    from builder.errors import Lambda3Error
    from builder.redact import REDACTOR, install_log_redaction

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    install_log_redaction()
    token = read_token(args.token_env)
    REDACTOR.add(token)
    options = BuildOptions(
        source=args.source, ref=args.ref, build_file=args.build_file,
        components=tuple(args.components), token=token, refresh=args.refresh,
        workdir=Path(args.workdir) if args.workdir else default_workdir(),
        out_dir=Path(args.out).resolve(),
    )
    try:
        output = build(options)
    except Lambda3Error as error:
        print(REDACTOR(f"lambda3 build: {error.step}: {error}"), file=sys.stderr)
        return 1
    data = output.to_json()
    if args.json:
        print_json({"commit": data["commit"], "components": data["components"],
                    "target": data["target"], "warnings": data["warnings"]})
        return 0
    print(f"built {output.source}" + (f" at {output.commit}" if output.commit else ""))
    print(f"target: {data['target']}")
    print(components_table([ComponentResult(
        name=a.name, kind=a.kind, code_sha256=a.stats.code_sha256, size=a.stats.size,
        unzipped_size=a.stats.unzipped_size, files=a.stats.files, reused=a.reused)
        for a in output.artifacts]))
    for warning in output.warnings:
        print(f"warning: {warning}")
    print(f"zips in {options.out_dir}")
    return 0
