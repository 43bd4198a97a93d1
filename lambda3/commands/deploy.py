"""`lambda3 deploy`: build a ref and deploy it through the builder (the successor of
deploy.sh, with its flags). By default the remote builder function does the work;
`--local-builder` runs the same builder code in this process."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from builder.contract import BuildRequest, BuildResult
from lambda3.output import components_table, error_line, print_json, timings_table
from lambda3.settings import add_aws_arguments, read_index_credentials


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("deploy", help=summary, description=__doc__)
    p.add_argument("source", nargs="?", help="git URL, owner/name or local path (same as -g)")
    p.add_argument("components", nargs="*", metavar="COMPONENT",
                   help="deploy only these: function, dependencies, or a layer's name")
    p.add_argument("-a", "--alias", help="create or move this alias to the new version")
    p.add_argument("-b", "--ref", help="branch, tag or commit SHA (default: the remote HEAD)")
    p.add_argument("-c", "--config", help="config file (default: ./config.ini when it exists)")
    p.add_argument("-f", "--function", help="target function (default: this folder's name)")
    p.add_argument("-g", "--git-repo", help="repository: name, owner/name or URL "
                   "(default: this folder's name)")
    p.add_argument("-l", "--log-file", help="write the builder's full log to this file")
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
    p.add_argument("--only", action="append", default=[], metavar="KEY",
                   help="deploy only this function of the build file's `functions:` "
                   "(repeatable; default: all)")
    p.add_argument("--rollout", help="all-at-once, canary <percent> <minutes> or linear "
                   "<percent> every <minutes> (default: the build file's rollout)")
    p.add_argument("--preview", type=int, metavar="N",
                   help="deploy as pull request N's preview: each function as <name>-pr-N, "
                        "tagged with N and the repository")
    p.add_argument("--allow-older", action="store_true",
                   help="move the alias even to an older build than the one it points at")
    p.add_argument("--index-credentials-env", metavar="VAR",
                   help="environment variable holding private index credentials as JSON "
                   '{"host": "user:password"} (default: LAMBDA3_INDEX_CREDENTIALS)')
    p.add_argument("--local-builder", action="store_true",
                   help="run the builder in this process instead of invoking it")
    p.add_argument("--json", action="store_true", help="print the builder's result as JSON")
    add_aws_arguments(p, config=False)


def run(args: argparse.Namespace) -> int:
    from builder.redact import REDACTOR
    from lambda3.progress import capture, console
    from lambda3.settings import resolve

    settings = resolve(args)
    REDACTOR.add(settings.token)
    check_source(settings, args)
    log = _RemoteLog(settings.log_file if not args.local_builder else None)
    phase = _Phase()
    try:
        with console(json_mode=args.json), capture(settings.log_file if args.local_builder
                                                   else None):
            if not (args.yes or args.dry_run):
                settings = _confirm(settings, args, log, phase)
                if settings is None:
                    return 1
            phase.now = "plan" if args.dry_run else "deploy"
            result = _execute(settings, args, "plan" if args.dry_run else "build", log)
    except KeyboardInterrupt:
        print(f"lambda3 deploy: interrupted: {phase.interrupted(settings, args)}",
              file=sys.stderr)
        return 130
    finally:
        log.write()
    _report(result, args, settings)
    if result.ok and not args.dry_run:
        return _after(settings, result)
    return 0 if result.ok else 1


def _after(settings, result: BuildResult) -> int:
    """The rollout the builder started, driven to its end; `prune: {keep: N}` after."""
    from builder.aws import Aws
    from builder.errors import Lambda3Error
    from lambda3.rollout import after_deploy
    from lambda3.settings import connect

    try:
        aws = Aws(connect(settings.aws))
        for one in result.each_function():  # each function of `functions:` on its own
            after_deploy(aws, one, show=lambda line: print(line, file=sys.stderr))
    except Lambda3Error as error:
        print(f"lambda3 deploy: {error.step}: {error}", file=sys.stderr)
        return 1
    return 0


def check_source(settings, args) -> None:
    """The builder in AWS cannot read this machine's files."""
    from builder.errors import RequestError

    if settings.source_is_local and not args.local_builder:
        raise RequestError(
            f"{settings.repository} is a local path, which the builder in AWS cannot read",
            hint="add --local-builder to build it in this process, or push it and pass "
                 "-g OWNER/NAME or a git URL")


class _Phase:
    """Where a deploy is, for what an interrupt means."""

    now = "plan"

    def interrupted(self, settings, args) -> str:
        if self.now == "prompt":
            return "nothing was deployed"
        if self.now == "plan":
            return "only a plan was being made: nothing was changed"
        if args.local_builder:
            return ("the deploy in this process stopped where it was; the alias moves last, "
                    "so it has not moved unless the deploy had finished; re-run to complete it")
        region = f" --region {settings.region}" if settings.region else ""
        return (f"the builder {settings.builder} goes on with this deploy in AWS: follow it "
                f"with `aws logs tail /aws/lambda/{settings.builder} --follow{region}`, "
                f"then check the function {settings.function}")


class _RemoteLog:
    """The remote builder's log lines, shown readable and written in full to `-l FILE`."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lines: list[str] = []

    def show(self, line: str) -> None:
        from lambda3.progress import readable

        self.lines.append(line)
        print(readable(line), file=sys.stderr, flush=True)

    def write(self) -> None:
        if self.path:
            Path(self.path).write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def build_request(settings, action: str) -> BuildRequest:
    return BuildRequest(
        action=action, repository=settings.repository, ref=settings.ref,
        function=settings.function, build_file=settings.build_file,
        components=tuple(settings.components), alias=settings.alias,
        publish=settings.publish, bucket=settings.bucket, token=settings.token,
        allow_older=bool(getattr(settings, "allow_older", False)))


def _execute(settings, args, action: str, log: _RemoteLog) -> BuildResult:
    from lambda3.settings import connect

    clients = connect(settings.aws)
    request = replace(build_request(settings, action), rollout=getattr(args, "rollout", None),
                      functions=tuple(getattr(args, "only", None) or ()),
                      preview=getattr(args, "preview", None),
                      allow_older=bool(getattr(args, "allow_older", False)),
                      index_credentials=read_index_credentials(
                          getattr(args, "index_credentials_env", None)))
    if args.local_builder:
        return run_local(request, clients)
    from lambda3.remote import invoke_builder

    return invoke_builder(clients, settings.builder, request, on_log_line=log.show,
                          builder_timeout=builder_timeout())


def builder_timeout() -> int:
    """Seconds the builder may run (`LAMBDA3_BUILDER_TIMEOUT`, default 900: Lambda's most)."""
    import os

    from builder.clients import ConfigError

    value = os.environ.get("LAMBDA3_BUILDER_TIMEOUT", "").strip() or "900"
    if not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"LAMBDA3_BUILDER_TIMEOUT={value!r} is not a number of seconds",
                          hint="set it to the builder's timeout, e.g. 900, or unset it")
    return int(value)


def run_local(request: BuildRequest, clients) -> BuildResult:
    """The builder's deploy path in this process (`--local-builder`)."""
    from builder.aws import Aws
    from builder.errors import Lambda3Error
    from builder.handler import builder_info, deploy_request
    from builder.timing import Timings

    timings = Timings()
    try:  # read as the builder in AWS reads it, with the same checks
        result = deploy_request(BuildRequest.from_event(request.to_event()), timings,
                                aws=Aws(clients))
    except Lambda3Error as error:
        result = BuildResult.failed(error, action=request.action)
    return replace(result, builder=builder_info(), timings=timings.as_dict())


def _confirm(settings, args, log: _RemoteLog, phase: _Phase):
    """Plan, show it and ask; the settings to deploy (pinned to the commit shown), or None."""
    plan = _execute(settings, args, "plan", log)
    if not plan.ok:
        _report(plan, args, settings)
        return None
    out = sys.stderr if args.json else sys.stdout  # --json keeps stdout for the result
    print(f"source:      {settings.repository}" + (f" @ {settings.ref}" if settings.ref else ""),
          file=out)
    print(f"commit:      {plan.commit or '(not a git repository)'}", file=out)
    several = ", ".join(f.arn or f"{f.name} (new)" for f in plan.functions) \
        if len(plan.functions) > 1 else None
    print(f"destination: {several or plan.function_arn or settings.function + ' (new)'}",
          file=out)
    for line in plan.plan_text:
        print(f"  - {line}", file=out)
    if not sys.stdin.isatty():
        print("lambda3 deploy: not a terminal, pass -y to deploy without asking", file=sys.stderr)
        return None
    phase.now = "prompt"
    try:
        print("Deploy? [y/N] ", end="", file=out, flush=True)  # stderr with --json
        answer = input().strip().lower()
    except EOFError:
        answer = ""
    if answer not in ("y", "yes"):
        print("lambda3 deploy: not deployed", file=sys.stderr)
        return None
    # Deploy exactly the commit that was shown, even if the branch moves meanwhile.
    return replace(settings, ref=plan.commit) if plan.commit else settings


def _report(result: BuildResult, args, settings) -> None:
    if args.json:
        print_json(result.to_json())
        return
    if len(result.functions) > 1:
        _report_several(result, args)
        return
    if not result.ok:
        print(error_line(result.error), file=sys.stderr)
        return
    print(components_table(result.components))
    if args.dry_run:
        for line in result.plan_text:
            print(f"plan: {line}")
    function = result.function or settings.function
    print(f"function: {result.function_arn or function + ' (new)'}")
    if args.dry_run:
        print("version:  none (dry run: nothing was published)")
    else:
        print(f"version:  {result.version or '$LATEST'}"
              + (f"  alias: {result.alias}" if result.alias else ""))
    if result.function_url:
        print(f"url:      {result.function_url}")
    if args.timings:
        print(timings_table(result.timings))


def _report_several(result: BuildResult, args) -> None:
    """One block per function of `functions:`: where it is now, its components, its plan."""
    if not result.ok:
        print(error_line(result.error), file=sys.stderr)
    for function in result.functions:
        state = ("failed" if function.error else "deployed" if function.deployed
                 else "planned" if args.dry_run or result.action == "plan" else "not deployed")
        alias = f"  alias: {function.alias}" if function.deployed and function.alias else ""
        print(f"{function.key}: {function.arn or function.name + ' (new)'}  version: "
              f"{function.version or '-'}{alias}  [{state}]")
        if function.function_url:
            print(f"  url: {function.function_url}")
        if function.components:
            print(components_table(function.components))
        for line in function.plan_text if args.dry_run else ():
            print(f"  plan: {line}")
    if args.timings:
        print(timings_table(result.timings))
