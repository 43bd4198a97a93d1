"""`lambda3 invoke FUNCTION [--event JSON] [--qualifier Q]`: one synchronous Invoke, against
AWS or the embedded emulator (`--endpoint-url`). The function's answer goes to stdout, the
tail of its log (the last 4 KB) to stderr; the exit status is 1 when the function failed."""
from __future__ import annotations

import argparse
import base64
import json
import sys

# Longer than Lambda's 15-minute maximum: a slow function must not be invoked twice.
READ_TIMEOUT = 960


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("invoke", help=summary, description=__doc__)
    p.add_argument("function", help="function name or ARN (optionally NAME:QUALIFIER)")
    p.add_argument("-e", "--event", default="{}",
                   help="the event as JSON, or @FILE to read it from a file (default: {})")
    p.add_argument("-q", "--qualifier", help="version or alias to invoke")
    p.add_argument("-p", "--profile", help="AWS profile")
    p.add_argument("-r", "--region", help="AWS region")
    p.add_argument("--endpoint-url", help="AWS endpoint (e.g. the embedded emulator)")


def read_event(text: str) -> bytes:
    """The event's bytes; raises ValueError when it is not JSON."""
    if text.startswith("@"):
        with open(text[1:], "rb") as f:
            raw = f.read()
    else:
        raw = text.encode("utf-8")
    json.loads(raw)
    return raw


def invoke(client, function: str, event: bytes, qualifier: str | None) -> dict:
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    response = client.invoke(FunctionName=function, Payload=event, LogType="Tail", **kwargs)
    return {
        "payload": response["Payload"].read(),
        "function_error": response.get("FunctionError"),
        "log": base64.b64decode(response.get("LogResult") or "").decode("utf-8", "replace"),
        "version": response.get("ExecutedVersion", ""),
    }


def run(args: argparse.Namespace) -> int:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        event = read_event(args.event)
    except (OSError, ValueError) as error:
        print(f"lambda3 invoke: --event is not JSON: {error}", file=sys.stderr)
        return 2
    config = Config(read_timeout=READ_TIMEOUT, retries={"total_max_attempts": 1})
    try:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        client = session.client("lambda", endpoint_url=args.endpoint_url, config=config)
        answer = invoke(client, args.function, event, args.qualifier)
    except (BotoCoreError, ClientError) as error:
        print(f"lambda3 invoke: {error}", file=sys.stderr)
        return 1
    # Multi-line log records (tracebacks) join their lines with \r, as Lambda writes them.
    sys.stderr.write(answer["log"].replace("\r", "\n"))
    print(answer["payload"].decode("utf-8", "replace"))
    if answer["function_error"]:
        print(f"lambda3 invoke: {args.function} (version {answer['version']}) failed: "
              f"{answer['function_error']}", file=sys.stderr)
        return 1
    return 0
