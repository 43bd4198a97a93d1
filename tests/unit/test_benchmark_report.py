"""The benchmark's report and target logic (benchmarks/targets.py, report.py) on
fabricated numbers."""
from __future__ import annotations

from benchmarks.report import render_markdown, render_text, summary
from benchmarks.targets import FAIL, PASS, SKIP, evaluate_targets, fmt_bytes, median, ratio

MB = 1 << 20


def tool(times, unzipped, *, ok=True, imports_ok=True, loadable_ok=True, error=None):
    return {"ok": ok, "error": error, "times": times, "size": unzipped // 3,
            "unzipped": unzipped, "files": 100,
            "imports": {"ok": imports_ok, "checked": 10,
                        "failed": {} if imports_ok else {"numpy": "ImportError: x"}},
            "loadable": {"ok": loadable_ok, "bad": [] if loadable_ok else ["numpy 2.4.6"]}}


def phase(times, publishes, versions):
    return {"times": times, "layer_publishes": publishes, "new_versions": versions}


def results(**overrides):
    base = {
        "cold": {
            "web": {"lambda3": tool([2.0, 2.2, 1.8], 27 * MB),
                    "sam": tool([10.0, 9.0, 11.0], 28 * MB),
                    "naive": tool([6.0, 6.5, 5.5], 35 * MB)},
            "data": {"lambda3": tool([12.0], 80 * MB),
                     "sam": tool([3.0], 0, ok=False, error="Error: numpy not compatible"),
                     "naive": tool([20.0], 150 * MB)},
        },
        "deploy": {"web": {"project": "web", "mode": "handler subprocess",
                           "cold_full": phase([5.0, 6.0, 5.5], [2, 2, 2], [1, 1, 1]),
                           "warm_code_only": phase([0.5, 0.4, 0.6], [0, 0, 0], [1, 1, 1]),
                           "noop": phase([0.4, 0.4, 0.4], [0, 0, 0], [0, 0, 0])}},
        "determinism": {"project": "web", "builds": 5, "identical_builds": 5,
                        "identical": True, "variants": ["cold", "fresh out dir"],
                        "artifacts": {"function": ["a"] * 5}},
        "levers": [{"name": "dependency cache (web)", "on_s": 0.5, "off_s": 1.5, "how": "x"}],
    }
    base.update(overrides)
    return base


def statuses(res):
    return {t.name: t.status for t in evaluate_targets(res)}


def with_deploy(**phases):
    web = results()["deploy"]["web"]
    return results(deploy={"web": {**web, **phases}})


def test_median_and_ratio_ignore_missing_values():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0]) == 1.5
    assert median([]) is None
    assert ratio(10, 2) == 5
    assert ratio(None, 2) is None and ratio(1, 0) is None


def test_all_targets_pass_on_good_numbers():
    assert set(statuses(results()).values()) == {PASS}


def test_warm_redeploy_needs_ten_times_and_no_layer_publish():
    slow = with_deploy(warm_code_only=phase([0.6, 0.6, 0.6], [0, 0, 0], [1, 1, 1]))
    assert statuses(slow)["warm code-only redeploy (web)"] == FAIL  # 5.5 / 0.6 = 9.2x
    republished = with_deploy(warm_code_only=phase([0.1], [1], [1]))
    assert statuses(republished)["warm code-only redeploy (web)"] == FAIL
    failed = results(deploy={"web": {"project": "web", "error": "cold full deploy failed"}})
    assert statuses(failed)["warm code-only redeploy (web)"] == FAIL
    assert statuses(results(deploy=None))["warm code-only redeploy"] == SKIP


def test_noop_must_publish_and_version_nothing():
    changed = with_deploy(noop=phase([0.4], [0], [1]))
    assert statuses(changed)["no-op redeploy (web)"] == FAIL


def test_web_vs_sam_speed_and_size_and_skips():
    cold = results()["cold"]
    slow = {**cold, "web": {**cold["web"], "sam": tool([5.0], 28 * MB)}}  # 5 / 2 = 2.5x
    assert statuses(results(cold=slow))["web cold build vs sam build"] == FAIL
    bigger = {**cold, "web": {**cold["web"], "sam": tool([10.0], 26 * MB)}}
    assert statuses(results(cold=bigger))["web cold build vs sam build"] == FAIL
    skipped = {**cold, "web": {**cold["web"], "sam": {"skipped": True}}}
    assert statuses(results(cold=skipped))["web cold build vs sam build"] == SKIP


def test_data_size_imports_and_loadability():
    cold = results()["cold"]

    def with_lambda3(**kw):
        return results(cold={**cold, "data": {**cold["data"], "lambda3": tool([12.0], **kw)}})

    assert statuses(with_lambda3(unzipped=120 * MB))["data set size vs naive install"] == PASS
    assert statuses(with_lambda3(unzipped=121 * MB))["data set size vs naive install"] == FAIL
    assert statuses(with_lambda3(unzipped=80 * MB, imports_ok=False))[
        "data set size vs naive install"] == FAIL
    assert statuses(with_lambda3(unzipped=80 * MB, loadable_ok=False))[
        "data set size vs naive install"] == FAIL
    failed = with_lambda3(unzipped=0, ok=False, error="timed out after 240 s")
    target = next(t for t in evaluate_targets(failed) if t.name.startswith("data"))
    assert target.status == FAIL and "timed out" in target.measured


def test_determinism_needs_every_build_identical():
    det = {**results()["determinism"], "identical_builds": 4, "identical": False}
    assert statuses(results(determinism=det))["identical rebuilds"] == FAIL
    assert statuses(results(determinism=None))["identical rebuilds"] == SKIP


def test_reports_show_failures_ratios_and_targets():
    res = results()
    res["targets"] = [t.to_json() for t in evaluate_targets(res)]
    text = render_text(res)
    assert "FAILED: Error: numpy not compatible" in text
    assert "5.0x" in text  # sam 10 s / lambda3 2 s
    assert "11.0x faster" in text  # cold deploy 5.5 s / warm 0.5 s
    markdown = render_markdown(res)
    assert markdown.count("| PASS |") == 5
    assert summary(res)["cold.web.sam.s"] == 10.0
    assert summary(res)["deploy.web.warm_code_only.s"] == 0.5
    assert summary(res)["cold.data.sam.s"] is None


def test_fmt_bytes():
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(3 * MB // 2) == "1.5 MB"
