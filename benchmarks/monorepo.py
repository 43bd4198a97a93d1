"""The monorepo section: the five functions of benchmarks/projects/monorepo built by lambda3
in one invocation ("together": one fetch, the dependency and installer caches shared, the
shared `core` layer built once) against one invocation per function ("separately", each in
its own work dir, as one pipeline per function would build them), side by side in one run:

- cold: empty work dirs and caches for both;
- one_function: a code change in one function (api), the work dirs warm;
- shared_library: a change of the shared library (the `core` layer every function lists);
- alone: another code change in api, built with `--only api` in the warm "together" work
  dir: what building only the function that changed costs, the floor for one_function.

Each build runs in a fresh interpreter (`benchmarks.lambda3_build build`), so the times
include the start-up each separate build pays too.
"""
from __future__ import annotations

import re
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path

from benchmarks.tools import ROOT, failure_text, pypi_env, run_process

SCENARIOS = ("cold", "one_function", "shared_library")
CHANGED = "api"  # the function whose code changes
LABELS = {"cold": "cold build", "one_function": f"one function's code changed ({CHANGED})",
          "shared_library": "shared library changed (layer core)"}


def function_keys(project: Path) -> list[str]:
    import yaml

    return list(yaml.safe_load((project / "build.yaml").read_text())["functions"])


def change(source: Path, scenario: str, stamp: str) -> None:
    """The edit a scenario measures: a new VERSION line in api's handler or the library."""
    target = {"one_function": f"services/{CHANGED}/src/app.py", "alone":
              f"services/{CHANGED}/src/app.py",
              "shared_library": "libs/shopcore/src/shopcore/__init__.py"}.get(scenario)
    if target is None:
        return
    path = source / target
    text, count = re.subn(r'^VERSION = ".*"$', f'VERSION = "{stamp}"', path.read_text(),
                          count=1, flags=re.M)
    if count != 1:
        raise ValueError(f"{path} has no VERSION line to change")
    path.write_text(text)


def build(source: Path, work: Path, *, timeout: float, only: tuple[str, ...] = ()) -> dict:
    """One `lambda3 build` in a fresh interpreter: seconds, zips by (function, component),
    install seconds; or the failure."""
    import json
    import sys

    argv = [sys.executable, "-m", "benchmarks.lambda3_build", "build", "--source", str(source),
            "--workdir", str(work / "workdir"), "--out", str(work / "out")]
    for key in only:
        argv += ["--only", key]
    proc = run_process(argv, env=pypi_env(work / "caches"), cwd=ROOT, timeout=timeout,
                       log=work / "lambda3.log")
    if proc.returncode != 0 or proc.timed_out:
        return {"ok": False, "seconds": proc.seconds, "error": failure_text(proc, timeout)}
    output = json.loads(proc.stdout)
    parts = output.get("functions") or [{"key": only[0] if only else "function",
                                         "components": output["components"]}]
    zips = {_zip_name(part["key"], c): c["code_sha256"] for part in parts
            for c in part["components"]}
    return {"ok": True, "seconds": round(proc.seconds, 3), "zips": zips,
            "install": (output.get("timings") or {}).get("install", 0.0)}


def _zip_name(key: str, component: dict) -> str:
    """A function's own zips by function; a custom layer by itself (one, however many
    functions list it)."""
    if component["kind"] == "layer" and component["name"] != "dependencies":
        return component["name"]
    return f"{key}/{component['name']}"


def run_monorepo(project: Path, work: Path, *, runs: int, timeout: float,
                 log: Callable[[str], None]) -> dict:
    keys = function_keys(project)
    times: dict[str, dict[str, list[float]]] = {
        s: {"together": [], "separately": []} for s in (*SCENARIOS, "alone")}
    changed: dict[str, dict[str, int]] = {}
    for index in range(runs):
        base = work / f"run-{index}"
        shutil.rmtree(base, ignore_errors=True)
        source = base / "source"
        shutil.copytree(project, source)
        before: dict[str, dict[str, str]] = {"together": {}, "separately": {}}
        for scenario in SCENARIOS:
            change(source, scenario, f"{index}-{scenario}")
            order = ("separately", "together") if index % 2 else ("together", "separately")
            for how in order:
                found = _measure(how, source, base, keys, timeout)
                if not found["ok"]:
                    log(f"monorepo {scenario} {how}: FAILED: {found['error'][:300]}")
                    return {"ok": False, "error": f"{scenario} {how}: {found['error']}"}
                times[scenario][how].append(found["seconds"])
                changed.setdefault(scenario, {})[how] = sum(
                    1 for name, sha in found["zips"].items() if before[how].get(name) != sha)
                before[how] = found["zips"]
                log(f"monorepo {scenario} {how} #{index + 1}: {found['seconds']:.2f} s")
        change(source, "alone", f"{index}-alone")
        alone = build(source, base / "together", timeout=timeout, only=(CHANGED,))
        if alone["ok"]:
            times["alone"]["together"].append(alone["seconds"])
        shutil.rmtree(base, ignore_errors=True)
    return summarise(keys, times, changed, runs)


def _measure(how: str, source: Path, base: Path, keys: list[str], timeout: float) -> dict:
    if how == "together":
        return build(source, base / "together", timeout=timeout)
    seconds, zips = 0.0, {}
    for key in keys:
        found = build(source, base / "separately" / key, timeout=timeout, only=(key,))
        if not found["ok"]:
            return found
        seconds += found["seconds"]
        zips.update(found["zips"])
    return {"ok": True, "seconds": round(seconds, 3), "zips": zips}


def summarise(keys: list[str], times: dict, changed: dict, runs: int) -> dict:
    scenarios = {}
    for scenario in SCENARIOS:
        together = statistics.median(times[scenario]["together"])
        separately = statistics.median(times[scenario]["separately"])
        scenarios[scenario] = {
            "together_s": round(together, 2), "separately_s": round(separately, 2),
            "ratio": round(separately / together, 1) if together else None,
            "zips_changed": changed.get(scenario, {}).get("together"),
            "times": times[scenario]}
    alone = times["alone"]["together"]
    return {"ok": True, "functions": keys, "runs": runs, "changed_function": CHANGED,
            "scenarios": scenarios,
            "alone_s": round(statistics.median(alone), 2) if alone else None}


def render(results: dict) -> str:
    """The section as text: each scenario together and separately, and their ratio."""
    if not results.get("ok"):
        return f"monorepo: failed: {results.get('error')}"
    count = len(results["functions"])
    lines = [f"monorepo ({count} functions, median of {results['runs']}): together = one "
             "lambda3 build of every function; separately = one build per function",
             "| scenario | together | separately | separately / together | zips changed |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for scenario, row in results["scenarios"].items():
        lines.append(f"| {LABELS[scenario]} | {row['together_s']:.2f} s | "
                     f"{row['separately_s']:.2f} s | {row['ratio']}x | {row['zips_changed']} |")
    alone, one = results.get("alone_s"), results["scenarios"]["one_function"]["together_s"]
    if alone:
        lines.append(f"{results['changed_function']} alone after a change of its code "
                     f"(--only {results['changed_function']}, warm): {alone:.2f} s; all "
                     f"{count} together after the same change: {one:.2f} s "
                     f"({one / alone:.1f}x for {count}x the functions)")
    return "\n".join(lines)
