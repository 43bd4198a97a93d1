"""`lambda3 deploy`: build a ref and deploy it through the builder (the successor of
deploy.sh, with its flags). By default the remote builder function does the work;
`--local-builder` runs the same builder code in this process."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from lambda3.output import components_table, error_line, print_json, timings_table


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("deploy", help=summary, description=__doc__)
    p.add_argument("source", nargs="?", help="git URL, owner/name or local path (same as -g)")
    p.add_argument("components", nargs="*", metavar="COMPONENT",
                   help="deploy only these: function, dependencies, or a layer's name")
    p.add_argument("-a", "--alias", help="create or move this alias to the new version")
    p.add_argument("-b", "--ref", help="branch, tag or commit SHA (default: the remote HEAD)")
    p.add_argument("-c", "--config", default="config.ini",
                   help="config file (default: %(default)s)")
    p.add_argument("-f", "--function", help="target function (default: this folder's name)")
    p.add_argument("-g", "--git-repo", help="repository: name, owner/name or URL "
                   "(default: this folder's name)")
    p.add_argument("-l", "--log-file", help="write the builder's full log to this file")
    p.add_argument("-p", "--profile", help="AWS profile")
    p.add_argument("-r", "--region", help="AWS region")
    p.add_argument("-t", "--timings", action="store_true", help="print a timing table per step")
    p.add_argument("-v", "--publish", dest="publish", action="store_true", default=None,
                   help="publish a version (the default)")
    p.add_argument("--no-publish", dest="publish", action="store_false",
                   help="update $LATEST only")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before deploying")
    p.add_argument("--build-file", help="build file relative to the repository")
    p.add_argument("--builder", help="builder function name (default: lambda3-builder)")
    p.add_argument("--bucket", help="artifact bucket for zips over 50 MB (local builder)")
    p.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    p.add_argument("--endpoint-url", help="AWS endpoint (e.g. the embedded emulator)")
    p.add_argument("--local-builder", action="store_true",
                   help="run the builder in this process instead of invoking it")
    p.add_argument("--json", action="store_true", help="print the builder's result as JSON")


def run(args: argparse.Namespace) -> int:
    from builder.errors import Lambda3Error
    from builder.redact import REDACTOR, install_log_redaction
    from lambda3.settings import resolve

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    install_log_redaction()
    try:
        settings = resolve(args)
        REDACTOR.add(settings.token)
        if not (args.yes or args.dry_run or args.json):
            if not _confirm(settings, args):
                return 1
        result = _execute(settings, args, "plan" if args.dry_run else "build")
    except Lambda3Error as error:
        print(REDACTOR(f"lambda3 deploy: {error.step}: {error}"), file=sys.stderr)
        return 1
    _report(result, args)
    return 0 if result.get("ok") else 1


def _event(settings, action: str) -> dict[str, Any]:
    return {"action": action, "repository": settings.repository, "ref": settings.ref,
            "function": settings.function, "build_file": settings.build_file,
            "components": list(settings.components), "alias": settings.alias,
            "publish": settings.publish, "bucket": settings.bucket, "token": settings.token}


def _execute(settings, args, action: str) -> dict[str, Any]:
    from builder.aws import Aws

    factory = _factory(settings)
    event = _event(settings, action)
    log_lines: list[str] = []
    if args.local_builder:
        result = _run_local(event, Aws(factory))
    else:
        from lambda3.remote import invoke_builder

        def show(line: str) -> None:
            log_lines.append(line)
            print(line, file=sys.stderr)

        result = invoke_builder(factory, settings.builder, event, on_log_line=show)
    if settings.log_file:
        Path(settings.log_file).write_text("\n".join(log_lines) + "\n")
    return result


def _factory(settings):
    import boto3

    from builder.aws import ClientFactory

    session = boto3.session.Session(profile_name=settings.profile, region_name=settings.region)
    return ClientFactory(region=settings.region, endpoint_url=settings.endpoint_url,
                         session=session)


def _run_local(event: dict[str, Any], aws) -> dict[str, Any]:
    from builder.errors import Lambda3Error
    from builder.handler import deploy_request
    from builder.request import parse_request
    from builder.timing import Timings

    timings = Timings()
    try:
        result = deploy_request(parse_request(event), timings, aws=aws)
    except Lambda3Error as error:
        result = {"ok": False, "error": error.to_dict()}
    result["timings"] = timings.as_dict()
    return result


def _confirm(settings, args) -> bool:
    plan = _execute(settings, args, "plan")
    if not plan.get("ok"):
        _report(plan, args)
        return False
    print(f"source:      {settings.repository}" + (f" @ {settings.ref}" if settings.ref else ""))
    print(f"commit:      {plan.get('commit')}")
    print(f"destination: {plan.get('function_arn') or settings.function + ' (new)'}")
    for line in plan.get("plan_text", []):
        print(f"  - {line}")
    if not sys.stdin.isatty():
        print("lambda3 deploy: not a terminal, pass -y to deploy without asking", file=sys.stderr)
        return False
    answer = input("Deploy? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _report(result: dict[str, Any], args) -> None:
    if args.json:
        print_json(result)
        return
    if not result.get("ok"):
        print(error_line(result.get("error", {})), file=sys.stderr)
        return
    print(components_table(result.get("components", [])))
    if args.dry_run:
        for line in result.get("plan_text", []):
            print(f"plan: {line}")
    print(f"function: {result.get('function_arn')}")
    print(f"version:  {result.get('version') or '$LATEST'}"
          + (f"  alias: {result['alias']}" if result.get("alias") else ""))
    if args.timings:
        print(timings_table(result.get("timings", {})))
