"""The builder's Lambda entry point: event -> steps -> JSON result.

This is the one place that catches broadly: whatever happens, the caller gets a JSON
answer (`ok: false` with the failing step for errors), and no secret is in it.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from builder.errors import Lambda3Error, RequestError
from builder.redact import REDACTOR, install_log_redaction
from builder.request import BuildRequest, allow_patterns, check_allowed, parse_request
from builder.timing import Timings

log = logging.getLogger("lambda3.builder")


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    install_log_redaction()
    logging.getLogger().setLevel(logging.INFO)
    for chatty in ("botocore", "boto3", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    token = event.get("token") if isinstance(event, dict) else None
    REDACTOR.add(token if isinstance(token, str) else None)
    timings = Timings()
    try:
        request = parse_request(event)
        if request.log_marker:
            log.info("lambda3 request %s", request.log_marker)
        result = _dispatch(request, timings)
    except Lambda3Error as error:
        log.error("%s failed: %s", error.step, error)
        result = {"ok": False, "error": error.to_dict()}
    except Exception as error:  # noqa: BLE001 - the handler must always answer
        log.exception("internal error")
        result = {"ok": False, "error": {"step": "internal", "type": type(error).__name__,
                                         "message": str(error), "file": None, "line": None,
                                         "key": None}}
    result["timings"] = timings.as_dict()
    return json.loads(REDACTOR(json.dumps(result)))


def _dispatch(request: BuildRequest, timings: Timings) -> dict[str, Any]:
    if request.action == "ping":
        return ping()
    if request.action == "bootstrap":
        from builder.selfinstall import self_install

        return self_install(workdir=workdir())
    own_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if own_name and request.function == own_name:
        raise RequestError("the builder does not deploy itself: run `lambda3 bootstrap`")
    check_allowed(request.function, allow_patterns(os.environ.get("LAMBDA3_ALLOW")))
    return deploy_request(request, timings)


def deploy_request(request: BuildRequest, timings: Timings, *, aws=None) -> dict[str, Any]:
    """Build the request's ref, plan against AWS, and apply unless it is a plan."""
    from builder.aws import Aws, ClientFactory
    from builder.build import BuildOptions, build
    from builder.reconcile import Destination, apply_plan, plan_deploy, result_of

    options = BuildOptions(source=request.repository, ref=request.ref, workdir=workdir(),
                           build_file=request.build_file, components=request.components,
                           token=request.token, refresh=request.refresh)
    output = build(options, timings=timings)
    aws = aws or _warm_aws(Aws, ClientFactory)
    target = Destination(request.function, request.alias, request.publish,
                    request.bucket or os.environ.get("LAMBDA3_BUCKET") or None)
    with timings.step("plan"):
        desired, plan = plan_deploy(aws, output, target)
    applied = None
    if request.deploys:
        with timings.step("apply"):
            applied = apply_plan(aws, plan)
    return result_of(output, desired, plan, applied, aws)


_AWS_CACHE: dict[tuple[str | None, str | None], object] = {}


def _warm_aws(aws_type, factory_type):
    """One AWS wrapper per region and endpoint for the life of this (warm) process: clients
    and their loaded service models are reused by the next invocation, as Lambda keeps
    module state between invocations of a warm function."""
    key = (os.environ.get("AWS_REGION"), os.environ.get("LAMBDA3_ENDPOINT_URL")
           or os.environ.get("AWS_ENDPOINT_URL"))
    if key not in _AWS_CACHE:
        _AWS_CACHE[key] = aws_type(factory_type())
    return _AWS_CACHE[key]


def workdir() -> Path:
    """Where sources, caches and zips live: LAMBDA3_WORKDIR, else /tmp/lambda3 (in Lambda,
    /tmp is the only writable place and survives while the function stays warm)."""
    configured = os.environ.get("LAMBDA3_WORKDIR")
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "lambda3"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ping() -> dict[str, Any]:
    from builder.install import available_installers

    return {
        "ok": True,
        "action": "ping",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runtime": os.environ.get("AWS_EXECUTION_ENV"),
        "installers": available_installers(),
        "toolchain": _toolchain_versions(),
        "executable": sys.executable,
    }


def _toolchain_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions = {}
    for name in ("dulwich", "PyYAML", "uv", "boto3", "botocore"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
