"""`lambda3 emulator [--port P]`: run the embedded AWS emulator in the foreground.

One endpoint serves moto's AWS APIs, and Lambda Invoke runs the function's handler locally.
Point any AWS client at it with the environment printed at start; stop it with Ctrl-C.
Every function's log lines are echoed here as they arrive."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

DEFAULT_PORT = 5000


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("emulator", help=summary, description=__doc__)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="port to listen on, 0 for any free port (default: %(default)s)")
    p.add_argument("--region", default="us-east-1", help="the region printed in the banner and "
                   "used for unsigned requests; every region is served (default: %(default)s)")
    p.add_argument("--state-dir", type=Path,
                   help="where unpacked code, layers and /tmp stand-ins live (default: a temp dir)")
    p.add_argument("--quiet", action="store_true", help="do not echo the functions' log lines")
    p.add_argument("--role", action="append", default=[], metavar="NAME",
                   help="create this Lambda execution role at start (repeatable), as an "
                   "account would have it, e.g. hello-lambda for examples/hello")


def _echo(function: str, line: str) -> None:
    print(f"[{function}] {line.replace(chr(13), chr(10) + ' ' * (len(function) + 3))}",
          flush=True)


def _banner(emulator) -> str:
    url = emulator.endpoint_url
    return "\n".join([
        f"lambda3 emulator listening on {url} (account {emulator.account})",
        f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=testing "
        f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={emulator.region}",
        "Press Ctrl-C to stop.",
    ])


LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


def create_execution_role(endpoint_url: str, region: str, name: str) -> str:
    """An execution role in the emulator's IAM (kept if it exists); its ARN."""
    import json

    from builder.clients import Clients

    iam = Clients(region=region, endpoint_url=endpoint_url, credentials={
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})("iam")
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name,
                               AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]


def run(args: argparse.Namespace) -> int:
    from lambda3.embedded.emulator import Emulator

    emulator = Emulator(host=args.host, port=args.port, state_dir=args.state_dir,
                        region=args.region, log_listener=None if args.quiet else _echo)
    try:
        emulator.start()
    except OSError as error:
        print(f"lambda3 emulator: cannot listen on {args.host}:{args.port}: {error} "
              "(pass --port 0 for any free port)", file=sys.stderr)
        return 1
    for name in args.role:
        create_execution_role(emulator.endpoint_url, emulator.region, name)
    stopping = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print(_banner(emulator), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    print("lambda3 emulator stopped", flush=True)
    return 0
