"""Driving a rollout from the client: read the state the alias records, watch the alarms
and both versions' Errors / Throttles, move the weights, complete or roll back.

The builder starts a rollout (the version published, the first weight set, the state on the
alias: `builder.rollout`) and returns; this module does the rest with short calls, so any
process can drive it, continue it after a crash, or abort it. Every UpdateAlias carries the
alias's RevisionId when Lambda gives one; a refused one means another client moved the
alias: read again and decide again. Time and sleep are injected.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from builder import rollout as model
from builder.aws import Aws, ConcurrentChangeError
from builder.errors import AwsError
from builder.rollout import Check, Figures, Health, RolloutError, RolloutState

METRICS = ("Invocations", "Errors", "Throttles")
MAX_CONFLICTS = 5  # refused RevisionIds in a row before giving up


@dataclass(frozen=True)
class Alias:
    version: str
    weights: Mapping[str, float]
    revision_id: str | None
    state: RolloutState | None


@dataclass
class Driver:
    aws: Aws
    function: str
    alias: str
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    show: Callable[[str], None] = print
    poll: float = 30.0
    history: list[str] = field(default_factory=list)  # every line shown, for a summary

    # -- reading ----------------------------------------------------------------------------
    def read(self) -> Alias:
        found = self.aws.call("lambda", "get_alias", FunctionName=self.function, Name=self.alias)
        weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return Alias(found["FunctionVersion"], dict(weights), found.get("RevisionId"),
                     model.decode(found.get("Description")))

    def current(self, alias: Alias | None = None) -> RolloutState:
        """The recorded rollout, checked against where the alias really points."""
        alias = alias or self.read()
        state = alias.state
        if state is None:
            raise RolloutError(f"alias {self.alias} of {self.function} records no rollout",
                               hint="start one with `lambda3 deploy --rollout ...` or "
                                    "`lambda3 promote --rollout ...`")
        if not state.final and not model.matches(state, alias.version, alias.weights):
            raise RolloutError(
                f"alias {self.alias} of {self.function} was moved outside its rollout (it "
                f"points at version {alias.version}, the rollout of {state.old} -> "
                f"{state.new} expects {state.routing()[0]}): the recorded rollout is stale",
                hint="deploy again to start a new one; nothing was changed")
        return state

    def health(self, state: RolloutState) -> Health:
        return Health(self.alarm_states(state.alarms), self._figures(state, state.new),
                      self._figures(state, state.old))

    def alarm_states(self, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        found = self.aws.call("cloudwatch", "describe_alarms", AlarmNames=list(names))
        alarms = list(found.get("MetricAlarms") or []) + list(found.get("CompositeAlarms") or [])
        return {a["AlarmName"]: a["StateValue"] for a in alarms}

    def _figures(self, state: RolloutState, version: str) -> Figures:
        begin, finish = state.started - 60, max(self.clock(), state.started) + 60
        start, end = (datetime.fromtimestamp(t, timezone.utc) for t in (begin, finish))
        period = 60 * max(1, math.ceil((finish - begin) / 60 / 1000))  # at most 1440 points
        dimensions = [{"Name": "FunctionName", "Value": self.function},
                      {"Name": "Resource", "Value": f"{self.function}:{self.alias}"},
                      {"Name": "ExecutedVersion", "Value": version}]
        sums = {}
        for metric in METRICS:
            found = self.aws.call("cloudwatch", "get_metric_statistics", Namespace="AWS/Lambda",
                                  MetricName=metric, Dimensions=dimensions, StartTime=start,
                                  EndTime=end, Period=period, Statistics=["Sum"])
            sums[metric] = sum(point.get("Sum", 0.0) for point in found.get("Datapoints", []))
        return Figures(sums["Invocations"], sums["Errors"], sums["Throttles"])

    # -- moving -----------------------------------------------------------------------------
    def write(self, state: RolloutState, revision_id: str | None) -> None:
        self.aws.call("lambda", "update_alias", idempotent=False,
                      **model.update_alias_args(self.function, self.alias, state, revision_id))

    def say(self, line: str) -> None:
        self.history.append(line)
        self.show(line)

    def run(self, checks: Sequence[Check] = (),
            post_checks: Sequence[Check] = ()) -> RolloutState:
        """Drive the rollout to its end: the final state, or `RolledBack` naming why.
        `checks` run before any traffic moves, `post_checks` once all of it is on the new
        version (through the alias; a failure there rolls back too)."""
        self.say(f"{self.alias}: {model.describe(self.current())}")
        conflicts = 0
        while True:
            alias = self.read()
            state = self.current(alias)
            if state.final:
                return self._finished(state)
            decision = self._decide(state, checks, post_checks)
            if decision.action == "wait":
                self.sleep(max(min(self.poll, decision.until - self.clock()), 0.0))
                continue
            try:
                self.write(decision.state, alias.revision_id)
            except ConcurrentChangeError:
                conflicts += 1
                if conflicts > MAX_CONFLICTS:
                    raise RolloutError(
                        f"alias {self.alias} of {self.function} changed under every one of "
                        f"{conflicts} moves", hint="stop the other client moving it, then "
                        f"`lambda3 rollout continue {self.function} -a {self.alias}`") from None
                self.say(f"{self.alias}: moved by another client meanwhile; reading it again")
                continue
            conflicts = 0
            self.say(f"{self.alias}: {model.describe(decision.state)}")

    def _decide(self, state: RolloutState, checks: Sequence[Check],
                post_checks: Sequence[Check]) -> model.Decision:
        if state.phase == model.CHECKS:
            return self._checks(state, checks)
        health = self.health(state)
        decision = model.decide(state, self.clock(), health)
        if decision.action == "wait":
            self.say(self._progress(state, health, decision.until))
        if decision.action == "post-checks":
            return self._post_checks(state, post_checks)
        return decision

    def _progress(self, state: RolloutState, health: Health, until: float) -> str:
        left = max(until - self.clock(), 0)
        alarms = ", ".join(f"{n} {health.alarms.get(n, 'missing')}" for n in state.alarms)
        new, old = health.new, health.old
        return (f"{self.alias}: {state.weight * 100:g}% on version {state.new}, next step in "
                f"{left:.0f} s; alarms: {alarms or 'none'}; errors+throttles: version "
                f"{state.new} {new.errors + new.throttles:g}/{new.invocations:g}, version "
                f"{state.old} {old.errors + old.throttles:g}/{old.invocations:g}")

    def _checks(self, state: RolloutState, checks: Sequence[Check]) -> model.Decision:
        if not checks:
            raise self._not_run("pre-traffic", "--check", state)
        problem = self._run_checks(state, checks, "check", state.new)
        if problem:
            return problem
        return model.Decision("shift", model.checked(state, self.clock()))

    def _post_checks(self, state: RolloutState, checks: Sequence[Check]) -> model.Decision:
        if not checks:
            raise self._not_run("post-traffic", "--post-check", state)
        problem = self._run_checks(state, checks, "post-traffic check", self.alias)
        if problem:
            return problem
        return model.Decision("complete", model.post_checked(state, self.clock()))

    def _not_run(self, which: str, flag: str, state: RolloutState) -> RolloutError:
        return RolloutError(
            f"the {which} checks of version {state.new} have not run yet",
            hint="re-run the deploy (the same ref publishes nothing), pass the events with "
                 f"`lambda3 rollout continue {flag} FILE`, or `lambda3 rollout abort "
                 f"{self.function} -a {self.alias}`")

    def _run_checks(self, state: RolloutState, checks: Sequence[Check], what: str,
                    qualifier: str) -> model.Decision | None:
        """Each check in turn: a roll back at the first that fails, else None."""
        for check in checks:
            try:
                problem = self._check(qualifier, state.new, check)
            except AwsError as error:  # not the version's answer: the rollout waits, as it is
                raise RolloutError(
                    f"{what} {check.file}: invoking {self.function}:{qualifier} failed: "
                    f"{error.message}; the rollout stays where it is ({model.describe(state)})",
                    hint=f"fix that, then `lambda3 rollout continue {self.function} -a "
                         f"{self.alias}`, or `lambda3 rollout abort {self.function} -a "
                         f"{self.alias}`") from None
            if problem:
                reason = f"{what} {check.file} failed: {problem}"
                return model.Decision("roll-back", model.rolled_back(state, self.clock(), reason),
                                      reason=reason)
            self.say(f"{self.alias}: {what} {check.file} passed on version {state.new}")
        return None

    def _check(self, qualifier: str, version: str, check: Check) -> str | None:
        """What is wrong with the answer to the check's event, invoked with `qualifier` (the
        new version's number, or the alias that should route to it alone), or None."""
        answer = self.aws.call("lambda", "invoke", idempotent=False, FunctionName=self.function,
                               Qualifier=qualifier, Payload=check.event.encode())
        body = answer["Payload"].read().decode(errors="replace")
        ran = answer.get("ExecutedVersion")
        if ran and ran != version:
            return f"version {ran} answered, not version {version}"
        if answer.get("FunctionError"):
            return f"the function raised an error: {body[:300]}"
        if check.expect is None:
            return None
        try:
            got = json.loads(body)
        except ValueError:
            return f"the answer is not JSON: {body[:300]}"
        if not model.subset(check.expect, got):
            return (f"the answer {json.dumps(got)[:300]} does not contain "
                    f"{json.dumps(check.expect)[:300]}")
        return None

    def _finished(self, state: RolloutState) -> RolloutState:
        if state.phase == model.ROLLED_BACK:
            raise model.RolledBack(
                f"the rollout of version {state.new} of {self.function} was rolled back: "
                f"{state.reason}; alias {self.alias} is on version {state.old}",
                hint="fix the cause and deploy again")
        return state

    def abort(self, reason: str = "aborted") -> RolloutState:
        """Roll back now: the alias on the old version alone."""
        while True:
            alias = self.read()
            state = self.current(alias)
            if state.final:
                return state
            back = model.rolled_back(state, self.clock(), reason)
            try:
                self.write(back, alias.revision_id)
            except ConcurrentChangeError:
                continue
            self.say(f"{self.alias}: {model.describe(back)}")
            return back


def checks_from(items: Sequence[Mapping[str, Any]]) -> tuple[Check, ...]:
    """The checks a BuildResult's rollout carries."""
    return tuple(Check(str(c.get("file", "?")), str(c.get("event", "{}")), c.get("expect"))
                 for c in items)


def checks_from_files(paths: Sequence[str], flag: str = "--check") -> tuple[Check, ...]:
    """Checks from event files on this machine (`rollout continue --check FILE`, or
    `--post-check FILE`)."""
    from pathlib import Path

    checks = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
            json.loads(text)
        except (OSError, ValueError) as error:
            raise RolloutError(f"{flag} {path}: {error}") from None
        checks.append(Check(path, text))
    return tuple(checks)


def describe_alias(driver: Driver) -> list[str]:
    """`lambda3 rollout status`: the recorded state, the routing and the alarms."""
    alias = driver.read()
    routing = ", ".join(f"version {v} {w * 100:g}%" for v, w in alias.weights.items())
    lines = [f"{driver.function}:{driver.alias} -> version {alias.version}"
             + (f" (+ {routing})" if routing else "")]
    if alias.state is None:
        return lines + ["no rollout recorded on this alias"]
    stale = not alias.state.final and not model.matches(alias.state, alias.version,
                                                        alias.weights)
    lines.append(model.describe(alias.state)
                 + (" (stale: the alias was moved outside this rollout)" if stale else ""))
    if alias.state.alarms:
        try:
            states = driver.alarm_states(alias.state.alarms)
        except AwsError as error:
            states = {name: f"unreadable ({error.code})" for name in alias.state.alarms}
        lines.append("alarms: " + ", ".join(f"{n} {states.get(n, 'missing')}"
                                            for n in alias.state.alarms))
    return lines


def after_deploy(aws: Aws, result, *, show: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, poll: float = 30.0) -> None:
    """What the client does after the builder answered: drive each rollout it started (the
    checks first, the post-traffic checks last), function by function, then prune each
    function when the build file says `prune: {keep: N}`. Raises `RolledBack` (or another
    `RolloutError`) when a rollout does not complete; the functions after it are left as the
    builder left them."""
    several = getattr(result, "functions", ())
    deployed = ([(f.name, f.alias, f.rollout, f.layers) for f in several if f.deployed]
                if several else [(result.function, result.alias, result.rollout, result.layers)])
    for function, alias, started, _ in deployed:
        if started is not None and started.phase not in (model.COMPLETE, model.ROLLED_BACK):
            Driver(aws, function, alias, clock=clock, sleep=sleep, show=show,
                   poll=poll).run(checks_from(started.checks),
                                  checks_from(started.post_checks))
    if not result.prune_keep:
        return
    from lambda3.commands.prune import prune_function

    for function, _, _, layers in deployed:
        plan = prune_function(aws, function, keep=result.prune_keep,
                              layer_names=[layer.name for layer in layers])
        for line in plan.lines(function):
            if not line.startswith("keep"):
                show(f"prune: {line}")


def drive_in_action(aws: Aws, result, *, out, summary_path: str | None = None,
                    clock: Callable[[], float] = time.time,
                    sleep: Callable[[float], None] = time.sleep, poll: float = 30.0) -> None:
    """The action's step after the builder answered: each shift and the alarms' state in
    the log, the whole rollout in the step summary (also when it rolls back)."""
    from lambda3.action import toolkit

    lines: list[str] = []

    def show(line: str) -> None:
        lines.append(line)
        print(f"lambda3: {toolkit.inert(line)}", file=out, flush=True)

    try:
        after_deploy(aws, result, show=show, clock=clock, sleep=sleep, poll=poll)
    finally:
        if summary_path and lines:
            toolkit.append_summary(rollout_summary(lines), path=summary_path)


def rollout_summary(lines: Sequence[str]) -> str:
    """Markdown: every shift, check, alarm reading and prune of this run, in order."""
    rows = "\n".join(f"| {line.replace('|', '/')} |" for line in lines)
    return f"\n### Rollout\n\n| step |\n| --- |\n{rows}\n"
