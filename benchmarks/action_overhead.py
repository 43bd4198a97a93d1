"""The GitHub Action's own start-up, old way against new way, measured side by side in one run.

Each run is action.yml run as a runner runs it (lambda3/embedded/runner.py) in a fresh
runner temp dir, against the emulator with a local OIDC issuer and a stand-in builder that
answers at once, so what is timed is the action, not a build:

- old: the action.yml and requirements-action.txt of OLD_COMMIT (setup-python, then
  `python -m venv` with ensurepip and `pip install` of boto3 + requests), today's code;
- new: today's action.yml (the runner's python3 unpacks the hash-locked wheels itself).

Cold = empty caches (a new pip cache for the old way; an empty actions/cache store and a
fresh tool cache for the new way). Warm = a cache hit: the old way keeps its pip cache, the
new way restores its folder from the cache store the cold run saved. Both with PyPI as the
only index. Figures: from the step's start to the builder being invoked (the action's
`::group::builder log` line), and the whole action. Run: `python -m benchmarks.action_overhead`
(`--runs N`, `--json`); `benchmarks/run --only action` runs it as a section.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.tools import ROOT, pypi_env

OLD_COMMIT = "19d912f"  # the last action.yml with venv + pip
ROLE_ARN = "arn:aws:iam::123456789012:role/lambda3-deploy"
STAND_IN = '''
def handler(event, context):
    print("lambda3 request " + event["log_marker"])
    return {"ok": True, "commit": "d" * 40, "version": "1", "function_arn":
            "arn:aws:lambda:us-east-1:123456789012:function:" + event["function"],
            "timings": {"total": 0.0}}
'''
INVOKED = "> builder log"


def old_action_dir(into: Path) -> Path:
    """The old action: its action.yml and requirements from git, today's code beside them."""
    into.mkdir(parents=True)
    for name in ("action.yml", "requirements-action.txt"):
        text = subprocess.run(["git", "show", f"{OLD_COMMIT}:{name}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
        (into / name).write_text(text)
    for name in ("entrypoint.py", "lambda3", "builder"):
        (into / name).symlink_to(ROOT / name)
    return into


def stand_in_builder(endpoint_url: str) -> None:
    """The deploy role and a builder that answers at once, on the emulator."""
    import io
    import zipfile

    from builder.clients import Clients

    clients = Clients(region="us-east-1", endpoint_url=endpoint_url, credentials={
        "aws_access_key_id": "bench", "aws_secret_access_key": "bench"})
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole"}]})
    iam = clients("iam")
    iam.create_role(RoleName="lambda3-deploy", AssumeRolePolicyDocument=trust)
    role = iam.create_role(RoleName="bench-builder", AssumeRolePolicyDocument=trust)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", STAND_IN)
    clients("lambda").create_function(
        FunctionName="lambda3-builder", Runtime=f"python{sys.version_info[0]}."
        f"{sys.version_info[1]}", Handler="app.handler", Role=role["Role"]["Arn"],
        Code={"ZipFile": code.getvalue()})


def run_once(action_dir: Path, runner_temp: Path, env: dict[str, str], *, cache_store: Path,
             endpoint_url: str, issuer) -> dict:
    from lambda3.embedded.runner import ActionRunner

    marks: dict[str, float] = {}

    def on_line(line: str) -> None:
        if line == INVOKED and "invoked" not in marks:
            marks["invoked"] = time.perf_counter()

    base_env = {**env, **issuer.runner_env(), "LAMBDA3_ENDPOINT_URL": endpoint_url,
                "AWS_EC2_METADATA_DISABLED": "true"}
    runner = ActionRunner(action_dir, runner_temp, {"token": "bench-token",
                          "repository": "bench/hello", "sha": "e" * 40}, base_env,
                          on_line=on_line, cache_store=cache_store)
    started = time.perf_counter()
    result = runner.run({"aws-region": "us-east-1", "role-to-assume": ROLE_ARN,
                         "function-name": "hello"})
    total = time.perf_counter() - started
    if result.exit_code or "invoked" not in marks:
        raise SystemExit("action_overhead: the action failed:\n" + "\n".join(result.log[-20:]))
    return {"to_invoke": round(marks["invoked"] - started, 3), "total": round(total, 3)}


def measure(runs: int, log=lambda text: None) -> dict:
    from lambda3.embedded.emulator import Emulator
    from lambda3.embedded.oidc_issuer import OidcIssuer

    work = Path(tempfile.mkdtemp(prefix="lambda3-action-bench-"))
    times: dict[str, list[dict]] = {k: [] for k in ("old cold", "old warm", "new cold",
                                                    "new warm")}
    try:
        with Emulator(state_dir=work / "emulator", region="us-east-1") as emulator, \
                OidcIssuer(repository="bench/hello") as issuer:
            emulator.reset()
            stand_in_builder(emulator.endpoint_url)
            old = old_action_dir(work / "old-action")
            for index in range(runs):
                here = work / f"run{index}"
                kinds = {"old": (old, here / "pip-cache"), "new": (ROOT, here / "cache-store")}
                for kind, (action_dir, caches) in kinds.items():  # interleaved, same load
                    for warmth in ("cold", "warm"):
                        env = pypi_env(caches)
                        found = run_once(action_dir, here / f"{kind}-{warmth}", env,
                                         cache_store=caches / "store",
                                         endpoint_url=emulator.endpoint_url, issuer=issuer)
                        times[f"{kind} {warmth}"].append(found)
                        log(f"{kind} {warmth} #{index + 1}: {found['to_invoke']:.2f} s to "
                            f"the invoke, {found['total']:.2f} s in all")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summarize(times, runs)


def summarize(times: dict[str, list[dict]], runs: int) -> dict:
    medians = {name: {key: round(statistics.median(t[key] for t in found), 3)
                      for key in ("to_invoke", "total")} for name, found in times.items()}
    ratios = {warmth: round(medians[f"old {warmth}"]["to_invoke"]
                            / medians[f"new {warmth}"]["to_invoke"], 1)
              for warmth in ("cold", "warm")}
    targets = {"cold": 3.0, "warm": 1.0}
    return {"runs": runs, "medians": medians, "ratios": ratios, "runs_raw": times,
            "targets": {w: {"limit_s": limit, "new_s": medians[f"new {w}"]["to_invoke"],
                            "pass": medians[f"new {w}"]["to_invoke"] <= limit}
                        for w, limit in targets.items()},
            "machine": f"{os.cpu_count()} cpus, Python {sys.version.split()[0]}"}


def render(results: dict) -> str:
    med, ratios = results["medians"], results["ratios"]
    lines = [f"action start-up, step start to the builder invoked (medians of "
             f"{results['runs']}; whole action in brackets)",
             f"{'':6} {'old (venv + pip)':>22} {'new (locked wheels)':>22} {'old/new':>8}"
             f" {'target':>8}"]
    for warmth in ("cold", "warm"):
        old, new = med[f"old {warmth}"], med[f"new {warmth}"]
        target = results["targets"][warmth]
        verdict = f"<= {target['limit_s']:.0f} s {'PASS' if target['pass'] else 'FAIL'}"
        lines.append(f"{warmth:6} {old['to_invoke']:>8.2f} s ({old['total']:.2f} s)"
                     f"{'':4} {new['to_invoke']:>8.2f} s ({new['total']:.2f} s)"
                     f"{'':4} {ratios[warmth]:>6.1f}x  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.action_overhead",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = measure(args.runs, log=lambda text: print(f"[action] {text}", file=sys.stderr,
                                                        flush=True))
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
