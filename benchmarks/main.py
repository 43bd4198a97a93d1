"""`benchmarks/run`: lambda3 against `sam build` and a naive `pip install -t` + `zip -r`,
measured side by side in one run, plus redeploys on the emulator, determinism and what each
lever gains. Writes benchmarks/results/latest.json and latest.md; see docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import action_overhead, cold_levers, monorepo
from benchmarks import levers as lever_runs
from benchmarks.deploy import run_deploys
from benchmarks.measure import (
    check_imports,
    distributions,
    ensure_runtime_sdk,
    find_python,
    loadable,
)
from benchmarks.projects import NAMES, PROJECTS_DIR, RUNTIME, project_dirs
from benchmarks.report import render_markdown, render_text, summary
from benchmarks.targets import TOOLS, evaluate_targets, tool_time
from benchmarks.tools import (
    ROOT,
    Run,
    descendants,
    ensure_sam,
    kill_tree,
    lambda3_build,
    lambda3_layout,
    naive_build,
    pypi_env,
    running_below,
    sam_build,
    sam_version,
    stats_of,
)

BENCH = ROOT / "benchmarks"
CACHE = BENCH / ".cache"
RESULTS = BENCH / "results"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quick", action="store_true",
                        help="one run of each, fewer rebuilds, no slow levers (a smoke run)")
    parser.add_argument("--skip-sam", action="store_true", help="leave sam build out")
    parser.add_argument("--runs", type=int, help="cold builds per tool and project "
                        "(default 3, --quick 1); the median is reported")
    parser.add_argument("--timeout", type=float, help="seconds one build may take before it "
                        "is killed and reported as failed (default 240, --quick 90)")
    parser.add_argument("--only", choices=("cold", "deploy", "determinism", "levers", "action",
                                           "monorepo", "cold-levers"),
                        action="append", help="run only these sections (repeatable)")
    parser.add_argument("--project", choices=NAMES, action="append",
                        help="cold builds of these projects only (default: all)")
    parser.add_argument("--deploy-project", choices=NAMES, action="append",
                        help="project(s) for the redeploy section (default: web and data, "
                        "--quick: web)")
    parser.add_argument("--no-builder-function", action="store_true",
                        help="redeploys: skip the bootstrapped builder, drive the handler")
    parser.add_argument("--profile", choices=NAMES, metavar="PROJECT",
                        help="instead of benchmarking: profile one cold lambda3 build of "
                        "PROJECT with pyinstrument (results/profile-PROJECT.txt and .html)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.timeout = args.timeout or (45.0 if args.quick else 150.0)
    return args


def requirement_names(project: Path) -> list[str]:
    names = []
    for line in (project / "deps" / "requirements.txt").read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.append(re.sub(r"[-_.]+", "-", match[1]).lower())
    return names


# -- cold builds -------------------------------------------------------------------------------


class ColdBench:
    def __init__(self, args: argparse.Namespace, work: Path):
        from builder.runtimes import make_target

        self.args, self.work = args, work
        self.target = make_target(RUNTIME, "x86_64")
        self.python = find_python(RUNTIME.removeprefix("python"))
        if not self.python:
            raise SystemExit(f"benchmarks: no {RUNTIME} interpreter found (needed for the "
                             "import checks, the naive install and sam build)")
        self.runtime_sdk = ensure_runtime_sdk(CACHE, self.python)
        self.sam, self.sam_error = None, None
        if not args.skip_sam:
            try:
                self.sam = ensure_sam(CACHE, log)
            except subprocess.CalledProcessError as error:
                self.sam_error = f"could not install aws-sam-cli: {error}"

    def run(self, projects: dict[str, Path]) -> dict:
        cold: dict[str, dict] = {}
        for name, project in projects.items():
            tools = [t for t in TOOLS if not (t == "sam" and self.args.skip_sam)]
            results = {t: {"ok": True, "times": []} for t in tools}
            if self.args.skip_sam:
                results["sam"] = {"skipped": True}
            elif self.sam_error:
                results["sam"] = {"ok": False, "times": [], "error": self.sam_error}
            for index in range(self.args.runs):
                for tool in tools:
                    if results[tool]["ok"]:
                        self._once(name, project, tool, index, results[tool])
            cold[name] = {t: results[t] for t in TOOLS if t in results}
        return cold

    def _once(self, name: str, project: Path, tool: str, index: int, result: dict) -> None:
        work = self.work / name / f"{tool}-{index}"
        shutil.rmtree(work, ignore_errors=True)
        env = pypi_env(work / "caches")
        timeout = self.args.timeout
        if tool == "lambda3":
            run = lambda3_build(project, work, env, timeout=timeout)
            if run.ok:
                lambda3_layout(run, work)
        elif tool == "sam":
            run = sam_build(project, work, env, self.sam, timeout=timeout)
        else:
            run = naive_build(project, work, env, self.python, timeout=timeout)
        result["times"].append(round(run.seconds, 3))
        log(f"cold {name} {tool} #{index + 1}: " + (f"{run.seconds:.2f} s" if run.ok else
                                                    f"FAILED after {run.seconds:.1f} s: "
                                                    f"{run.error[:300]}"))
        if not run.ok:
            result.update(ok=False, error=run.error)
            return
        if tool == "lambda3":
            output = run.extra["output"]
            result["steps"] = output.get("timings")
            result.setdefault("builds", []).append(
                {"components": [{k: c[k] for k in ("name", "code_sha256")}
                                for c in output["components"]]})
        if "files" not in result:
            self._inspect(project, run, result)
        shutil.rmtree(work, ignore_errors=True)

    def _inspect(self, project: Path, run: Run, result: dict) -> None:
        files, unzipped = stats_of(run)
        event = json.loads((project / "event.json").read_text())
        imports = check_imports(run.layout, self.python, self.runtime_sdk, handler="app.handler",
                                event=event)
        found: dict[str, str] = {}
        for site in [run.layout.task, *run.layout.site_dirs]:
            found.update(distributions(site))
        wanted = set(requirement_names(project)) | {"numpy", "pandas", "urllib3"}
        result.update(size=run.size, unzipped=unzipped, files=files, imports=imports,
                      loadable=loadable(run.layout, self.target),
                      versions={k: v for k, v in sorted(found.items()) if k in wanted},
                      distributions=len(found))


# -- sections ----------------------------------------------------------------------------------


def deploy_section(args, projects: dict[str, Path], work: Path) -> dict:
    chosen = args.deploy_project or (["web"] if args.quick else ["web", "data"])
    results = run_deploys({name: projects[name] for name in chosen}, work,
                          pypi_env(work / "caches"), runs=args.runs, timeout=args.timeout,
                          prefer_builder_function=not args.no_builder_function,
                          in_process=() if args.quick else ("web",), log=log)
    return results


def cold_levers_section(args, projects: dict[str, Path], work: Path, results: dict) -> None:
    """The web set's cold build: its steps, and each cold-build lever on vs off."""
    found = cold_levers.run(projects["web"], "web", work, pypi_env,
                            repeats=1 if args.quick else 5, timeout=args.timeout, log=log)
    results["cold_steps"] = found["steps"]
    results["levers"] = results.get("levers", []) + found["rows"]


def levers_section(args, projects: dict[str, Path], cold: dict, work: Path) -> list[dict]:
    repeats = 1 if args.quick else 3
    rows: list[dict] = []
    site = None
    names = ["web"] if args.quick else [
        n for n in NAMES if (cold.get(n, {}).get("lambda3") or {"ok": True}).get("ok")]
    for name in names:
        env = pypi_env(work / name / "caches")
        cold_s = tool_time(cold.get(name, {}).get("lambda3"))
        found, staged = lever_runs.deps_cache_levers(
            projects[name], name, work / name / "deps", env, repeats=repeats,
            timeout=args.timeout, cold_s=cold_s, log=log)
        rows += found
        site = staged if staged and staged.is_dir() else site
        if staged and staged.is_dir():
            rows.append(lever_runs.zip_threads_lever(staged, name, work / name, repeats=repeats))
            rows.append(lever_runs.zip_level_lever(staged, name, work / name, repeats=repeats))
            python = find_python(RUNTIME.removeprefix("python"))
            if python:
                rows.append(lever_runs.deps_bytecode_lever(
                    staged, name, work / name, python, ensure_runtime_sdk(CACHE, python),
                    repeats=3 if args.quick else 5))
    rows += lever_runs.installer_levers(projects["web"], "web", work / "installers",
                                        pypi_env(work / "installers-caches"),
                                        timeout=args.timeout, warm=not args.quick)
    rows.append(lever_runs.import_lever(repeats=3 if args.quick else 5))
    rows.append(lever_runs.bytecode_lever(work / "bytecode", repeats=3 if args.quick else 5))
    return rows


def determinism_section(args, projects: dict[str, Path], cold: dict, work: Path) -> dict:
    earlier = [{"components": b["components"]}
               for b in (cold.get("web", {}).get("lambda3") or {}).get("builds", [])]
    return lever_runs.determinism(projects["web"], "web", work, pypi_env(work / "caches"),
                                  rebuilds=3 if args.quick else 5, timeout=args.timeout,
                                  earlier=earlier, log=log)


# -- meta, notes, output -----------------------------------------------------------------------


def _git(*argv: str) -> str:
    proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def meta(args, sam) -> dict:
    from builder.install import installer_version

    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    info = {
        "commit": (_git("rev-parse", "--short", "HEAD") or "?") + ("+dirty" if dirty else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cpus, {platform.system()} {platform.machine()}, "
                   f"Python {platform.python_version()}",
        "installer": installer_version(),
        "runs": args.runs,
    }
    if sam:
        info["sam"] = sam_version(sam)
    return info


NOTES = [
    "Cold = empty caches for every tool: a new lambda3 work dir (uv cache included), a new pip "
    "cache, a new sam build and cache dir; PyPI only for all (PIP_CONFIG_FILE=/dev/null, "
    "UV_NO_CONFIG=1, UV_DEFAULT_INDEX=https://pypi.org/simple). Download time from PyPI is "
    "included for every tool alike.",
    "lambda3 = builder.build.build() in a fresh interpreter, what `lambda3 build PROJECT "
    "--workdir W --out O` runs; sizes are its three zips (function, dependencies, shared).",
    "sam build runs with --parallel, without containers, on the local python3.11; its "
    "zipped size is its three build folders zipped at deflate level 6 (sam build does not zip).",
    "naive = `pip install -t` (local python3.11, default options) + the code copied in + "
    "`zip -r`.",
    "imports: every top-level module of every installed distribution (top_level.txt or RECORD) "
    "imported, then the handler called once with the project's event.json, in `python3.11 -I "
    "-S` whose sys.path is only the result (task root, then layers) plus the SDK the Lambda "
    "runtime provides (the pins in builder/runtimes.py), the same for every tool.",
    "loadable on target: every installed wheel's tags checked against python3.11 x86_64 "
    "manylinux_2_26 (Amazon Linux 2, glibc 2.26); this machine's own glibc is newer, so an "
    "import passing here does not prove that.",
]


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    extra = ("\n" + monorepo.render(results["monorepo"]) + "\n") if "monorepo" in results else ""
    (RESULTS / "latest.md").write_text(render_markdown(results) + extra)


def profile(project_name: str, args) -> int:
    """One cold lambda3 build under pyinstrument (installed under benchmarks/.cache/tools).
    Past the time limit the build's child processes are killed, so the build fails and the
    profile of what it did until then is still written."""
    tools = CACHE / "tools"
    if not (tools / "pyinstrument").is_dir():
        log("installing pyinstrument into benchmarks/.cache/tools (first use only)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(tools),
                        "pyinstrument"], check=True)
    project = project_dirs()[project_name]
    work = CACHE / "work" / "profile"
    shutil.rmtree(work, ignore_errors=True)
    env = {**pypi_env(work / "caches"), "PYTHONPATH": str(tools)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    session = RESULTS / f"profile-{project_name}.pyisession"
    argv = [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(session),
            "-m", "benchmarks.lambda3_build", "build", "--source", str(project),
            "--workdir", str(work / "workdir"), "--out", str(work / "out")]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        log(f"profile: past {args.timeout:.0f} s, still running: {running_below(proc.pid)}; "
            "stopping the build's child processes")
        for child in descendants(proc.pid):
            kill_tree(child)
        proc.wait()
    log(f"profile: build exit {proc.returncode} after {time.perf_counter() - started:.1f} s")
    for renderer, suffix in (("text", "txt"), ("html", "html")):
        dest = RESULTS / f"profile-{project_name}.{suffix}"
        subprocess.run([sys.executable, "-m", "pyinstrument", "--load", str(session), "-r",
                        renderer, "-o", str(dest)], env=env, check=True)
        log(f"profile: {dest}")
    print((RESULTS / f"profile-{project_name}.txt").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one branch per section
    args = parse_args(argv)
    if args.profile:
        return profile(args.profile, args)
    sections = set(args.only or ("cold", "deploy", "determinism", "levers", "cold-levers",
                                 "action", "monorepo"))
    started = time.perf_counter()
    projects = project_dirs()
    cold_projects = {k: v for k, v in projects.items() if k in (args.project or NAMES)}
    work = CACHE / "work"
    shutil.rmtree(work, ignore_errors=True)
    results: dict = {"schema": 1, "notes": list(NOTES)}
    cold: dict = {}
    sam = None
    if "cold" in sections:
        bench = ColdBench(args, work / "cold")
        sam = bench.sam
        cold = bench.run(cold_projects)
        results["cold"] = cold
    if "deploy" in sections:
        results["deploy"] = deploy_section(args, projects, work / "deploy")
        deploy_notes: list[str] = []
        for deployed in results["deploy"].values():
            deploy_notes = deployed.pop("notes", deploy_notes)
        results["notes"] += deploy_notes
    if "determinism" in sections:
        results["determinism"] = determinism_section(args, projects, cold, work / "determinism")
    if "levers" in sections:
        results["levers"] = levers_section(args, projects, cold, work / "levers")
    if "cold-levers" in sections:
        cold_levers_section(args, projects, work / "cold-levers", results)
    if "action" in sections:  # the GitHub Action's start-up, old way vs new way
        results["action"] = action_overhead.measure(args.runs, log=lambda t: log(f"action {t}"))
    if "monorepo" in sections:  # five functions together against one build each
        results["monorepo"] = monorepo.run_monorepo(
            PROJECTS_DIR / "monorepo", work / "monorepo", runs=args.runs,
            timeout=args.timeout, log=log)
    results["meta"] = {**meta(args, sam), "quick": args.quick,
                       "elapsed": f"{time.perf_counter() - started:.0f} s"}
    results["targets"] = [t.to_json() for t in evaluate_targets(results)]
    results["summary"] = summary(results)
    write_results(results)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render_text(results))
        if "action" in results:
            print(action_overhead.render(results["action"]))
        if "monorepo" in results:
            print(monorepo.render(results["monorepo"]))
        print(f"results: {RESULTS / 'latest.json'}, {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
