"""Provisioned concurrency (Put/Get/Delete/ListProvisionedConcurrencyConfigs), as Lambda does it.

A config belongs to an alias or a published version, never to ``$LATEST`` nor to an alias
on it. A put answers IN_PROGRESS with nothing allocated; `ready_after` seconds later the
config is READY with all of it allocated and available. An alias that now points at another
version than the one allocated for is allocated again: IN_PROGRESS, then READY. An alias
gets no config while the version it points at has one, and a version none while an alias on
it has one; a function's configs together stay within its reserved concurrency.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lambda3.embedded.lambda_extras.targets import VERSION, Missing, Records, Target, find
from lambda3.embedded.lambda_extras.targets import function_arn as make_arn
from lambda3.embedded.lambda_extras.wire import (
    Answer,
    ApiError,
    Request,
    conflict,
    invalid,
    lambda_date,
    not_found,
    page,
)

UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_PUBLISHED = "The function resource provided must be an alias or a published version."
NO_CONFIG = "No Provisioned Concurrency Config found for this function"
ALIAS_ON_PROVISIONED_VERSION = ("Alias can't be used for Provisioned Concurrency configuration "
                                "on an already Provisioned version")
VERSION_UNDER_PROVISIONED_ALIAS = "Version is pointed by a Provisioned Concurrency alias"
OVER_RESERVED = ("Requested Provisioned Concurrency should not be greater than the "
                 "reservedConcurrentExecution for function")


@dataclass
class _Config:
    requested: int
    version: str | None  # the version the concurrency is allocated on
    ready_at: float
    last_modified: str


class ProvisionedConcurrency:
    def __init__(self, ready_after: float, clock: Callable[[], float] = time.monotonic):
        self.ready_after = ready_after
        self.clock = clock
        self.records = Records()

    def put(self, request: Request) -> Answer:
        wanted = request.body.get("ProvisionedConcurrentExecutions")
        if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 1:
            raise ApiError("ValidationException", (
                f"1 validation error detected: Value '{wanted}' at "
                "'provisionedConcurrentExecutions' failed to satisfy constraint: Member must "
                "have value greater than or equal to 1"))
        if request.qualifier in (None, "$LATEST"):
            raise invalid(UNPUBLISHED)
        target = self._target(request)
        if target.version == "$LATEST":  # an alias on the unpublished version
            raise invalid(UNPUBLISHED)
        self._refuse_conflicts(target)
        self._refuse_over_reserved(target, wanted)
        config = _Config(wanted, target.version, self.clock() + self.ready_after, lambda_date())
        self.records.put(target, config)
        return Answer(202, self._view(config, target))

    def get(self, request: Request) -> Answer:
        target = self._published(request)
        config = self.records.get(target)
        if config is None:
            raise ApiError("ProvisionedConcurrencyConfigNotFoundException", NO_CONFIG)
        return Answer(200, self._view(config, target))

    def delete(self, request: Request) -> Answer:
        self.records.pop(self._published(request))  # Lambda: nothing to delete is no error
        return Answer(204)

    def list(self, request: Request) -> Answer:
        try:
            function = find(request.account, request.region, request.function)
        except Missing:
            arn = make_arn(request.account, request.region, request.function)
            raise not_found(f"Function not found: {arn}") from None
        items = [{"FunctionArn": target.arn, **self._view(config, target)}
                 for target, config in self._configs(function)]
        return Answer(200, page(items, request.query, "ProvisionedConcurrencyConfigs"))

    def _published(self, request: Request) -> Target:
        if request.qualifier in (None, "$LATEST"):
            raise invalid(NOT_PUBLISHED)
        return self._target(request)

    @staticmethod
    def _target(request: Request) -> Target:
        qualifier = request.qualifier or ""
        try:
            return find(request.account, request.region, request.function, qualifier)
        except Missing:
            arn = make_arn(request.account, request.region, request.function, qualifier)
            if VERSION.match(qualifier):
                raise not_found(f"Function not found: {arn}") from None
            raise not_found(f"Cannot find alias arn: {arn}") from None

    def _configs(self, target: Target):
        def resolve(qualifier):
            return find(target.account, target.region, target.function, qualifier)
        return self.records.of_function(target, resolve)

    def _refuse_conflicts(self, target: Target) -> None:
        others = {other.qualifier: other for other, _ in self._configs(target)}
        if target.is_alias and target.version in others:
            raise conflict(ALIAS_ON_PROVISIONED_VERSION)
        if not target.is_alias and any(
                other.is_alias and other.version == target.qualifier
                for other in others.values()):
            raise conflict(VERSION_UNDER_PROVISIONED_ALIAS)

    def _refuse_over_reserved(self, target: Target, wanted: int) -> None:
        reserved = getattr(target.latest, "reserved_concurrency", None)
        if reserved is None:
            return
        taken = sum(config.requested for other, config in self._configs(target)
                    if other.qualifier != target.qualifier)
        if taken + wanted > int(reserved):
            raise invalid(OVER_RESERVED)

    def _view(self, config: _Config, target: Target) -> dict:
        now = self.clock()
        if target.version != config.version:  # the alias moved: allocate on its new version
            config.version, config.ready_at = target.version, now + self.ready_after
        ready = now >= config.ready_at
        allocated = config.requested if ready else 0
        return {"RequestedProvisionedConcurrentExecutions": config.requested,
                "AvailableProvisionedConcurrentExecutions": allocated,
                "AllocatedProvisionedConcurrentExecutions": allocated,
                "Status": "READY" if ready else "IN_PROGRESS",
                "LastModified": config.last_modified}

