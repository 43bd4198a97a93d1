"""Gradual rollouts as data: the strategy, its schedule of weights, the state recorded on
the alias, and the decision for the next move.

A rollout moves an alias from an old version to a new one through its RoutingConfig: the
alias keeps pointing at the old version and `AdditionalVersionWeights` sends the new one
its share, step by step; at the end the alias points at the new version alone. A roll back
points it at the old version alone. No CodeDeploy.

The state lives on the alias itself, in its Description (`lambda3-rollout {json}`, at most
256 characters, as Lambda allows), so any client, later or elsewhere, can read it and
continue. Everything here is pure: the driver (`lambda3.rollout`) and the builder's first
step (`builder.reconcile.start_rollout`) do the AWS calls.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from builder.errors import Lambda3Error

PREFIX = "lambda3-rollout "
MAX_DESCRIPTION = 256  # Lambda's limit on an alias Description
MAX_CHECK_EVENTS = 256 * 1024  # bytes of check events, all together: they travel in the result
DEFAULT_MAX_ERROR_RATE = 0.05  # the new version may fail at most 5 points more often
ALL_AT_ONCE = "all-at-once"
# Phases of a rollout; the last two are final. `post-checks`: all the traffic is on the new
# version, the old one recorded for a roll back, until the post-traffic checks pass.
CHECKS, SHIFTING, POST_CHECKS = "checks", "shifting", "post-checks"
COMPLETE, ROLLED_BACK = "complete", "rolled-back"

_CANARY = re.compile(r"canary\s+(\d+(?:\.\d+)?)%?\s+(\d+(?:\.\d+)?)m?")
_LINEAR = re.compile(r"linear\s+(\d+(?:\.\d+)?)%?\s+every\s+(\d+(?:\.\d+)?)m?")


class RolloutError(Lambda3Error):
    step = "rollout"
    keeps_step = True


class RolledBack(RolloutError):
    """A rollout was rolled back (an alarm, the error guard, a failed check, an abort)."""


# -- the strategy --------------------------------------------------------------------------
@dataclass(frozen=True)
class Strategy:
    kind: str = ALL_AT_ONCE  # all-at-once | canary | linear
    percent: float = 100.0
    minutes: float = 0.0

    @property
    def gradual(self) -> bool:
        return self.kind != ALL_AT_ONCE

    def weights(self) -> tuple[float, ...]:
        """The new version's share at each step before it takes all traffic."""
        if self.kind == "canary":
            return (round(self.percent / 100, 4),)
        if self.kind == "linear":
            count = math.ceil(100 / self.percent) - 1
            return tuple(round(self.percent * i / 100, 4) for i in range(1, count + 1))
        return ()

    def text(self) -> str:
        if self.kind == "canary":
            return f"canary {_num(self.percent)} {_num(self.minutes)}"
        if self.kind == "linear":
            return f"linear {_num(self.percent)} every {_num(self.minutes)}"
        return ALL_AT_ONCE


def _num(value: float) -> str:
    return f"{value:g}"


def parse_strategy(text: str | None) -> Strategy:
    """`all-at-once`, `canary <percent> <minutes>` or `linear <percent> every <minutes>`."""
    given = " ".join((text or ALL_AT_ONCE).strip().lower().split())
    if given == ALL_AT_ONCE:
        return Strategy()
    for kind, pattern in (("canary", _CANARY), ("linear", _LINEAR)):
        found = pattern.fullmatch(given)
        if found:
            percent, minutes = float(found.group(1)), float(found.group(2))
            if not 0 < percent < 100:
                raise RolloutError(f"rollout {text!r}: the percent must be above 0 and below "
                                   f"100, got {_num(percent)}")
            if minutes <= 0 or minutes > 24 * 60:
                raise RolloutError(f"rollout {text!r}: the minutes must be above 0 and at "
                                   f"most 1440, got {_num(minutes)}")
            return Strategy(kind, percent, minutes)
    raise RolloutError(f"rollout {text!r} is not a strategy", hint=(
        "use all-at-once, canary <percent> <minutes> (canary 10 5) or linear <percent> every "
        "<minutes> (linear 10 every 1)"))


# -- what the build file says (rollout, alarms, max_error_rate, checks, prune) -------------
@dataclass(frozen=True)
class Check:
    """A check: invoke the new version (pre-traffic: by number; post-traffic: through the
    alias) with `event`; its answer must succeed and, with `expect`, contain it (a JSON
    subset)."""

    file: str
    event: str  # the event's JSON text
    expect: Any = None


# The release keys a function of `functions:` may give for itself (prune is the file's).
RELEASE_KEYS = ("rollout", "alarms", "max_error_rate", "checks", "post_checks")


@dataclass(frozen=True)
class ReleaseSettings:
    rollout: str | None = None
    alarms: tuple[str, ...] = ()
    max_error_rate: float | None = None
    checks: tuple[Check, ...] = ()
    post_checks: tuple[Check, ...] = ()
    prune_keep: int | None = None


def release_settings(document: Mapping[str, Any], read: Callable[[str, str], str], *,
                     at: str = "") -> ReleaseSettings:
    """The release keys of a validated build file; `read(path, key)` gives a repository
    file's text (path-checked by the caller, naming `key` when it is refused). `at`
    prefixes the keys in errors (`functions.api.`); each error's `key` is its key path."""
    events = {"total": 0}
    checks = _checks(document, "checks", read, events, at)
    post_checks = _checks(document, "post_checks", read, events, at)
    if document.get("rollout") is not None:
        try:
            parse_strategy(document["rollout"])
        except RolloutError as error:
            raise RolloutError(f"{at}rollout: {error.message}", hint=error.hint, step="spec",
                               key=f"{at}rollout") from None
    prune = document.get("prune") or {}
    return ReleaseSettings(
        rollout=document.get("rollout"), alarms=tuple(document.get("alarms") or ()),
        max_error_rate=document.get("max_error_rate"), checks=checks, post_checks=post_checks,
        prune_keep=prune.get("keep"))


def _checks(document: Mapping[str, Any], key: str, read: Callable[[str, str], str],
            events: dict[str, int], at: str) -> tuple[Check, ...]:
    """The checks under `key`; `events["total"]` counts the bytes of all the check events."""
    checks = []
    for entry in document.get(key) or ():
        file, expect = (entry, None) if isinstance(entry, str) else (entry["event"],
                                                                     entry.get("expect"))
        text = read(file, key)
        events["total"] += len(text.encode())
        if events["total"] > MAX_CHECK_EVENTS:
            raise RolloutError(f"{at}{key}: the check events take more than "
                               f"{MAX_CHECK_EVENTS // 1024} KB (at {file})", step="spec",
                               key=f"{at}{key}",
                               hint="keep check events small: they travel in the result")
        try:
            json.loads(text)
        except ValueError as error:
            raise RolloutError(f"{at}{key}: {file} is not JSON ({error})", step="spec",
                               key=f"{at}{key}") from None
        checks.append(Check(file, text, expect))
    return tuple(checks)


# -- the state on the alias ----------------------------------------------------------------
@dataclass(frozen=True)
class RolloutState:
    strategy: str
    old: str  # the version the alias pointed at
    new: str  # the version being rolled out
    started: float  # unix seconds of the first shift (or of the start, before checks)
    since: float  # unix seconds the current step began
    step: int = 0  # 0: no traffic yet; i: weights()[i-1]; past the last: all traffic
    phase: str = SHIFTING
    alarms: tuple[str, ...] = ()
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    reason: str = ""  # why it rolled back
    post: bool = False  # post-traffic checks run once all the traffic is on the new version

    @property
    def final(self) -> bool:
        return self.phase in (COMPLETE, ROLLED_BACK)

    @property
    def weight(self) -> float:
        """The new version's share now."""
        if self.phase in (COMPLETE, POST_CHECKS):
            return 1.0
        weights = parse_strategy(self.strategy).weights()
        if self.phase == ROLLED_BACK or self.step == 0:
            return 0.0
        return weights[self.step - 1] if self.step <= len(weights) else 1.0

    def routing(self) -> tuple[str, dict[str, float]]:
        """(FunctionVersion, AdditionalVersionWeights) the alias has in this state."""
        if self.phase in (COMPLETE, POST_CHECKS):
            return self.new, {}
        if self.phase == ROLLED_BACK or self.weight == 0:
            return self.old, {}
        return self.old, {self.new: self.weight}


def matches(state: RolloutState, version: str, weights: Mapping[str, float]) -> bool:
    """Whether the alias still routes as `state` says (else it was moved by something else
    and the recorded rollout is stale)."""
    want_version, want_weights = state.routing()
    have = {str(k): round(float(v), 4) for k, v in weights.items() if v}
    return version == want_version and have == {k: round(v, 4) for k, v in want_weights.items()}


def start_state(strategy: Strategy, old: str, new: str, now: float, *,
                alarms: Sequence[str] = (), max_error_rate: float | None = None,
                checks: bool = False, post_checks: bool = False) -> RolloutState:
    """The state the builder records: before traffic when checks must pass first, else the
    first weight (all-at-once: all the traffic, then the post-traffic checks or the end)."""
    rate = DEFAULT_MAX_ERROR_RATE if max_error_rate is None else float(max_error_rate)
    state = RolloutState(strategy.text(), old, new, now, now, 0, CHECKS if checks else SHIFTING,
                         tuple(alarms), rate, post=post_checks)
    return state if checks else checked(state, now)


def encode(state: RolloutState) -> str:
    data = {"s": state.strategy, "o": state.old, "n": state.new, "t0": int(state.started),
            "t": int(state.since), "i": state.step, "p": state.phase,
            "e": state.max_error_rate, "a": list(state.alarms)}
    if state.post:
        data["pc"] = 1
    if state.reason:
        data["r"] = state.reason
    text = PREFIX + json.dumps(data, separators=(",", ":"))
    if len(text) <= MAX_DESCRIPTION:
        return text
    if state.reason:  # a long reason is shortened; the run's own error has it whole
        room = len(state.reason) - (len(text) - MAX_DESCRIPTION) - 3
        if room > 10:
            return encode(replace(state, reason=state.reason[:room] + "..."))
    raise RolloutError(
        f"the rollout state is {len(text)} characters and an alias Description holds "
        f"{MAX_DESCRIPTION}: the alarm names take {len(json.dumps(list(state.alarms)))}",
        hint="list fewer alarms, or combine them into one composite alarm")


def decode(description: str | None) -> RolloutState | None:
    """The state recorded on an alias, or None when it records none."""
    if not description or not description.startswith(PREFIX):
        return None
    try:
        data = json.loads(description[len(PREFIX):])
        return RolloutState(
            strategy=str(data["s"]), old=str(data["o"]), new=str(data["n"]),
            started=float(data["t0"]), since=float(data["t"]), step=int(data["i"]),
            phase=str(data["p"]), alarms=tuple(str(a) for a in data.get("a", ())),
            max_error_rate=float(data.get("e", DEFAULT_MAX_ERROR_RATE)),
            reason=str(data.get("r", "")), post=bool(data.get("pc")))
    except (ValueError, KeyError, TypeError):
        return None


# -- the decision --------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """Sums over the rollout's window, per version."""

    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0

    @property
    def rate(self) -> float:
        attempts = self.invocations + self.throttles
        return (self.errors + self.throttles) / attempts if attempts else 0.0


@dataclass(frozen=True)
class Health:
    alarms: Mapping[str, str] = field(default_factory=dict)  # name -> OK | ALARM | ...
    new: Figures = Figures()
    old: Figures = Figures()


@dataclass(frozen=True)
class Decision:
    action: str  # wait | shift | complete | roll-back | checks | post-checks | done
    state: RolloutState  # the state after this move
    until: float | None = None  # wait: when the current step ends
    reason: str = ""


def tripped(state: RolloutState, health: Health) -> str | None:
    """Why the rollout must roll back now, or None."""
    for name in state.alarms:
        value = health.alarms.get(name)
        if value is None:
            return f"alarm {name} does not exist"
        if value == "ALARM":
            return f"alarm {name} is in ALARM"
    new, old = health.new, health.old
    if new.invocations + new.throttles > 0 and new.rate - old.rate > state.max_error_rate:
        return (f"version {state.new} failed {_pct(new.rate)} of {_n(new.invocations)} "
                f"invocations ({_n(new.errors)} errors, {_n(new.throttles)} throttles) against "
                f"{_pct(old.rate)} for version {state.old}; max_error_rate is "
                f"{_pct(state.max_error_rate)}")
    return None


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _n(value: float) -> str:
    return f"{value:g}"


def decide(state: RolloutState, now: float, health: Health) -> Decision:
    """The next move from the recorded state, the time and the health of both versions."""
    if state.final:
        return Decision("done", state)
    if state.phase == CHECKS:
        return Decision("checks", state)
    reason = tripped(state, health)
    if reason:
        return Decision("roll-back", rolled_back(state, now, reason), reason=reason)
    if state.phase == POST_CHECKS:
        return Decision("post-checks", state)
    minutes = parse_strategy(state.strategy).minutes
    until = state.since + minutes * 60
    if now < until:
        return Decision("wait", state, until=until)
    steps = len(parse_strategy(state.strategy).weights())
    if state.step >= steps:
        after = all_traffic(state, now)
        return Decision("complete" if after.phase == COMPLETE else "shift", after)
    return Decision("shift", replace(state, step=state.step + 1, since=now))


def all_traffic(state: RolloutState, now: float) -> RolloutState:
    """The new version takes all the traffic: complete, or the post-traffic checks next."""
    steps = len(parse_strategy(state.strategy).weights())
    return replace(state, phase=POST_CHECKS if state.post else COMPLETE, since=now,
                   step=steps + 1)


def checked(state: RolloutState, now: float) -> RolloutState:
    """After the pre-traffic checks passed: the first weight (all-at-once: all), from now."""
    state = replace(state, started=now)
    if not parse_strategy(state.strategy).gradual:
        return all_traffic(state, now)
    return replace(state, phase=SHIFTING, step=1, since=now)


def post_checked(state: RolloutState, now: float) -> RolloutState:
    """After the post-traffic checks passed: complete."""
    return replace(state, phase=COMPLETE, since=now)


def rolled_back(state: RolloutState, now: float, reason: str) -> RolloutState:
    return replace(state, phase=ROLLED_BACK, since=now, reason=reason)


def subset(expected: Any, actual: Any) -> bool:
    """Whether `actual` contains `expected`: objects by key, recursively; other values equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and subset(value, actual[key]) for key, value in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(subset(e, a) for e, a in zip(expected, actual, strict=True)))
    return expected == actual


def describe(state: RolloutState) -> str:
    """One line: where the rollout is."""
    head = f"{state.strategy}: version {state.old} -> {state.new}"
    if state.phase == COMPLETE:
        return f"{head}: complete, version {state.new} takes all traffic"
    if state.phase == ROLLED_BACK:
        return f"{head}: rolled back to version {state.old} ({state.reason})"
    if state.phase == CHECKS:
        return f"{head}: pre-traffic checks pending, no traffic on version {state.new}"
    if state.phase == POST_CHECKS:
        return (f"{head}: post-traffic checks pending, version {state.new} takes all traffic "
                f"(version {state.old} kept for a roll back)")
    return f"{head}: {_pct(state.weight)} of traffic on version {state.new}"


def update_alias_args(function: str, alias: str, state: RolloutState,
                      revision_id: str | None) -> dict[str, Any]:
    """UpdateAlias's arguments for `state`: routing, the state as Description, and the
    alias's RevisionId when Lambda gave one (moto gives none)."""
    version, weights = state.routing()
    args: dict[str, Any] = {"FunctionName": function, "Name": alias, "FunctionVersion": version,
                            "RoutingConfig": {"AdditionalVersionWeights": weights},
                            "Description": encode(state)}
    if revision_id:
        args["RevisionId"] = revision_id
    return args
