"""The builder's Lambda entry point: event -> steps -> JSON result.

This is the one place that catches broadly: whatever happens, the caller gets a
`builder.contract.BuildResult` (`ok: false` with the failing step for errors), and no
secret is in it.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import sys
from dataclasses import replace
from typing import Any

from builder.allowlist import check_allowed
from builder.contract import (
    CONTRACT,
    LAMBDA3_VERSION,
    MAX_LENGTH,
    MIN_CONTRACT,
    BuilderInfo,
    BuildRequest,
    BuildResult,
    Failure,
)
from builder.errors import Lambda3Error, RequestError
from builder.hosts import check_repository
from builder.indexes import register as register_index_credentials
from builder.redact import REDACTOR, install_log_redaction, register_own_credentials
from builder.settings import BuilderSettings
from builder.timing import Timings

log = logging.getLogger("lambda3.builder")
_MARKER = re.compile(r"[0-9a-f]{1,64}")


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    return handle(event)


def handle(event: Any, *, speaks: tuple[int, int] = (MIN_CONTRACT, CONTRACT)
           ) -> dict[str, Any]:
    """One request, answered as JSON; `speaks` is the range of contract versions this
    builder reads (oldest, newest). The answer is in the request's version, which its
    client reads (answers only gain optional fields); a request it could not read is
    answered in the newest. `builder.contract` is always the newest."""
    _setup_logging()
    settings = BuilderSettings.from_environ()
    _register_secrets(event)
    marker = event.get("log_marker") if isinstance(event, dict) else None
    if isinstance(marker, str) and _MARKER.fullmatch(marker):
        log.info("lambda3 request %s", marker)  # the client finds this log stream by it
    timings = Timings()
    action, answer_in = "build", speaks[1]
    try:
        with timings.step("request"):
            request = BuildRequest.from_event(event, speaks=speaks)
            action, answer_in = request.action, request.contract or speaks[1]
            check_request(request, settings)
        result = dispatch(request, settings, timings)
    except Lambda3Error as error:
        log.error("%s failed: %s", error.step, error)
        result = BuildResult.failed(error, action=action)
    except Exception as error:  # noqa: BLE001 - the handler must always answer
        log.exception("internal error")
        result = BuildResult(ok=False, action=action, error=Failure(
            step="internal", type=type(error).__name__, message=str(error)))
    result = replace(result, contract=answer_in, timings=timings.as_dict(),
                     builder=replace(builder_info(installers=action == "ping"),
                                     contract=speaks[1]))
    return json.loads(within_answer_limit(result))


# Lambda's synchronous response limit is 6 MB; leave room for the runtime's envelope.
MAX_ANSWER_BYTES = 5_500_000
MAX_WARNINGS = 100


def within_answer_limit(result: BuildResult, limit: int = MAX_ANSWER_BYTES) -> str:
    """The answer as redacted JSON, under Lambda's response limit: a too large answer keeps
    its first warnings and leaves out the plan's details (plan_text stays); if even that is
    too large, it is a failure saying so, rather than an answer Lambda would refuse."""
    text = REDACTOR(json.dumps(result.to_json()))
    if len(text.encode()) <= limit:
        return text
    warnings = result.warnings[:MAX_WARNINGS] + (
        f"{len(result.warnings) - MAX_WARNINGS} more warnings left out of the answer",
    ) if len(result.warnings) > MAX_WARNINGS else result.warnings
    smaller = replace(result, plan=(), warnings=warnings)
    text = REDACTOR(json.dumps(smaller.to_json()))
    if len(text.encode()) <= limit:
        return text
    failed = BuildResult(ok=False, action=result.action, contract=result.contract,
                         builder=result.builder, timings=result.timings, error=Failure(
                             step="result", type="AnswerTooLarge",
                             message=f"the builder's answer is {len(text.encode()):,} bytes, "
                                     f"over Lambda's 6 MB response limit (the build's log has "
                                     f"the details)"))
    return REDACTOR(json.dumps(failed.to_json()))


def _setup_logging() -> None:
    install_log_redaction()
    logging.getLogger().setLevel(logging.INFO)
    for chatty in ("botocore", "boto3", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _register_secrets(event: Any) -> None:
    """The request's token and the builder's own credentials never leave in an answer."""
    token = event.get("token") if isinstance(event, dict) else None
    if isinstance(token, str) and len(token) <= MAX_LENGTH["token"]:
        REDACTOR.add(token)
    if isinstance(event, dict) and isinstance(event.get("index_credentials"), dict):
        register_index_credentials(event["index_credentials"])
    register_own_credentials(os.environ)


def check_request(request: BuildRequest, settings: BuilderSettings) -> None:
    """What this builder refuses before fetching anything."""
    if request.action not in ("build", "plan"):
        return
    check_repository(request.repository, allowed_hosts=settings.allowed_hosts,
                     service=settings.service)
    if settings.own_name and request.function == settings.own_name:
        raise RequestError("the builder does not deploy itself: run `lambda3 bootstrap`")
    # the allow-list: once the build file names the functions (`_check_functions`)


def dispatch(request: BuildRequest, settings: BuilderSettings, timings: Timings) -> BuildResult:
    if request.action == "ping":
        return BuildResult(ok=True, action="ping")
    if request.action == "bootstrap":
        return _self_install(settings)
    return deploy_request(request, timings, settings=settings)


def _self_install(settings: BuilderSettings) -> BuildResult:
    from builder.selfinstall import self_install

    return BuildResult(ok=True, action="bootstrap",
                       toolchain=self_install(workdir=settings.work_path()))


def deploy_request(request: BuildRequest, timings: Timings, *,
                   settings: BuilderSettings | None = None, aws=None) -> BuildResult:
    """Build the request's ref, plan each function against AWS, and apply unless it is a
    plan: every function its own plan, version and alias, one fetch for all."""
    from builder.build import BuildOptions, build
    from builder.reconcile import share_layers

    settings = settings or BuilderSettings.from_environ()
    options = BuildOptions(repository=request.repository, ref=request.ref,
                           workdir=settings.work_path(), build_file=request.build_file,
                           components=request.components, token=request.token,
                           refresh=request.refresh, index_credentials=request.index_credentials,
                           functions=request.functions,
                           check=lambda views: _check_functions(views, request, settings))
    output = build(options, timings=timings)
    clients: dict[str, Any] = {}
    with timings.step("plan"):
        plans = share_layers([_plan_function(part, request, settings, aws, clients)
                              for part in output.each()])
    if len(plans) == 1:
        return _deploy_one(request, plans[0], clients[plans[0].key], timings)
    return _deploy_several(request, output, plans, clients, timings)


def _check_functions(views: list, request: BuildRequest, settings: BuilderSettings) -> None:
    """Every function the request would deploy is on the allow-list and is not the builder
    (checked once the build file names them, before anything is installed)."""
    from builder.reconcile import function_name

    for view in views:
        name = function_name(view, request.function, request.preview)
        if settings.own_name and name == settings.own_name:
            raise RequestError("the builder does not deploy itself: run `lambda3 bootstrap`")
        check_allowed(name, settings.allow)


def _plan_function(part, request: BuildRequest, settings: BuilderSettings, aws,
                   clients: dict[str, Any]):
    from builder.reconcile import FunctionPlan, destination_of, plan_deploy

    target = destination_of(part.spec, request.function, preview=request.preview,
                            repository=request.repository or "", alias=request.alias,
                            publish=request.publish, bucket=request.bucket or settings.bucket,
                            allow_older=request.allow_older, rollout=request.rollout)
    try:
        clients[part.key] = aws or _request_aws(settings, request, part, target)
        desired, plan = plan_deploy(clients[part.key], part, target)
    except Lambda3Error as error:
        raise _named(error, part, target.function) from None
    return FunctionPlan(part.key, part, target, desired, plan)


def _named(error: Lambda3Error, part, name: str) -> Lambda3Error:
    """The error, saying which function of `functions:` it is about."""
    if part.spec.function_at != ("function",) and not error.message.startswith("function "):
        error.message = f"function {part.key} ({name}): {error.message}"
    return error


def _deploy_one(request: BuildRequest, item, aws, timings: Timings) -> BuildResult:
    """One function: the result's own fields are that function's, as they always were."""
    from builder.reconcile import apply_function, function_result, result_of

    applied = rollout = None
    if request.deploys:
        try:
            with timings.step("apply"):
                applied, rollout = apply_function(aws, item, {})
        except Lambda3Error as error:
            raise _named(error, item.output, item.target.function) from None
    result = replace(result_of(item.output, item.desired, item.plan, applied, aws),
                     rollout=rollout)
    release = getattr(item.output.spec, "release", None)
    return replace(result, prune_keep=release.prune_keep if release else None,
                   functions=(function_result(item, result, deployed=applied is not None),))


def _deploy_several(request: BuildRequest, output, plans: list, clients: dict[str, Any],
                    timings: Timings) -> BuildResult:
    """Apply the functions in build-file order; after a failure, the others are left as
    they are (each alias too) and reported not deployed."""
    from builder.reconcile import apply_function, several_result

    results, failure, applied_by = [], None, {}
    for item in plans:
        aws = clients[item.key]
        if not request.deploys or failure is not None:
            results.append(_reported(item, aws))
            continue
        try:
            with timings.step("apply"):
                applied_by[item.key], rollout = apply_function(aws, item, applied_by)
        except Lambda3Error as error:
            failure = Failure.of(_named(error, item.output, item.target.function))
            results.append(_reported(item, aws, error=failure))
            continue
        results.append(_reported(item, aws, applied_by[item.key], rollout))
    release = getattr(output.spec, "release", None)
    return replace(several_result(request.action, output, results, failure),
                   prune_keep=release.prune_keep if release else None)


def _reported(item, aws, applied=None, rollout=None, error: Failure | None = None):
    """One function's part of the answer (what AWS holds now; its plan if not applied)."""
    from builder.contract import FunctionResult
    from builder.reconcile import function_result, result_of

    try:
        result = result_of(item.output, item.desired, item.plan, applied, aws)
    except Lambda3Error as failed:
        log.warning("reading %s for the result failed: %s", item.target.function, failed)
        return FunctionResult(key=item.key, name=item.target.function,
                              deployed=applied is not None, error=error)
    return function_result(item, replace(result, rollout=rollout),
                           deployed=applied is not None, error=error)


def _request_aws(settings: BuilderSettings, request: BuildRequest, part, target):
    """The AWS wrapper for one function's deploy calls: with a deploy role (bootstrap sets
    one), its credentials scoped by a session policy to that function and its layers,
    assumed only now, after the build's child processes are done."""
    from builder.aws import Aws
    from builder.reconcile import layer_names
    from builder.scope import role_account, scoped_clients, session_name, session_policy

    own = warm_aws(settings)
    if not settings.deploy_role:
        return own
    partition, account = role_account(settings.deploy_role)
    names = layer_names(part.spec, target.function, target.layer_base)
    policy = session_policy(
        region=own.region, account=account, partition=partition, function=target.function,
        layer_names=list(names.values()), bucket=request.bucket or settings.bucket,
        pass_role=part.spec.function.role)
    clients = scoped_clients(own.clients, role_arn=settings.deploy_role, policy=policy,
                             session_name=session_name(target.function,
                                                       request.log_marker or ""))
    return Aws(clients, sleep=own.sleep)


_AWS_CACHE: dict[tuple[str | None, str | None], object] = {}


def warm_aws(settings: BuilderSettings):
    """One AWS wrapper per region and endpoint for the life of this (warm) process: clients
    and their loaded service models are reused by the next invocation, as Lambda keeps
    module state between invocations of a warm function."""
    from builder.aws import Aws
    from builder.clients import Clients

    key = (settings.region, settings.endpoint_url)
    if key not in _AWS_CACHE:
        _AWS_CACHE[key] = Aws(Clients(region=settings.region,
                                      endpoint_url=settings.endpoint_url))
    return _AWS_CACHE[key]


def builder_info(*, installers: bool = False) -> BuilderInfo:
    """Who is answering; `installers` runs the installers to ask their versions (ping)."""
    found = {}
    if installers:
        from builder.install import available_installers

        found = available_installers()
    return BuilderInfo(
        contract=CONTRACT, version=LAMBDA3_VERSION, python=platform.python_version(),
        machine=platform.machine(), runtime=os.environ.get("AWS_EXECUTION_ENV"),
        executable=sys.executable, installers=found, toolchain=_toolchain_versions())


def _toolchain_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions = {}
    for name in ("dulwich", "PyYAML", "uv", "boto3", "botocore"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
