"""The AWS/Lambda metrics of each local invocation, in the emulator's CloudWatch.

Lambda publishes `Invocations`, `Errors`, `Duration` (and `Throttles`, which the local
invoker never causes) for every invocation: by `FunctionName`; with a qualifier also by
`FunctionName` and `Resource` (`name:qualifier`); through an alias also by `FunctionName`,
`Resource` and `ExecutedVersion`, the version the alias's weights chose. moto's CloudWatch
takes them as PutMetricData would, so alarms on them and a rollout's error guard
(`lambda3.rollout`) see what the functions really did.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

log = logging.getLogger(__name__)
NAMESPACE = "AWS/Lambda"


def dimensions(name: str, qualifier: str | None, version: str,
               through_alias: bool) -> list[dict[str, str]]:
    """The invocation's most specific dimension set. moto's CloudWatch matches a query whose
    dimensions are a subset of a datum's, so this one datum also counts, once, in the
    `FunctionName` and the `FunctionName`+`Resource` figures, as Lambda's separate
    dimension sets do."""
    found = [{"Name": "FunctionName", "Value": name}]
    if qualifier:
        found.append({"Name": "Resource", "Value": f"{name}:{qualifier}"})
        if through_alias:
            found.append({"Name": "ExecutedVersion", "Value": version})
    return found


def metric_data(name: str, qualifier: str | None, version: str, through_alias: bool, *,
                failed: bool, duration_ms: float, at: datetime | None = None) -> list[dict]:
    """PutMetricData's MetricData for one invocation (naive UTC times, as moto keeps)."""
    at = at or datetime.now(timezone.utc).replace(tzinfo=None)
    values = (("Invocations", 1.0, "Count"), ("Errors", 1.0 if failed else 0.0, "Count"),
              ("Duration", float(duration_ms), "Milliseconds"))
    where = dimensions(name, qualifier, version, through_alias)
    return [{"MetricName": metric, "Value": value, "Unit": unit, "Dimensions": where,
             "Timestamp": at} for metric, value, unit in values]


def publish(account: str, region: str, data: list[dict]) -> None:
    """Into moto's CloudWatch of that account and region (this process's)."""
    try:
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[account][region].put_metric_data(NAMESPACE, data)
    except Exception as error:  # noqa: BLE001 - metrics never fail an invocation
        log.warning("the invocation's metrics were not recorded: %s", error)
