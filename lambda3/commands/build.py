"""`lambda3 build SOURCE`: build the packages locally, with no AWS at all."""
from __future__ import annotations

import argparse
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
    parser.add_argument("--only", action="append", default=[], metavar="KEY",
                        help="build only this function of the build file's `functions:` "
                        "(repeatable; default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(command="build")


def read_token(var: str | None) -> str | None:
    """The token from `var` (`--token-env`), else LAMBDA3_TOKEN or GITHUB_TOKEN."""
    if var and not os.environ.get(var):
        print(f"lambda3 build: warning: --token-env {var}: the variable {var} is not set or "
              "empty; fetching without a token", file=sys.stderr)
    names = [var] if var else ["LAMBDA3_TOKEN", "GITHUB_TOKEN"]
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "lambda3-cache"


def run(args: argparse.Namespace) -> int:
    from builder.build import BuildOptions, build
    from builder.redact import REDACTOR
    from lambda3.progress import console

    token = read_token(args.token_env)
    REDACTOR.add(token)
    options = BuildOptions(
        repository=args.source, ref=args.ref, build_file=args.build_file,
        components=tuple(args.components), token=token, refresh=args.refresh,
        functions=tuple(args.only),
        workdir=Path(args.workdir) if args.workdir else default_workdir(),
        out_dir=Path(args.out).resolve(),
    )
    with console(json_mode=args.json):
        output = build(options)
    if args.json:
        data = output.to_json()
        print_json({"commit": data["commit"], "components": data["components"],
                    "target": data["target"], "warnings": data["warnings"],
                    "uncommitted_changes": _uncommitted(args, output),
                    **({"functions": data["functions"]} if "functions" in data else {})})
        return 0
    _report(output, options, _uncommitted(args, output))
    return 0


def _uncommitted(args: argparse.Namespace, output) -> bool:
    """True when a local working tree was built as it is and differs from its HEAD."""
    from builder.source import has_uncommitted_changes

    if args.ref is not None or not output.commit or "://" in args.source:
        return False
    return has_uncommitted_changes(Path(output.source))


def _report(output, options, uncommitted: bool) -> None:
    from builder.contract import ComponentResult

    print(f"built {output.source}")
    if output.commit:
        print(f"commit: {output.commit}" + (" + uncommitted changes" if uncommitted else ""))
    for part in output.each():  # one per function of `functions:`
        if output.parts:
            print(f"function {part.key}:")
        print(f"target: {part.target.describe()}")
        print(components_table([ComponentResult(
            name=a.name, kind=a.kind, code_sha256=a.stats.code_sha256, size=a.stats.size,
            unzipped_size=a.stats.unzipped_size, files=a.stats.files, reused=a.reused)
            for a in part.artifacts]))
    for warning in output.warnings:
        print(f"warning: {warning}")
    print(f"zips in {options.out_dir}")
