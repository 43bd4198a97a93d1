"""What each cold-build lever gains on the web set, on against off in the same run: one
cold build's step times (where the time goes), then each change measured side by side on
the same installed tree or with the same empty caches, alternating on and off.

- large files deflated on the pool (`make_zip`) instead of on the writer thread;
- uv hardlinking from its cache into the target instead of copying.
"""
from __future__ import annotations

import itertools
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.targets import median
from benchmarks.tools import ROOT, lambda3_build, run_process


def _alternate(repeats: int, on: Callable[[], float | None], off: Callable[[], float | None]
               ) -> tuple[float | None, float | None]:
    """Medians of `on` and `off`, run in turns so that both see the same machine."""
    ons, offs = [], []
    for _ in range(repeats):
        ons.append(on())
        offs.append(off())
    return median([v for v in ons if v is not None]), median([v for v in offs if v is not None])


def cold_steps(project: Path, work: Path, env: dict[str, str], *, timeout: float) -> dict:
    """One cold build (empty caches): the builder's own step timings, and the staged
    dependency tree (kept for the zip levers)."""
    shutil.rmtree(work, ignore_errors=True)
    run = lambda3_build(project, work / "build", env, timeout=timeout, workdir=work / "workdir")
    if not run.ok:
        return {"error": run.error}
    return {"seconds": run.seconds, "steps": run.extra["output"]["timings"],
            "site": work / "workdir" / "stage" / "dependencies" / "python"}


def large_files_lever(site: Path, name: str, work: Path, *, repeats: int) -> dict:
    from builder.package import SMALL_FILE, make_zip, walk_entries

    entries = walk_entries(site, "python")
    large = sum(1 for e in entries if e.path.stat().st_size > SMALL_FILE)

    def timed(on_pool: bool) -> float:
        started = time.perf_counter()
        make_zip(entries, work / f"pool-{on_pool}.zip", large_on_pool=on_pool)
        return time.perf_counter() - started

    on, off = _alternate(repeats, lambda: timed(True), lambda: timed(False))
    same = (work / "pool-True.zip").read_bytes() == (work / "pool-False.zip").read_bytes()
    return {"name": f"large files deflated on the pool ({name})", "on_s": on, "off_s": off,
            "how": f"make_zip of the dependency tree, its {large} files over 4 MB on the "
                   "thread pool vs on the writer thread" + ("; same bytes" if same else
                                                            "; BYTES DIFFER")}


def link_mode_lever(project: Path, name: str, work: Path, env: dict[str, str], *,
                    repeats: int, timeout: float) -> dict:
    requirements = project / "deps" / "requirements.txt"
    errors: list[str] = []
    runs = itertools.count()

    def timed(mode: str) -> float | None:
        folder = work / f"link-{next(runs)}"
        shutil.rmtree(folder, ignore_errors=True)
        argv = [sys.executable, "-m", "benchmarks.lambda3_build", "install", "--installer",
                "uv", "--requirements", str(requirements), "--dest", str(folder / "site"),
                "--cache", str(folder / "cache"), "--link-mode", mode]
        proc = run_process(argv, env=env, cwd=ROOT, timeout=timeout, log=folder.with_suffix(".log"))
        shutil.rmtree(folder, ignore_errors=True)
        if proc.returncode != 0 or proc.timed_out:
            errors.append(f"{mode}: exit {proc.returncode}")
            return None
        return proc.seconds

    on, off = _alternate(repeats, lambda: timed("hardlink"), lambda: timed("copy"))
    row = {"name": f"uv hardlinks from its cache ({name})", "on_s": on, "off_s": off,
           "how": "install_requirements with an empty uv cache each time: "
                  "--link-mode=hardlink vs copy"}
    if errors:
        row["error"] = "; ".join(errors)
    return row


def run(project: Path, name: str, work: Path, env_for: Callable[[Path], dict[str, str]], *,
        repeats: int, timeout: float, log: Callable[[str], None] = print) -> dict:
    """The cold build's steps and the lever rows for one project."""
    cold = cold_steps(project, work / "cold", env_for(work / "cold" / "caches"),
                      timeout=timeout)
    if "error" in cold:
        return {"steps": None, "rows": [{"name": f"cold-build levers ({name})",
                                         "error": cold["error"]}]}
    log(f"cold levers: {name}: one cold build {cold['seconds']:.2f} s, steps {cold['steps']}")
    rows = [large_files_lever(cold["site"], name, work, repeats=repeats),
            link_mode_lever(project, name, work, env_for(work / "link-caches"),
                            repeats=repeats, timeout=timeout)]
    for row in rows:
        log(f"cold levers: {row['name']}: on {row.get('on_s')}, off {row.get('off_s')}")
    return {"steps": {"wall_s": round(cold["seconds"], 3), **cold["steps"]}, "rows": rows}
