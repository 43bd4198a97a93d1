"""Determinism (rebuild N ways, compare every zip's sha256) and what each speed lever gains,
measured side by side: dependency cache hit vs `refresh`, uv's persistent cache vs an empty
one, parallel compression vs one thread, uv vs pip, lazy imports vs eager ones, shipped
bytecode vs sources only."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.targets import fmt_bytes, median
from benchmarks.tools import ROOT, lambda3_build, run_process

EAGER_IMPORTS = ("import builder.handler, boto3, botocore.session, dulwich.client, "
                 "dulwich.repo, yaml")
LAZY_IMPORTS = "import builder.handler"


def _shas(output: dict) -> dict[str, str]:
    return {c["name"]: c["code_sha256"] for c in output["components"]}


def determinism(project: Path, name: str, work: Path, env: dict[str, str], *, rebuilds: int,
                timeout: float, earlier: list[dict] | None = None,
                log: Callable[[str], None] = print) -> dict:
    """Rebuild `project` `rebuilds` times with its dependencies reinstalled each time
    (fresh out dirs, one from a copy whose every mtime is touched, one with one zip thread),
    add the `earlier` builds (the cold ones, each in its own work dir), compare."""
    shutil.rmtree(work, ignore_errors=True)
    workdir = work / "workdir"
    builds: list[tuple[str, dict[str, str]]] = [("cold", _shas(o)) for o in earlier or []]
    touched = work / "touched"
    shutil.copytree(project, touched, ignore=shutil.ignore_patterns("__pycache__"))
    later = time.time() + 3600
    for path in touched.rglob("*"):
        os.utime(path, (later, later))
    plan = [("fresh out dir", project, {})] * max(1, rebuilds - 2)
    plan += [("every mtime touched", touched, {}),
             ("LAMBDA3_ZIP_THREADS=1", project, {"LAMBDA3_ZIP_THREADS": "1"})]
    for index, (variant, source, extra) in enumerate(plan):
        run = lambda3_build(source, work / f"build-{index}", env, timeout=timeout,
                            workdir=workdir, refresh=True, extra_env=extra)
        if not run.ok:
            return {"project": name, "error": f"rebuild '{variant}' failed: {run.error}"}
        builds.append((variant, _shas(run.extra["output"])))
    reference = builds[0][1]
    identical = sum(1 for _, shas in builds if shas == reference)
    artifacts: dict[str, list[str]] = {}
    for _, shas in builds:
        for artifact, sha in shas.items():
            artifacts.setdefault(artifact, []).append(sha)
    variants = sorted({v for v, _ in builds}, key=[v for v, _ in builds].index)
    log(f"determinism: {identical}/{len(builds)} builds identical")
    return {"project": name, "builds": len(builds), "identical_builds": identical,
            "identical": identical == len(builds), "variants": variants,
            "artifacts": artifacts}


def _repeat(times: int, action: Callable[[], float]) -> float | None:
    values = [action() for _ in range(times)]
    return median([v for v in values if v is not None])


def deps_cache_levers(project: Path, name: str, work: Path, env: dict[str, str], *,
                      repeats: int, timeout: float, cold_s: float | None,
                      log: Callable[[str], None] = print) -> tuple[list[dict], Path | None]:
    """Dependency cache hit vs `refresh` (reinstall from uv's warm cache), and uv's warm
    cache vs the cold build (empty caches). Returns the rows and the staged site dir."""
    shutil.rmtree(work, ignore_errors=True)
    workdir = work / "workdir"
    first = lambda3_build(project, work / "first", env, timeout=timeout, workdir=workdir)
    if not first.ok:
        return [{"name": f"dependency cache ({name})", "error": first.error}], None

    def build(refresh: bool) -> float | None:
        run = lambda3_build(project, work / "again", env, timeout=timeout, workdir=workdir,
                            refresh=refresh)
        return run.seconds if run.ok else None

    hit = _repeat(repeats, lambda: build(False))
    refresh = _repeat(repeats, lambda: build(True))
    log(f"levers: {name}: deps cache hit {hit:.2f} s, refresh {refresh:.2f} s")
    rows = [{"name": f"dependency cache ({name})", "on_s": hit, "off_s": refresh,
             "how": "unchanged requirements: cache hit vs --refresh (uv cache warm)"}]
    if cold_s is not None:
        rows.append({"name": f"uv persistent cache ({name})", "on_s": refresh, "off_s": cold_s,
                     "how": "--refresh with uv's cache warm vs the cold build (empty caches)"})
    return rows, workdir / "stage" / "dependencies" / "python"


def zip_threads_lever(site: Path, name: str, work: Path, *, repeats: int) -> dict:
    """make_zip of the installed dependency tree with one thread vs the default."""
    from builder.package import make_zip, walk_entries, zip_threads

    entries = walk_entries(site, "python")
    default = zip_threads()

    def timed(threads: int) -> float:
        started = time.perf_counter()
        make_zip(entries, work / f"threads-{threads}.zip", threads=threads)
        return time.perf_counter() - started

    on, off = _repeat(repeats, lambda: timed(default)), _repeat(repeats, lambda: timed(1))
    return {"name": f"parallel compression ({name})", "on_s": on, "off_s": off,
            "how": f"make_zip of the dependency tree ({len(entries)} files): "
                   f"{default} threads vs LAMBDA3_ZIP_THREADS=1"}


def zip_level_lever(site: Path, name: str, work: Path, *, repeats: int) -> dict:
    """The deflate level: lambda3's 6 against 1 (fastest), on the same threads. Reported, not
    taken: the level is part of every zip's bytes, so changing it republishes every layer
    once, and it trades time for zipped size (what S3 and Lambda store and transfer)."""
    from builder.package import COMPRESS_LEVEL, make_zip, walk_entries

    entries = walk_entries(site, "python")
    sizes: dict[int, int] = {}

    def timed(level: int) -> float:
        started = time.perf_counter()
        sizes[level] = make_zip(entries, work / f"level-{level}.zip", level=level).size
        return time.perf_counter() - started

    fast = _repeat(repeats, lambda: timed(1))
    kept = _repeat(repeats, lambda: timed(COMPRESS_LEVEL))
    growth = sizes[1] / sizes[COMPRESS_LEVEL] - 1
    return {"name": f"deflate level 1 instead of {COMPRESS_LEVEL} ({name}, not taken)",
            "on_s": fast, "off_s": kept,
            "how": f"make_zip of the dependency tree: zipped {fmt_bytes(sizes[COMPRESS_LEVEL])}"
                   f" -> {fmt_bytes(sizes[1])} (+{growth:.0%})"}


def deps_bytecode_lever(site: Path, name: str, work: Path, python: str, runtime_sdk: Path, *,
                        repeats: int) -> dict:
    """`bytecode: true` on the dependencies layer: a cold start importing every top-level
    module of the installed tree (with the runtime's SDK after it), shipped compiled vs
    sources only, in a fresh `python -I -S -B` (Lambda's layers are read-only, so sources
    are compiled on every cold start). The size it costs goes in the row too."""
    from benchmarks.measure import top_level_names, tree_stats
    from builder.bytecode import compile_bytecode

    label = f"dependencies shipped as bytecode ({name})"
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if subprocess.run([python, "-c", f"import sys; assert sys.version.startswith('{here}.')"],
                      check=False).returncode != 0:
        return {"name": label, "error": f"needs {python} to be Python {here}"}
    plain, compiled = work / "bytecode-plain", work / "bytecode-compiled"
    for dest in (plain, compiled):
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(site, dest)
    count = compile_bytecode(compiled, "/opt/python", env=dict(os.environ))
    names = top_level_names(plain)

    def timed(path: Path) -> float:
        code = (f"import sys; sys.path[:0] = {[str(path), str(runtime_sdk)]!r}; "
                + "; ".join(f"import {n}" for n in names))
        started = time.perf_counter()
        subprocess.run([python, "-I", "-S", "-B", "-c", code], check=True)
        return time.perf_counter() - started

    on, off = _repeat(repeats, lambda: timed(compiled)), _repeat(repeats, lambda: timed(plain))
    before, after = tree_stats([plain])[1], tree_stats([compiled])[1]
    return {"name": label, "on_s": on, "off_s": off,
            "how": f"fresh `python -I -S -B` importing the {len(names)} top-level modules: "
                   f"{count} .pyc shipped vs sources only; unzipped {fmt_bytes(before)} -> "
                   f"{fmt_bytes(after)} (+{(after - before) / before:.0%})"}


def installer_levers(project: Path, name: str, work: Path, env: dict[str, str], *,
                     timeout: float, warm: bool) -> list[dict]:
    """builder.install with uv vs pip forced: empty cache (cold), then warm cache."""
    shutil.rmtree(work, ignore_errors=True)
    requirements = project / "deps" / "requirements.txt"
    seconds: dict[tuple[str, str], float | None] = {}
    errors = []
    for installer in ("uv", "pip"):
        for state in ("cold", "warm") if warm else ("cold",):
            argv = [sys.executable, "-m", "benchmarks.lambda3_build", "install", "--installer",
                    installer, "--requirements", str(requirements), "--dest",
                    str(work / f"{installer}-{state}"), "--cache", str(work / f"{installer}-cache")]
            proc = run_process(argv, env=env, cwd=ROOT, timeout=timeout,
                               log=work / f"{installer}-{state}.log")
            ok = proc.returncode == 0 and not proc.timed_out
            seconds[installer, state] = proc.seconds if ok else None
            if not ok:
                errors.append(f"{installer} {state}: " + (
                    f"timed out after {timeout:.0f} s" if proc.timed_out
                    else proc.stderr.strip().splitlines()[-1:][0] if proc.stderr.strip()
                    else f"exit {proc.returncode}"))
    rows = [{"name": f"uv instead of pip, {state} cache ({name})",
             "on_s": seconds.get(("uv", state)), "off_s": seconds.get(("pip", state)),
             "how": "builder.install.install_requirements(installer=...) for python3.11, "
                    + ("empty cache" if state == "cold" else "same cache again, new target")}
            for state in (("cold", "warm") if warm else ("cold",))]
    if errors:
        rows[0]["error"] = "; ".join(errors)
    return rows


def import_lever(*, repeats: int) -> dict:
    """Cold-start import of the builder's handler: as it is (lazy) vs everything eagerly."""
    def timed(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        return time.perf_counter() - started

    timed(EAGER_IMPORTS)  # warm the OS file cache for both
    on, off = _repeat(repeats, lambda: timed(LAZY_IMPORTS)), \
        _repeat(repeats, lambda: timed(EAGER_IMPORTS))
    return {"name": "lazy imports", "on_s": on, "off_s": off,
            "how": "a fresh interpreter importing builder.handler vs also importing boto3, "
                   "dulwich and yaml up front (what a ping or a failed request pays)"}


BUILDER_IMPORTS = ("import builder.handler, builder.build, builder.source, builder.spec, "
                   "builder.reconcile, dulwich.client, dulwich.repo, yaml")


def bytecode_lever(work: Path, *, repeats: int) -> dict:
    """The toolchain layer (dulwich, urllib3, yaml) shipped with the builder's bytecode
    (`builder.bytecode.compile_bytecode`, what the self-install does), against sources only.
    Lambda's layers are read-only, so without shipped bytecode every cold start of the
    builder compiles them again: measured as a fresh `python -I -S -B` importing what a
    deploy imports, the builder's own code as sources in both."""
    import importlib.util

    from builder.bytecode import compile_bytecode

    shutil.rmtree(work, ignore_errors=True)
    plain, compiled = work / "plain", work / "compiled"
    for dest in (plain, compiled):
        shutil.copytree(ROOT / "builder", dest / "builder",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("dulwich", "urllib3", "yaml"):
            origin = Path(importlib.util.find_spec(name).origin).parent
            shutil.copytree(origin, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
            if dest == compiled:
                compile_bytecode(dest / name, f"/opt/python/{name}", env=dict(os.environ))

    def timed(path: Path) -> float:
        code = f"import sys; sys.path.insert(0, {str(path)!r}); {BUILDER_IMPORTS}"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], check=True)
        return time.perf_counter() - started

    on, off = _repeat(repeats, lambda: timed(compiled)), _repeat(repeats, lambda: timed(plain))
    return {"name": "toolchain layer shipped as bytecode", "on_s": on, "off_s": off,
            "how": "fresh `python -I -S -B` importing the builder, dulwich and yaml: the "
                   "toolchain with unchecked-hash .pyc vs sources only"}
