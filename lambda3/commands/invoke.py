"""`lambda3 invoke FUNCTION [--event JSON] [--qualifier Q] [--cold]`: one synchronous Invoke,
against AWS or the embedded emulator (`--endpoint-url`). The function's answer goes to stdout,
the tail of its log (the last 4 KB) to stderr; the exit status is 1 when the function failed.
With `--cold` (embedded emulator only) the function starts cold: new process, empty /tmp."""
from __future__ import annotations

import argparse
import base64
import json
import sys

from lambda3.settings import add_aws_arguments

# Longer than Lambda's 15-minute maximum: a slow function must not be invoked twice.
READ_TIMEOUT = 960


def add_parser(subparsers, summary: str) -> None:
    p = subparsers.add_parser("invoke", help=summary, description=__doc__)
    p.add_argument("function", help="function name or ARN (optionally NAME:QUALIFIER)")
    p.add_argument("-e", "--event", default="{}",
                   help="the event as JSON, or @FILE to read it from a file (default: {})")
    p.add_argument("-q", "--qualifier", help="version or alias to invoke")
    add_aws_arguments(p)
    p.add_argument("--cold", action="store_true",
                   help="start the function cold first (embedded emulator only): its warm "
                        "environments end and its /tmp is wiped")


def read_event(text: str) -> bytes:
    """The event's bytes; raises ValueError when it is not JSON."""
    if text.startswith("@"):
        with open(text[1:], "rb") as f:
            raw = f.read()
    else:
        raw = text.encode("utf-8")
    json.loads(raw)
    return raw


def start_cold(endpoint_url: str, function: str) -> None:
    """Ask the embedded emulator to end the function's warm environments."""
    import urllib.error
    import urllib.parse
    import urllib.request

    if urllib.parse.urlsplit(endpoint_url).scheme not in ("http", "https"):
        raise ValueError(f"--endpoint-url must be an http(s) URL: {endpoint_url}")
    url = (f"{endpoint_url.rstrip('/')}/_lambda3/functions/"  # a name or ARN: it parses it
           f"{urllib.parse.quote(function, safe='')}/cold")
    request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 - checked
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - checked
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 204:
        raise ValueError(f"{endpoint_url} is not a lambda3 emulator (it answered {status})")


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
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from lambda3.settings import aws_settings_of, connect

    try:
        event = read_event(args.event)
    except (OSError, ValueError) as error:
        print(f"lambda3 invoke: --event is not JSON: {error}", file=sys.stderr)
        return 2
    aws = aws_settings_of(args)
    if args.cold and not aws.endpoint_url:
        print("lambda3 invoke: --cold works with the embedded emulator only (pass "
              "--endpoint-url or set LAMBDA3_ENDPOINT_URL)", file=sys.stderr)
        return 2
    config = Config(read_timeout=READ_TIMEOUT, retries={"total_max_attempts": 1})
    try:
        if args.cold:
            start_cold(aws.endpoint_url, args.function)
        client = connect(aws).client("lambda", config=config)
        answer = invoke(client, args.function, event, args.qualifier)
    except (ClientError, OSError, ValueError) as error:
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
