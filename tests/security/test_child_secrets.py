"""A build's own code (a preinstall line, an sdist's build backend) finds none of the
builder's secrets: not in its environment, not in /proc/<pid>/environ or cmdline of any
process, not in the memory of the processes above it up to the builder, not in any file
under the work dir. What it finds it writes into the package it builds; the test then looks
for every canary in the built zips and the builder's log.

The builder runs in a child of pytest (it makes itself non-dumpable, and its environment
holds the canaries). Lambda runs the builder as an unprivileged user; run as root, this test
runs the builder as `nobody`, since root reads any process's /proc files whatever it says.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "lambda3-hunt-builder"  # in the builder's command line: where the hunt for memory stops
NOBODY = 65534
CANARY = re.compile(r"l3canary[0-9a-f]{16}")
AWS_CANARIES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI")

HUNTER = r'''
"""Looks for canary secrets wherever this process can reach (stdlib only)."""
import json, os, re, sys, zipfile

PATTERN = re.compile(rb"l3canary[0-9a-f]{16}")
MARKER = b"lambda3-hunt-builder"
MEM_BUDGET, REGION_MAX, FILE_MAX = 768 << 20, 96 << 20, 64 << 20


def read(path, limit=FILE_MAX):
    with open(path, "rb") as f:
        return f.read(limit)


def ancestors(stats):
    pid = os.getppid()
    while pid > 1:
        yield pid
        if MARKER in read(f"/proc/{pid}/cmdline"):
            stats["builder"] = pid
            return
        pid = int(read(f"/proc/{pid}/stat").rpartition(b")")[2].split()[1])


def memory(pid, budget):
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if not fields[1].startswith("r") or (len(fields) > 5 and fields[5].startswith("[v")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            size = min(end - start, REGION_MAX, budget[0])
            try:
                mem.seek(start)
                data = mem.read(size)
            except (OSError, OverflowError, ValueError):
                continue
            budget[0] -= len(data)
            yield data
            if budget[0] <= 0:
                return


def hunt():
    found, places = set(), set()
    stats = {"environ": 0, "environ_denied": 0, "cmdline": 0, "cmdline_denied": 0,
             "builder": None, "ancestors": [], "mem_read": [], "mem_denied": [], "files": 0}

    def scan(data, place):
        matches = PATTERN.findall(data)
        found.update(m.decode() for m in matches)
        if matches:
            places.add(place)

    scan("\n".join(f"{k}={v}" for k, v in os.environ.items()).encode(), "own environment")
    for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
        for name in ("environ", "cmdline"):
            try:
                scan(read(f"/proc/{pid}/{name}"), f"/proc/{pid}/{name}")
                stats[name] += 1
            except OSError:
                stats[name + "_denied"] += 1
    budget = [MEM_BUDGET]
    for pid in ancestors(stats):
        stats["ancestors"].append(pid)
        try:
            for data in memory(pid, budget):
                scan(data, f"/proc/{pid}/mem")
            stats["mem_read"].append(pid)
        except OSError:
            stats["mem_denied"].append(pid)
    for top, _, names in os.walk(os.environ["HUNT_ROOT"]):
        for name in names:
            try:
                scan(read(os.path.join(top, name)), os.path.join(top, name))
                stats["files"] += 1
            except OSError:
                pass
    report = json.dumps({"found": sorted(found), "where": sorted(places), "stats": stats},
                        indent=1)
    print("hunter found:", report, flush=True)  # the log is a way out too
    return report


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, dist = "hunterpkg-1.0-py3-none-any.whl", "hunterpkg-1.0.dist-info"
    files = {"hunterpkg/__init__.py": "", "hunterpkg/found.json": hunt(),
             f"{dist}/METADATA": "Metadata-Version: 2.1\nName: hunterpkg\nVersion: 1.0\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hunt\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for arcname, text in files.items():
            wheel.writestr(arcname, text)
    return name


if __name__ == "__main__":  # a preinstall line: python3 hunterpkg/hunt_backend.py OUT_DIR
    os.makedirs(sys.argv[1], exist_ok=True)
    with open(os.path.join(sys.argv[1], "found.json"), "w") as out:
        out.write(hunt())
'''

SPEC = """
function:
  runtimes: [python3.11]
  files: [app.py]
layers:
  dependencies: [requirements.txt]
  hunted:
    preinstall:
      - python3 hunterpkg/hunt_backend.py hunted
    files: [hunted]
"""

PYPROJECT = """
[build-system]
requires = []
build-backend = "hunt_backend"
backend-path = ["."]

[project]
name = "hunterpkg"
version = "1.0"
"""

BUILDER = """
import json, logging, sys
from pathlib import Path
from builder.build import BuildOptions, build
from builder.redact import REDACTOR, install_log_redaction

request = json.loads(sys.stdin.readline())  # the token arrives as in an event, not in argv
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")
install_log_redaction()
REDACTOR.add(request["token"])
output = build(BuildOptions(repository=request["source"], ref="main", token=request["token"],
                            workdir=Path(request["workdir"]), out_dir=Path(request["out"])))
print(json.dumps(output.to_json()))
"""


def canary() -> str:
    return "l3canary" + secrets.token_hex(8)


@pytest.fixture
def git_token() -> str:
    return canary()


@pytest.fixture
def run_dir():
    """A directory the builder's user owns (outside pytest's private temp dir when that
    user is nobody)."""
    path = Path(tempfile.mkdtemp(prefix="lambda3-hunt-"))
    if os.geteuid() == 0:
        path.chmod(0o755)
        os.chown(path, NOBODY, NOBODY)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def builder_command(env: dict[str, str]) -> tuple[list[str], dict]:
    """The interpreter and the user to run the builder with: ours, or, when we are root,
    one that nobody can run, importing our code and packages."""
    if os.geteuid() != 0:
        return [sys.executable], {}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}",
                   sys.executable):  # a venv's base interpreter may sit in root's home
        check = subprocess.run([python, "-c", "import builder.build, dulwich, yaml, uv"],
                               env=env, user=NOBODY, group=NOBODY, extra_groups=[],
                               capture_output=True, check=False, cwd="/")
        if check.returncode == 0:
            return [python], {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    pytest.skip(f"no Python {version} here that an unprivileged user can run")


def test_build_code_finds_none_of_the_builders_secrets(make_repo, git_server, git_token,
                                                       run_dir):
    repo = make_repo({"app.py": "def handler(event, context):\n    return 1\n",
                      "build.yaml": SPEC, "requirements.txt": "hunterpkg @ ./hunterpkg\n",
                      "hunterpkg/pyproject.toml": PYPROJECT,
                      "hunterpkg/hunt_backend.py": HUNTER})
    url = git_server.add_repo("acme/app", repo.path)
    aws = {name: canary() for name in AWS_CANARIES}
    aws["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"http://127.0.0.1:9/{canary()}"
    canaries = [git_token, *(CANARY.search(v).group() for v in aws.values())]
    paths = [str(ROOT), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(run_dir / "home"),
           "TMPDIR": str(run_dir / "tmp"), "LANG": "C.UTF-8", "HUNT_ROOT": str(run_dir),
           "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), "AWS_REGION": "us-east-1",
           "PIP_CONFIG_FILE": os.devnull, **aws}
    argv, user = builder_command(env)
    for name in ("home", "tmp"):
        (run_dir / name).mkdir()
        if user:
            os.chown(run_dir / name, NOBODY, NOBODY)
    request = {"source": url, "token": git_token, "workdir": str(run_dir / "work"),
               "out": str(run_dir / "out")}
    done = subprocess.run([*argv, "-c", BUILDER, MARKER], input=json.dumps(request) + "\n",
                          env=env, cwd=run_dir, capture_output=True, text=True, timeout=120,
                          check=False, **user)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    zips = sorted((run_dir / "out").glob("*.zip"))
    assert {z.name for z in zips} == {"function.zip", "dependencies.zip", "hunted.zip"}
    reports = {}
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                data = archive.read(info).decode("utf-8", "replace")
                assert not [c for c in canaries if c in data], f"{path.name}:{info.filename}"
                if info.filename.endswith("found.json"):
                    reports[path.name] = json.loads(data)
    assert not [c for c in canaries if c in log]
    assert set(reports) == {"dependencies.zip", "hunted.zip"}  # both hunters ran
    for name, report in reports.items():
        stats = report["stats"]
        assert report["found"] == [], name
        assert stats["environ"] > 0 and stats["cmdline"] > 0 and stats["files"] > 0, name
        assert stats["builder"] in stats["ancestors"], name  # it walked up to the builder
        assert stats["builder"] in stats["mem_denied"], name


DUMPABLE = """
import ctypes
def handler(event, context):
    return ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_the_local_invokers_runtime_is_not_dumpable(aws):
    # Its environment holds the function's credentials and variables; what the function
    # starts runs as the same user.
    aws.create_function("dumpable", {"app.py": DUMPABLE})
    response = aws.client("lambda").invoke(FunctionName="dumpable", Payload=b"{}")
    assert json.loads(response["Payload"].read()) == 0
