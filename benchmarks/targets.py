"""Pure functions over the benchmark's results: medians, ratios, the targets and how
figures are written. benchmarks/report.py lays them out as tables.

Nothing here runs a tool or touches the disk, so tests/unit/test_benchmark_report.py
checks it on fabricated numbers. The results are one JSON-able dict (see
`benchmarks/main.py` for how it is filled):

    {"cold": {"web": {"lambda3": TOOL, "sam": TOOL, "naive": TOOL}, "data": {...}},
     "deploy": {"web": {"project": "web", "mode": "...", "cold_full": PHASE,
                        "warm_code_only": PHASE, "noop": PHASE}, ...},
     "determinism": {"builds": 5, "identical": true, "artifacts": {...}},
     "levers": [...], "notes": [...]}

    TOOL  = {"ok": bool, "error": str|None, "times": [s, ...], "size": zipped bytes,
             "unzipped": bytes, "files": n, "imports": {"ok": bool, "checked": n,
             "failed": {...}}, "loadable": {"ok": bool, "bad": [...]}, ...}
    PHASE = {"times": [s, ...], "layer_publishes": [n, ...], "new_versions": [n, ...]}
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

TOOLS = ("lambda3", "sam", "naive")
TOOL_LABELS = {"lambda3": "lambda3 build", "sam": "sam build", "naive": "pip install -t + zip"}

# The targets, as (threshold) constants so the report states what it checked.
WARM_SPEEDUP_MIN = 10.0      # cold full deploy / warm code-only redeploy
WEB_SPEEDUP_VS_SAM_MIN = 3.0  # sam build / lambda3 build, web set, cold
DATA_SIZE_VS_NAIVE_MAX = 0.8  # lambda3 unzipped / naive unzipped, data set

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass(frozen=True)
class TargetResult:
    name: str
    goal: str
    status: str  # PASS, FAIL or SKIP (not measurable in this run, e.g. --skip-sam)
    measured: str

    def to_json(self) -> dict:
        return asdict(self)


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def tool_time(tool: dict | None) -> float | None:
    """A tool's median wall time, or None when it failed or did not run."""
    if not tool or not tool.get("ok"):
        return None
    return median(tool.get("times") or [])


def phase_time(phase: dict | None) -> float | None:
    return median((phase or {}).get("times") or [])


def _all_zero(values: Sequence[int] | None) -> bool:
    return bool(values) and all(v == 0 for v in values)


# -- targets -----------------------------------------------------------------------------------


def evaluate_targets(results: dict) -> list[TargetResult]:
    deploys = [d for d in (results.get("deploy") or {}).values()
               if not d.get("supplementary")] or [None]
    return [
        *(_warm_target(deploy) for deploy in deploys),
        *(_noop_target(deploy) for deploy in deploys),
        _web_vs_sam_target((results.get("cold") or {}).get("web")),
        _data_vs_naive_target((results.get("cold") or {}).get("data")),
        _determinism_target(results.get("determinism")),
    ]


def _warm_target(deploy: dict | None) -> TargetResult:
    name = "warm code-only redeploy" + (f" ({deploy['project']})" if deploy else "")
    goal = (f">= {WARM_SPEEDUP_MIN:g}x faster than the cold full deploy of the same project, "
            "0 layer publishes")
    if not deploy or deploy.get("error"):
        return TargetResult(name, goal, FAIL if deploy else SKIP,
                            (deploy or {}).get("error") or "not run")
    cold, warm = phase_time(deploy.get("cold_full")), phase_time(deploy.get("warm_code_only"))
    speedup = ratio(cold, warm)
    publishes = (deploy.get("warm_code_only") or {}).get("layer_publishes") or []
    ok = speedup is not None and speedup >= WARM_SPEEDUP_MIN and _all_zero(publishes)
    measured = (f"{fmt_ratio(speedup)} ({fmt_s(cold)} -> {fmt_s(warm)}), "
                f"layer publishes {fmt_counts(publishes)}")
    return TargetResult(name, goal, PASS if ok else FAIL, measured)


def _noop_target(deploy: dict | None) -> TargetResult:
    name = "no-op redeploy" + (f" ({deploy['project']})" if deploy else "")
    goal = "0 layer publishes, 0 new function versions"
    if not deploy or deploy.get("error"):
        return TargetResult(name, goal, FAIL if deploy else SKIP,
                            (deploy or {}).get("error") or "not run")
    noop = deploy.get("noop") or {}
    publishes, versions = noop.get("layer_publishes") or [], noop.get("new_versions") or []
    ok = _all_zero(publishes) and _all_zero(versions)
    measured = (f"{fmt_s(phase_time(noop))}, layer publishes {fmt_counts(publishes)}, "
                f"new versions {fmt_counts(versions)}")
    return TargetResult(name, goal, PASS if ok else FAIL, measured)


def _lambda3_unusable(name: str, goal: str, lambda3: dict | None) -> TargetResult | None:
    """The verdict when lambda3's own build did not run or failed, else None."""
    if not lambda3:
        return TargetResult(name, goal, SKIP, "not run")
    if not lambda3.get("ok"):
        return TargetResult(name, goal, FAIL, f"lambda3 failed: {short(lambda3.get('error'))}")
    return None


def _web_vs_sam_target(web: dict | None) -> TargetResult:
    name = "web cold build vs sam build"
    goal = f">= {WEB_SPEEDUP_VS_SAM_MIN:g}x faster than sam build, and not larger unzipped"
    web = web or {}
    lambda3, sam = web.get("lambda3"), web.get("sam")
    unusable = _lambda3_unusable(name, goal, lambda3)
    if unusable:
        return unusable
    if not sam or sam.get("skipped"):
        return TargetResult(name, goal, SKIP, "sam build not run (--skip-sam)")
    if not sam.get("ok"):
        return TargetResult(name, goal, SKIP,
                            f"sam build failed, nothing to compare: {short(sam.get('error'))}")
    speedup = ratio(tool_time(sam), tool_time(lambda3))
    size = ratio(lambda3.get("unzipped"), sam.get("unzipped"))
    ok = (speedup is not None and speedup >= WEB_SPEEDUP_VS_SAM_MIN and size is not None
          and size <= 1.0)
    measured = (f"{fmt_ratio(speedup)} faster ({fmt_s(tool_time(lambda3))} vs "
                f"{fmt_s(tool_time(sam))}); unzipped {fmt_bytes(lambda3.get('unzipped'))} vs "
                f"{fmt_bytes(sam.get('unzipped'))} ({fmt_pct(size)} of sam)")
    return TargetResult(name, goal, PASS if ok else FAIL, measured)


def _data_vs_naive_target(data: dict | None) -> TargetResult:
    name = "data set size vs naive install"
    goal = (f"<= {DATA_SIZE_VS_NAIVE_MAX:.0%} of the naive unzipped size, every import passes, "
            "every wheel loadable on the target")
    data = data or {}
    lambda3, naive = data.get("lambda3"), data.get("naive")
    unusable = _lambda3_unusable(name, goal, lambda3)
    if unusable:
        return unusable
    if not naive or not naive.get("ok"):
        return TargetResult(name, goal, SKIP, "naive install did not produce a result")
    size = ratio(lambda3.get("unzipped"), naive.get("unzipped"))
    imports = (lambda3.get("imports") or {}).get("ok") is True
    loadable = (lambda3.get("loadable") or {}).get("ok") is True
    ok = size is not None and size <= DATA_SIZE_VS_NAIVE_MAX and imports and loadable
    measured = (f"unzipped {fmt_bytes(lambda3.get('unzipped'))} vs "
                f"{fmt_bytes(naive.get('unzipped'))} ({fmt_pct(size)} of naive, "
                f"{fmt_pct(None if size is None else 1 - size)} smaller); imports "
                f"{imports_text(lambda3)}; loadable on target: {'yes' if loadable else 'no'}")
    return TargetResult(name, goal, PASS if ok else FAIL, measured)


def _determinism_target(det: dict | None) -> TargetResult:
    name = "identical rebuilds"
    goal = "100% of rebuilds byte-identical (sha256 of every zip)"
    if not det:
        return TargetResult(name, goal, SKIP, "not run")
    if det.get("error"):
        return TargetResult(name, goal, FAIL, short(det["error"]))
    same, total = det.get("identical_builds", 0), det.get("builds", 0)
    ok = det.get("identical") is True and total > 1
    return TargetResult(name, goal, PASS if ok else FAIL,
                        f"{same}/{total} builds identical ({', '.join(det.get('variants', []))})")


# -- formatting --------------------------------------------------------------------------------


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def fmt_ratio(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def fmt_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def fmt_counts(values: Sequence[int] | None) -> str:
    if not values:
        return "-"
    distinct = sorted(set(values))
    return str(distinct[0]) if len(distinct) == 1 else "/".join(map(str, values))


def short(text: str | None, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def imports_text(tool: dict) -> str:
    imports = tool.get("imports") or {}
    if not imports:
        return "-"
    checked, failed = imports.get("checked", 0), imports.get("failed") or {}
    return f"{checked - len(failed)}/{checked}"
