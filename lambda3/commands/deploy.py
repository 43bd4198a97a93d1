"""`lambda3 deploy`: build a ref and deploy it through the builder (the successor of
deploy.sh, with its flags). By default the remote builder function does the work;
`--local-builder` runs the same builder code in this process."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from builder.contract import BuildRequest, BuildResult
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
            settings = _confirm(settings, args)
            if settings is None:
                return 1
        result = _execute(settings, args, "plan" if args.dry_run else "build")
    except Lambda3Error as error:
        print(REDACTOR(f"lambda3 deploy: {error.step}: {error}"), file=sys.stderr)
        return 1
    _report(result, args)
    return 0 if result.ok else 1


def build_request(settings, action: str) -> BuildRequest:
    return BuildRequest(
        action=action, repository=settings.repository, ref=settings.ref,
        function=settings.function, build_file=settings.build_file,
        components=tuple(settings.components), alias=settings.alias,
        publish=settings.publish, bucket=settings.bucket, token=settings.token,
        allow_older=bool(getattr(settings, "allow_older", False)))


def _execute(settings, args, action: str) -> BuildResult:
    clients = _clients(settings)
    request = build_request(settings, action)
    log_lines: list[str] = []
    if args.local_builder:
        result = run_local(request, clients)
    else:
        from lambda3.remote import invoke_builder

        def show(line: str) -> None:
            log_lines.append(line)
            print(line, file=sys.stderr)

        result = invoke_builder(clients, settings.builder, request, on_log_line=show)
    if settings.log_file:
        Path(settings.log_file).write_text("\n".join(log_lines) + "\n")
    return result


def _clients(settings):
    from builder.clients import Clients

    return Clients(region=settings.region, endpoint_url=settings.endpoint_url,
                   profile=settings.profile)


def run_local(request: BuildRequest, clients) -> BuildResult:
    """The builder's deploy path in this process (`--local-builder`)."""
    from builder.aws import Aws
    from builder.errors import Lambda3Error
    from builder.handler import builder_info, deploy_request
    from builder.timing import Timings

    timings = Timings()
    try:
        result = deploy_request(request, timings, aws=Aws(clients))
    except Lambda3Error as error:
        result = BuildResult.failed(error, action=request.action)
    return replace(result, builder=builder_info(), timings=timings.as_dict())


def _confirm(settings, args):
    """Plan, show it and ask; the settings to deploy (pinned to the commit shown), or None."""
    plan = _execute(settings, args, "plan")
    if not plan.ok:
        _report(plan, args)
        return None
    print(f"source:      {settings.repository}" + (f" @ {settings.ref}" if settings.ref else ""))
    print(f"commit:      {plan.commit}")
    print(f"destination: {plan.function_arn or settings.function + ' (new)'}")
    for line in plan.plan_text:
        print(f"  - {line}")
    if not sys.stdin.isatty():
        print("lambda3 deploy: not a terminal, pass -y to deploy without asking", file=sys.stderr)
        return None
    answer = input("Deploy? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        return None
    # Deploy exactly the commit that was shown, even if the branch moves meanwhile.
    return replace(settings, ref=plan.commit) if plan.commit else settings


def _report(result: BuildResult, args) -> None:
    if args.json:
        print_json(result.to_json())
        return
    if not result.ok:
        print(error_line(result.error), file=sys.stderr)
        return
    print(components_table(result.components))
    if args.dry_run:
        for line in result.plan_text:
            print(f"plan: {line}")
    print(f"function: {result.function_arn or (result.function or '') + ' (new)'}")
    print(f"version:  {result.version or '$LATEST'}"
          + (f"  alias: {result.alias}" if result.alias else ""))
    if args.timings:
        print(timings_table(result.timings))
