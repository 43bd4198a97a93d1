"""`lambda3 bootstrap`: create or update the builder in an AWS account, idempotently.

Creates (or brings up to date) the builder's role and least-privilege policy, the artifact
bucket and the builder function; then the builder installs its own toolchain natively in
Lambda. With --github-repo it also sets up GitHub OIDC trust: a deploy role that only that
repository's workflows can assume, and that may only invoke the builder. A second run
changes nothing and says so; after a lambda3 upgrade only the builder's code is updated.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from builder.contract import BuildRequest, BuildResult
from lambda3.output import print_json, table
from lambda3.settings import add_aws_arguments

DEFAULT_NAME = "lambda3-builder"


def add_parser(subparsers, summary: str) -> None:
    from builder.runtimes import ARCHITECTURES, RUNTIMES

    p = subparsers.add_parser("bootstrap", help=summary, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default=DEFAULT_NAME, help="builder function name "
                   "(default: %(default)s); the role is NAME-role, the layers NAME-toolchain "
                   "and NAME-seed")
    p.add_argument("--runtime", default="python3.12", choices=RUNTIMES,
                   help="the builder's runtime (default: %(default)s)")
    p.add_argument("--architecture", default="x86_64", choices=ARCHITECTURES,
                   help="the builder's architecture (default: %(default)s)")
    p.add_argument("--bucket", help="artifact bucket (default: "
                   "lambda3-artifacts-ACCOUNT-REGION), created if missing")
    p.add_argument("--allow", action="append", metavar="PATTERN",
                   help="function name pattern (* and ?) the builder may deploy to; repeat "
                   "for more (default: * = every function in the account and region)")
    p.add_argument("--pass-role", action="append", metavar="ROLE_PATTERN", default=[],
                   help="role name pattern the builder may pass to Lambda, which lets it "
                   "create functions with those roles (default: none, update only)")
    p.add_argument("--allow-host", action="append", metavar="HOST", default=[],
                   help="git host requests may fetch from (https only; a loopback host may "
                   "be http); repeat for more (default: github.com)")
    p.add_argument("--codeartifact", action="append", metavar="DOMAIN/REPOSITORY", default=[],
                   help="a CodeArtifact repository the builder may install packages from "
                   "(build file: layers.dependencies.codeartifact); repeat for more")
    p.add_argument("--github-repo", metavar="OWNER/REPO",
                   help="set up GitHub OIDC trust: a deploy role for this repository")
    p.add_argument("--github-releases", action="store_true",
                   help="let the GitHub deploy role also drive rollouts, promote and prune "
                   "on the allow-listed functions (never the builder)")
    p.add_argument("--github-ref", metavar="REF_PATTERN",
                   help="limit the deploy role to these subjects, e.g. ref:refs/heads/main "
                   "or environment:prod (default: * = any ref of the repository)")
    add_aws_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def config_from(args: argparse.Namespace):
    from bootstrap.config import BootstrapConfig
    from builder.errors import RequestError
    from builder.settings import DEFAULT_ALLOWED_HOSTS

    if args.github_ref and not args.github_repo:
        raise RequestError("--github-ref needs --github-repo")
    if getattr(args, "github_releases", False) and not args.github_repo:
        raise RequestError("--github-releases needs --github-repo")
    return BootstrapConfig(
        name=args.name, runtime=args.runtime, architecture=args.architecture,
        bucket=args.bucket, allow=tuple(args.allow or ("*",)),
        pass_roles=tuple(args.pass_role or ()), github_repo=args.github_repo,
        github_ref=args.github_ref or "*",
        github_releases=bool(getattr(args, "github_releases", False)),
        allowed_hosts=tuple(host.lower() for host in args.allow_host) or DEFAULT_ALLOWED_HOSTS,
        codeartifact=tuple(args.codeartifact),
    ).validate()


def run(args: argparse.Namespace) -> int:
    from lambda3.settings import aws_settings_of

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = config_from(args)
    aws = aws_settings_of(args)
    check_architecture(args.architecture, aws.endpoint_url)
    with tempfile.TemporaryDirectory(prefix="lambda3-bootstrap-") as work:
        result = _bootstrap(config, aws, Path(work))
    if args.json:
        print_json(result.to_json())
    else:
        print(report(result))
    return 0


def host_architecture() -> str:
    import platform

    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


def is_loopback(endpoint_url: str | None) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(endpoint_url or "").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def check_architecture(architecture: str, endpoint_url: str | None) -> None:
    """The emulator's local invoker runs functions on this machine's CPU."""
    from builder.errors import RequestError

    here = host_architecture()
    if is_loopback(endpoint_url) and architecture != here:
        raise RequestError(
            f"--architecture {architecture} cannot run on the emulator at {endpoint_url}: "
            f"its functions run on this machine's CPU ({here})",
            hint=f"pass --architecture {here} for the emulator, or bootstrap in AWS")


def _bootstrap(config, aws, workdir: Path):
    from bootstrap.run import bootstrap
    from builder.aws import Aws
    from lambda3.progress import readable
    from lambda3.remote import invoke_builder
    from lambda3.settings import connect

    clients = connect(aws)

    def show(line: str) -> None:
        print(f"  | {readable(line)}", file=sys.stderr)

    def invoke(request: BuildRequest) -> BuildResult:
        return invoke_builder(clients, config.name, request, on_log_line=show)

    def step(text: str) -> None:
        print(text, file=sys.stderr)

    return bootstrap(config, Aws(clients), invoke, workdir=workdir, on_step=step)


def report(result) -> str:
    """The resources and what this run did to each, then the notes and the workflow."""
    rows = [[c.resource, c.name, c.action, c.detail] for c in result.changes]
    lines = [table(["resource", "name", "change", "detail"], rows), ""]
    named = [("builder", result.builder_arn), ("role", result.role_arn),
             ("deploy role", result.scoped_role_arn), ("bucket", result.bucket),
             ("toolchain", result.toolchain_layer_arn)]
    lines += [f"{label + ':':<13}{value}" for label, value in named if value]
    lines += [f"note: {note}" for note in result.notes]
    if result.deploy_role_arn:
        lines += ["", "GitHub deploy role: " + result.deploy_role_arn,
                  "Workflow snippet:", "", result.workflow or ""]
    lines.append("nothing changed: everything was up to date" if not result.changed
                 else "bootstrap done")
    return "\n".join(lines)
