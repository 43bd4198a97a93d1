"""Running each tool once on a project, with empty caches, and timing it.

Every tool gets the same treatment: its own fresh cache directories, PyPI as the only
index (`PIP_CONFIG_FILE=/dev/null`, no `PIP_FIND_LINKS`, `UV_NO_CONFIG=1`,
`UV_DEFAULT_INDEX=https://pypi.org/simple`), a time limit, and its whole process group
ended when that limit passes. Downloads from PyPI are part of every tool's time alike.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.measure import Layout, tree_stats, unzip, zip_tree, zip_with_binary

ROOT = Path(__file__).resolve().parent.parent
PYPI = "https://pypi.org/simple"
_DROPPED = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT",
            "PIP_NO_INDEX", "PIP_REQUIRE_VIRTUALENV", "PYTHONPATH", "VIRTUAL_ENV")


@dataclass
class Run:
    """One timed run of one tool."""

    ok: bool
    seconds: float
    error: str | None = None
    layout: Layout | None = None
    size: int | None = None  # zipped bytes, all of the result's zips together
    extra: dict = field(default_factory=dict)


@dataclass
class Proc:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    timed_out: bool
    running: str = ""  # what was still running when a timeout killed it


def pypi_env(caches: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a tool: PyPI only, every cache under `caches` (fresh per run)."""
    env = {k: v for k, v in (base if base is not None else os.environ).items()
           if k not in _DROPPED and not k.startswith("UV_")}
    caches.mkdir(parents=True, exist_ok=True)
    env.update({
        "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(caches / "pip"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_CONFIG": "1", "UV_DEFAULT_INDEX": PYPI, "UV_CACHE_DIR": str(caches / "uv"),
        "XDG_CACHE_HOME": str(caches / "xdg"),
        "SAM_CLI_TELEMETRY": "0", "SAM_CLI_CONTACT_EMAIL": "",
    })
    return env


def run_process(argv: list[str], *, env: dict[str, str], cwd: Path | None = None,
                timeout: float, log: Path | None = None) -> Proc:
    """Run `argv` in its own process group; past `timeout` the whole group is killed."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    timed_out, running = False, ""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        running = running_below(proc.pid)
        kill_tree(proc.pid)
        stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(argv)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n"
                       + (f"--- killed after {timeout} s while running: {running}\n"
                          if timed_out else ""))
    return Proc(proc.returncode, seconds, stdout, stderr, timed_out, running)


def _processes() -> dict[int, tuple[int, list[str], str]]:
    """pid -> (parent pid, argv, cwd) of every process we may look at."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = [a.decode(errors="replace")
                    for a in (stat.parent / "cmdline").read_bytes().split(b"\0") if a]
            cwd = os.readlink(stat.parent / "cwd")
        except (OSError, IndexError, ValueError):
            continue
        found[int(stat.parent.name)] = (ppid, argv, cwd)
    return found


def descendants(root: int) -> list[int]:
    """Every process below `root` (build tools such as ninja put their jobs in process
    groups of their own, so the group alone is not enough)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, pending = [], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_tree(root: int) -> None:
    """Freeze `root` and everything below it (so nothing new is started), then kill it all."""
    frozen: set[int] = set()
    for _ in range(3):
        for pid in [root, *descendants(root)]:
            if pid not in frozen:
                frozen.add(pid)
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
    for pid in frozen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def running_below(root: int) -> str:
    """What the processes below `root` are doing, in a few words: the programs, and the
    packages being compiled from source (uv unpacks each sdist to .../<name>/<version>/)."""
    table = _processes()
    programs: dict[str, int] = {}
    building: set[str] = set()
    for pid in descendants(root):
        if pid not in table or not table[pid][1]:
            continue
        _, argv, cwd = table[pid]
        program = Path(argv[0]).name
        if any("build_wheel" in word or "mesonpy" in word for word in argv):
            program = "sdist build backend"
        programs[program] = programs.get(program, 0) + 1
        found = re.search(r"/sdists-v\d+/[^/]+/([^/]+)/([^/]+)/", cwd + "/")
        if found:
            building.add(f"{found[1]} {found[2]}")
    summary = ", ".join(f"{name} x{count}" if count > 1 else name
                        for name, count in sorted(programs.items()))
    if building:
        summary += "; building from source: " + ", ".join(sorted(building))
    return summary or "nothing"


def failure_text(proc: Proc, timeout: float, lines: int = 6) -> str:
    """What went wrong, for the report: the error lines a tool printed, else its tail."""
    text = (proc.stderr or "") + "\n" + (proc.stdout or "")
    if "Traceback (most recent call last)" in (proc.stderr or "") and not proc.timed_out:
        last = [line for line in proc.stderr.splitlines() if line.strip()]
        return "crashed: " + last[-1].strip()
    picked = [line.strip() for line in text.splitlines()
              if line.strip().startswith(("Error", "error", "Build Failed", "ERROR",
                                          "lambda3 build", "InstallError"))]
    tail = picked[-lines:] or [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    message = " | ".join(tail)
    if proc.timed_out:
        last = [line.strip() for line in (proc.stderr or "").splitlines() if line.strip()]
        return (f"timed out after {timeout:.0f} s (killed) while running: {proc.running}; "
                "last output: " + " | ".join(last[-2:]))
    return message or f"exit code {proc.returncode}"


# -- lambda3 -----------------------------------------------------------------------------------


def lambda3_build(project: Path, work: Path, env: dict[str, str], *, timeout: float,
                  workdir: Path | None = None, refresh: bool = False,
                  python: str = sys.executable, extra_env: dict[str, str] | None = None) -> Run:
    """`build()` in a fresh interpreter, as `lambda3 build PROJECT --out --workdir` runs it."""
    out = work / "out"
    workdir = workdir or work / "workdir"
    argv = [python, "-m", "benchmarks.lambda3_build", "build", "--source", str(project),
            "--workdir", str(workdir), "--out", str(out)] + (["--refresh"] if refresh else [])
    proc = run_process(argv, env={**env, **(extra_env or {})}, cwd=ROOT, timeout=timeout,
                       log=work / "lambda3.log")
    if proc.returncode != 0 or proc.timed_out:
        return Run(False, proc.seconds, failure_text(proc, timeout))
    data = json.loads(proc.stdout)
    return Run(True, proc.seconds, extra={"output": data})


def lambda3_layout(run: Run, work: Path) -> Run:
    """Unpack a lambda3 build's zips as Lambda would: function in the task root, layers
    (in the function's order) in one opt dir."""
    components = run.extra["output"]["components"]
    task, opt = work / "unpacked" / "task", work / "unpacked" / "opt"
    for component in components:
        unzip(Path(component["zip"]), task if component["kind"] == "function" else opt)
    run.layout = Layout(task, [opt / "python"], [task, opt])
    run.size = sum(c["size"] for c in components)
    return run


# -- sam build ---------------------------------------------------------------------------------


def sam_build(project: Path, work: Path, env: dict[str, str], sam: Path, *,
              timeout: float) -> Run:
    build = work / "sam-build"
    argv = [str(sam), "build", "--template-file", str(project / "template.yaml"),
            "--build-dir", str(build), "--cache-dir", str(work / "sam-cache"), "--parallel"]
    proc = run_process(argv, env=env, cwd=work, timeout=timeout, log=work / "sam.log")
    if proc.returncode != 0 or proc.timed_out:
        return Run(False, proc.seconds, failure_text(proc, timeout))
    task = build / "Function"
    layers = [build / "Dependencies" / "python", build / "Shared" / "python"]
    size = sum(zip_tree(d, work / "zips" / f"{d.name}.zip")
               for d in (task, build / "Dependencies", build / "Shared"))
    layout = Layout(task, layers, [task, build / "Dependencies", build / "Shared"])
    return Run(True, proc.seconds, layout=layout, size=size)


def ensure_sam(cache: Path, log=print) -> Path:
    """aws-sam-cli in its own virtualenv under `cache` (installed on first use, ~45 s)."""
    venv = cache / "sam-venv"
    sam = venv / "bin" / "sam"
    if sam.exists():
        return sam
    python = shutil.which("python3.11") or sys.executable
    log(f"installing aws-sam-cli into {venv} (first use only, about a minute)")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "aws-sam-cli"], check=True)
    return sam


def sam_version(sam: Path) -> str:
    proc = subprocess.run([str(sam), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "?"


# -- pip install -t + zip -r -------------------------------------------------------------------


def naive_build(project: Path, work: Path, env: dict[str, str], python: str, *,
                timeout: float) -> Run:
    """The classic: pip install -t into a folder, copy the code in, zip -r the folder."""
    target = work / "naive"
    started = time.perf_counter()
    argv = [python, "-m", "pip", "install", "--target", str(target), "-r",
            str(project / "deps" / "requirements.txt")]
    proc = run_process(argv, env=env, cwd=work, timeout=timeout, log=work / "naive.log")
    if proc.returncode != 0 or proc.timed_out:
        return Run(False, proc.seconds, failure_text(proc, timeout))
    shutil.copytree(project / "src", target, dirs_exist_ok=True)
    shutil.copytree(project / "shared", target, dirs_exist_ok=True)
    size = zip_with_binary(target, work / "naive.zip")
    seconds = time.perf_counter() - started
    return Run(True, seconds, layout=Layout(target, [], [target]), size=size)


def stats_of(run: Run) -> tuple[int, int]:
    return tree_stats(run.layout.roots) if run.layout else (0, 0)
