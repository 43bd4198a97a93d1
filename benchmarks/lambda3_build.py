"""One lambda3 step in a fresh interpreter, with its result as JSON on stdout.

    python -m benchmarks.lambda3_build build --source DIR --workdir W --out O [--refresh]
            [--only KEY ...]
        what `lambda3 build DIR --workdir W --out O [--only KEY]` does, plus the step timings
    python -m benchmarks.lambda3_build install --installer uv|pip --requirements R
            --dest D --cache C --runtime python3.11 [--link-mode copy]
        builder.install.install_requirements alone, with the installer forced (and uv's
        link mode, for measuring)
    python -m benchmarks.lambda3_build deploy --event EVENT.json
        builder.handler.lambda_handler(event), as a warm builder would run it
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


def _build(args: argparse.Namespace) -> dict:
    from builder.build import BuildOptions, build

    output = build(BuildOptions(repository=args.source, workdir=Path(args.workdir),
                                out_dir=Path(args.out), refresh=args.refresh,
                                functions=tuple(args.only)))
    return output.to_json()


def _install(args: argparse.Namespace) -> dict:
    from dataclasses import asdict

    from builder.install import install_requirements
    from builder.runtimes import make_target

    requirements = Path(args.requirements).resolve()
    runner = None
    if args.link_mode:
        from builder.install import run_command

        def runner(argv, env, cwd):
            mode = f"--link-mode={args.link_mode}"
            return run_command([mode if a.startswith("--link-mode=") else a for a in argv],
                               env, cwd)
    started = time.perf_counter()
    result = install_requirements([requirements], Path(args.dest), make_target(args.runtime),
                                  cache_dir=Path(args.cache), repo_root=requirements.parent,
                                  installer=args.installer, runner=runner)
    return {**asdict(result), "seconds": time.perf_counter() - started}


def _deploy(args: argparse.Namespace) -> dict:
    from builder.handler import lambda_handler

    return lambda_handler(json.loads(Path(args.event).read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.lambda3_build")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build")
    build.add_argument("--source", required=True)
    build.add_argument("--workdir", required=True)
    build.add_argument("--out", required=True)
    build.add_argument("--refresh", action="store_true")
    build.add_argument("--only", action="append", default=[], metavar="KEY")
    install = sub.add_parser("install")
    install.add_argument("--installer", choices=("uv", "pip"), required=True)
    install.add_argument("--requirements", required=True)
    install.add_argument("--dest", required=True)
    install.add_argument("--cache", required=True)
    install.add_argument("--runtime", default="python3.11")
    install.add_argument("--link-mode", choices=("copy", "hardlink"))
    deploy = sub.add_parser("deploy")
    deploy.add_argument("--event", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    from builder.errors import Lambda3Error

    try:
        result = {"build": _build, "install": _install, "deploy": _deploy}[args.command](args)
    except Lambda3Error as error:
        print(f"lambda3 {args.command}: {error.step}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
