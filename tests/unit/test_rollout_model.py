"""The rollout model: strategies, their weights, the state on the alias, the next move."""
from __future__ import annotations

from dataclasses import replace

import pytest

from builder.rollout import (
    CHECKS,
    COMPLETE,
    MAX_DESCRIPTION,
    POST_CHECKS,
    ROLLED_BACK,
    SHIFTING,
    Figures,
    Health,
    RolloutError,
    Strategy,
    checked,
    decide,
    decode,
    describe,
    encode,
    parse_strategy,
    post_checked,
    release_settings,
    start_state,
    subset,
    tripped,
    update_alias_args,
)

T0 = 1_800_000_000.0


@pytest.mark.parametrize("text, kind, weights", [
    ("all-at-once", "all-at-once", ()),
    (None, "all-at-once", ()),
    ("canary 10 5", "canary", (0.1,)),
    ("Canary 10% 5m", "canary", (0.1,)),
    ("linear 25 every 1", "linear", (0.25, 0.5, 0.75)),
    ("linear 30 every 2", "linear", (0.3, 0.6, 0.9)),
    ("linear 50 every 1", "linear", (0.5,)),
])
def test_strategies_and_their_weights(text, kind, weights):
    strategy = parse_strategy(text)
    assert strategy.kind == kind
    assert strategy.weights() == weights
    assert parse_strategy(strategy.text()) == strategy


@pytest.mark.parametrize("text, says", [
    ("canary 0 5", "above 0 and below 100"),
    ("canary 100 5", "above 0 and below 100"),
    ("linear 10 every 0", "minutes must be above 0"),
    ("blue-green", "is not a strategy"),
    ("canary 10", "is not a strategy"),
])
def test_bad_strategies_are_refused_with_the_forms_allowed(text, says):
    with pytest.raises(RolloutError, match=says) as caught:
        parse_strategy(text)
    if "not a strategy" in says:
        assert "canary <percent> <minutes>" in str(caught.value)


def test_the_state_round_trips_through_the_alias_description():
    state = start_state(parse_strategy("canary 10 5"), "3", "4", T0, alarms=("shop-5xx",),
                        max_error_rate=0.02)
    text = encode(state)
    assert text.startswith("lambda3-rollout ") and len(text) <= MAX_DESCRIPTION
    assert decode(text) == replace(state, started=int(T0), since=int(T0))
    assert decode("a description a person wrote") is None
    assert decode("lambda3-rollout {not json") is None


def test_too_many_alarm_names_for_a_description_are_refused_with_the_fix():
    state = start_state(Strategy("canary", 10, 5), "1", "2", T0,
                        alarms=tuple(f"a-very-long-alarm-name-number-{i}" for i in range(8)))
    with pytest.raises(RolloutError, match="composite alarm"):
        encode(state)


def test_a_long_rollback_reason_is_shortened_to_fit():
    state = start_state(Strategy("canary", 10, 5), "1", "2", T0)
    back = replace(state, phase=ROLLED_BACK, reason="x" * 400)
    assert len(encode(back)) <= MAX_DESCRIPTION
    assert decode(encode(back)).reason.endswith("...")


def test_routing_keeps_the_old_version_and_weighs_the_new_one():
    state = start_state(Strategy("canary", 10, 5), "1", "2", T0)
    assert state.phase == SHIFTING and state.routing() == ("1", {"2": 0.1})
    assert replace(state, phase=COMPLETE).routing() == ("2", {})
    assert replace(state, phase=ROLLED_BACK).routing() == ("1", {})
    args = update_alias_args("f", "live", state, None)
    assert "RevisionId" not in args and args["RoutingConfig"] == {
        "AdditionalVersionWeights": {"2": 0.1}}
    assert update_alias_args("f", "live", state, "rev-1")["RevisionId"] == "rev-1"


def test_with_checks_no_traffic_moves_until_they_pass():
    state = start_state(Strategy("linear", 50, 1), "1", "2", T0, checks=True)
    assert state.phase == CHECKS and state.routing() == ("1", {})
    assert decide(state, T0 + 3600, Health()).action == "checks"
    after = checked(state, T0 + 10)
    assert after.routing() == ("1", {"2": 0.5}) and after.started == T0 + 10
    whole = checked(start_state(Strategy(), "1", "2", T0, checks=True), T0)
    assert whole.phase == COMPLETE and whole.routing() == ("2", {})


def test_post_checks_come_once_all_the_traffic_is_on_the_new_version():
    state = start_state(Strategy("canary", 10, 5), "1", "2", T0, post_checks=True)
    assert state.phase == SHIFTING and state.routing() == ("1", {"2": 0.1})
    assert decode(encode(state)) == state
    assert decode(encode(replace(state, post=False))).post is False
    moved = decide(state, T0 + 300, Health())
    assert moved.action == "shift" and moved.state.phase == POST_CHECKS
    assert moved.state.routing() == ("2", {}) and moved.state.weight == 1.0
    assert not moved.state.final and moved.state.old == "1"  # kept for a roll back
    assert decide(moved.state, T0 + 301, Health()).action == "post-checks"
    assert "post-traffic checks pending, version 2 takes all traffic (version 1 kept" in (
        describe(moved.state))
    tripping = Health({"a": "ALARM"})
    back = decide(replace(moved.state, alarms=("a",)), T0 + 301, tripping)
    assert back.action == "roll-back" and back.state.routing() == ("1", {})
    done = post_checked(moved.state, T0 + 302)
    assert done.phase == COMPLETE and done.routing() == ("2", {})


def test_all_at_once_with_post_checks_moves_at_once_and_checks_after():
    state = start_state(Strategy(), "1", "2", T0, post_checks=True)
    assert state.phase == POST_CHECKS and state.routing() == ("2", {})
    both = start_state(Strategy(), "1", "2", T0, checks=True, post_checks=True)
    assert both.phase == CHECKS and both.routing() == ("1", {})
    assert checked(both, T0 + 5).phase == POST_CHECKS
    assert start_state(Strategy(), "1", "2", T0).phase == COMPLETE


def test_a_healthy_linear_rollout_waits_shifts_and_completes():
    state = start_state(Strategy("linear", 50, 2), "1", "2", T0)
    wait = decide(state, T0 + 60, Health())
    assert (wait.action, wait.until) == ("wait", T0 + 120)
    done = decide(state, T0 + 120, Health())
    assert done.action == "complete" and done.state.routing() == ("2", {})

    linear = start_state(Strategy("linear", 25, 1), "1", "2", T0)
    moves = []
    now = T0
    while not linear.final:
        now += 60
        decision = decide(linear, now, Health())
        moves.append((decision.action, decision.state.weight))
        linear = decision.state
    assert moves == [("shift", 0.5), ("shift", 0.75), ("complete", 1.0)]


def test_an_alarm_in_alarm_or_a_missing_one_rolls_back_at_once():
    state = start_state(Strategy("canary", 10, 5), "1", "2", T0, alarms=("a", "b"))
    assert decide(state, T0 + 1, Health({"a": "OK", "b": "INSUFFICIENT_DATA"})).action == "wait"
    back = decide(state, T0 + 1, Health({"a": "OK", "b": "ALARM"}))
    assert back.action == "roll-back" and back.reason == "alarm b is in ALARM"
    assert back.state.routing() == ("1", {}) and back.state.reason == back.reason
    assert tripped(state, Health({"a": "OK"})) == "alarm b does not exist"


def test_the_error_guard_compares_the_new_version_with_the_old():
    state = start_state(Strategy("canary", 10, 5), "1", "2", T0, max_error_rate=0.05)
    same = Health(new=Figures(100, 3), old=Figures(1000, 30))
    assert tripped(state, same) is None
    worse = Health(new=Figures(100, 9), old=Figures(1000, 30))
    assert "failed 9.0% of 100 invocations" in tripped(state, worse)
    throttled = Health(new=Figures(10, 0, 10), old=Figures(100, 0))
    assert "10 throttles" in tripped(state, throttled)
    assert tripped(state, Health(new=Figures(), old=Figures(10, 10))) is None  # no traffic yet


def test_subset_matching():
    assert subset({"ok": True}, {"ok": True, "v": 2})
    assert subset({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}]}, "e": 0})
    assert not subset({"ok": True}, {"ok": False})
    assert not subset({"a": [1]}, {"a": [1, 2]})
    assert not subset({"a": 1}, [1])


def reader(files):
    return lambda path, key: files[path]


def test_release_settings_read_check_events_through_the_reader():
    files = {"events/smoke.json": '{"ping": 1}', "events/after.json": "{}"}
    document = {"rollout": "canary 5 10", "alarms": ["x"], "max_error_rate": 0.01,
                "checks": ["events/smoke.json", {"event": "events/smoke.json",
                                                 "expect": {"pong": 1}}],
                "post_checks": [{"event": "events/after.json", "expect": {"v": 2}}],
                "prune": {"keep": 3}}
    asked = []
    release = release_settings(document, lambda path, key: asked.append(key) or files[path])
    assert asked == ["checks", "checks", "post_checks"]
    assert release.rollout == "canary 5 10" and release.alarms == ("x",)
    assert release.prune_keep == 3 and release.max_error_rate == 0.01
    assert [(c.file, c.expect) for c in release.checks] == [
        ("events/smoke.json", None), ("events/smoke.json", {"pong": 1})]
    assert [(c.file, c.event, c.expect) for c in release.post_checks] == [
        ("events/after.json", "{}", {"v": 2})]
    with pytest.raises(RolloutError, match="^checks: bad.json is not JSON"):
        release_settings({"checks": ["bad.json"]}, reader({"bad.json": "{"}))
    with pytest.raises(RolloutError, match="^post_checks: bad.json is not JSON"):
        release_settings({"post_checks": ["bad.json"]}, reader({"bad.json": "{"}))
    assert release_settings({}, reader(files)).rollout is None
    big = {"big.json": "[" + "1," * 200_000 + "1]"}
    with pytest.raises(RolloutError, match="more than 256 KB"):
        release_settings({"checks": ["big.json"]}, reader(big))
    half = {"half.json": "[" + "1," * 70_000 + "1]"}  # 140 KB: each fits, both do not
    release_settings({"checks": ["half.json"]}, reader(half))
    with pytest.raises(RolloutError, match="^post_checks: the check events take more than"):
        release_settings({"checks": ["half.json"], "post_checks": ["half.json"]}, reader(half))


def test_matches_compares_the_alias_with_the_recorded_routing():
    from builder.rollout import matches

    state = start_state(Strategy("canary", 10, 5), "1", "2", T0)
    assert matches(state, "1", {"2": 0.1})
    assert not matches(state, "2", {})
    assert not matches(state, "1", {"2": 0.5})
    assert matches(replace(state, phase=COMPLETE), "2", {})


def test_the_build_file_keys_are_read_and_checked(tmp_path):
    from builder.errors import SpecError
    from builder.spec import load_spec

    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "smoke.json").write_text('{"ping": 1}')

    def spec(extra: str):
        (tmp_path / "build.yaml").write_text("function:\n  files: [app.py]\n" + extra)
        return load_spec(tmp_path)

    release = spec("rollout: linear 10 every 2\nalarms: [a, b]\nmax_error_rate: 0.1\n"
                   "checks: [{event: events/smoke.json, expect: {pong: 1}}]\n"
                   "post_checks: [events/smoke.json]\nprune: {keep: 4}\n").release
    assert (release.rollout, release.alarms, release.max_error_rate, release.prune_keep) == (
        "linear 10 every 2", ("a", "b"), 0.1, 4)
    assert release.checks[0].event == '{"ping": 1}' and release.checks[0].expect == {"pong": 1}
    assert release.post_checks[0].event == '{"ping": 1}' and release.post_checks[0].expect is None
    assert spec("").release.rollout is None
    for bad, says in (("rollout: blue-green\n", "rollout"), ("prune: {keep: 0}\n", "prune.keep"),
                      ("checks: [../secret.json]\n", "checks"),
                      ("checks: [events/none.json]\n", "checks"),
                      ("post_checks: [../secret.json]\n", "post_checks"),
                      ("post_checks: [{expect: {a: 1}}]\n", "post_checks"),
                      ("post_checks: [events/none.json]\n", "post_checks")):
        with pytest.raises(SpecError, match=says):
            spec(bad)


def test_a_function_of_functions_may_have_its_own_release_keys(tmp_path):
    from builder.errors import SpecError
    from builder.spec import load_spec

    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "smoke.json").write_text('{"ping": 1}')
    (tmp_path / "events" / "api.json").write_text('{"path": "/"}')

    def spec(api_extra: str):
        (tmp_path / "build.yaml").write_text(
            "functions:\n  api:\n    files: [app.py]\n" + api_extra +
            "  worker:\n    files: [app.py]\n"
            "rollout: linear 10 every 2\nalarms: [a]\nchecks: [events/smoke.json]\n")
        return load_spec(tmp_path)

    loaded = spec("    rollout: canary 10 5\n    post_checks: [events/api.json]\n")
    api, worker = loaded.for_function("api").release, loaded.for_function("worker").release
    assert (api.rollout, api.alarms) == ("canary 10 5", ("a",))  # alarms: the file's
    assert [c.file for c in api.checks] == ["events/smoke.json"]
    assert [c.event for c in api.post_checks] == ['{"path": "/"}']
    assert (worker.rollout, worker.post_checks) == ("linear 10 every 2", ())
    assert spec("    checks: []\n").for_function("api").release.checks == ()
    (tmp_path / "events" / "bad.json").write_text("{")
    for bad, says in (("    post_checks: [../x.json]\n", "functions.api.post_checks"),
                      ("    checks: [events/none.json]\n", "functions.api.checks"),
                      ("    rollout: blue-green\n", r"^build.yaml:4: functions.api.rollout: "
                                                    r"'blue-green' is not a valid rollout "
                                                    "strategy"),
                      ("    post_checks: [events/bad.json]\n", r"^build.yaml:4: functions.api"
                                                             r".post_checks: events/bad.json "
                                                             "is not JSON"),
                      ("    prune: {keep: 1}\n", "functions.api.*prune")):
        with pytest.raises(SpecError, match=says):
            spec(bad)
