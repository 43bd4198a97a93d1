#!/usr/bin/env python3
"""LocalStack's Lambda control plane on this host, without Docker, for the tests/localstack tier.

    .venv/bin/python scripts/localstack.py install  # make .localstack-venv once (Python 3.12+)
    .venv/bin/python scripts/localstack.py serve    # start on 127.0.0.1, print the URL; ^C stops
    .venv/bin/python scripts/localstack.py check    # install, start, wait until ready, stop
    .venv/bin/python scripts/localstack.py python   # the Python 3.12+ it would use (exit 1: none)

LocalStack needs Python 3.12+, so it lives in its own virtual environment, `.localstack-venv`,
made with uv from `requirements-localstack.txt` plus the runtime-executor plugin in
`tests/localstack/executor` (installed editable). It is made again when either changes.
The server listens on 127.0.0.1 only (hypercorn gateway; its DNS server is off), keeps its
files under a temporary directory and is stopped with its whole process group.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".localstack-venv"
REQUIREMENTS = ROOT / "requirements-localstack.txt"
PLUGIN = ROOT / "tests" / "localstack" / "executor"
STAMP_NAME = ".lambda3-installed"
SERVICES = "lambda,s3,iam,sts,logs,cloudwatch"
PYTHON_NAMES = ("python3.13", "python3.12", "python3.14")


class LocalStackError(RuntimeError):
    """LocalStack could not be installed or started; the message says why."""


# -- the virtual environment ----------------------------------------------------------------
def find_python() -> str:
    """A Python 3.12+ interpreter: $LAMBDA3_LOCALSTACK_PYTHON, one on PATH, or pyenv's."""
    chosen = os.environ.get("LAMBDA3_LOCALSTACK_PYTHON")
    if chosen:
        return chosen
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(name) for name in PYTHON_NAMES]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.1[2-9]*/bin/python3"), reverse=True)
    for candidate in filter(None, candidates):
        if _is_recent_python(candidate):
            return candidate
    raise LocalStackError("LocalStack needs Python 3.12 or later and none was found: install "
                          "one or set LAMBDA3_LOCALSTACK_PYTHON to its path")


def _is_recent_python(path: str) -> bool:
    check = [path, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"]
    return subprocess.run(check, capture_output=True).returncode == 0


def _uv() -> str:
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except ImportError:
        found = shutil.which("uv")
        if not found:
            raise LocalStackError("uv is needed to install LocalStack (pip install uv)") from None
        return found


def install_digest() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update((PLUGIN / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def is_installed(venv: Path = VENV) -> bool:
    stamp = venv / STAMP_NAME
    return venv_python(venv).exists() and stamp.exists() and stamp.read_text() == install_digest()


def ensure_venv(venv: Path = VENV) -> Path:
    """The LocalStack interpreter, installing the environment first if it is missing or stale."""
    if is_installed(venv):
        return venv_python(venv)
    uv = _uv()
    shutil.rmtree(venv, ignore_errors=True)
    _run([uv, "venv", "--quiet", "--python", find_python(), str(venv)])
    _run([uv, "pip", "install", "--quiet", "--python", str(venv_python(venv)),
          "-r", str(REQUIREMENTS), "--editable", str(PLUGIN)])
    (venv / STAMP_NAME).write_text(install_digest())
    return venv_python(venv)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip()[-2000:]
        raise LocalStackError(f"{' '.join(command)} failed ({done.returncode}): {tail}")


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(port: int, root: Path) -> dict[str, str]:
    """LocalStack's settings; none of the caller's AWS variables or credentials."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    environment = {name: os.environ[name] for name in keep if name in os.environ}
    environment.update({
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER": "hypercorn",
        "DNS_ADDRESS": "0",
        "SERVICES": SERVICES,
        "LAMBDA_RUNTIME_EXECUTOR": "lambda3",
        "LAMBDA3_SOURCE_ROOT": str(ROOT),  # the executor runs functions with lambda3's worker
        "LOCALSTACK_TELEMETRY_DISABLED": "1",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "FILESYSTEM_ROOT": str(root / "filesystem"),
        "TMPDIR": str(root / "tmp"),
    })
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    return environment


class LocalStack:
    """One LocalStack server on 127.0.0.1, from start() (or `with`) until stop()."""

    def __init__(self, python: Path | str | None = None, *, timeout: float = 90.0,
                 environment: Mapping[str, str] | None = None) -> None:
        self.python = str(python or venv_python())
        self.timeout = timeout
        self.environment = dict(environment or {})
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.start_seconds = 0.0
        self._root: tempfile.TemporaryDirectory | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self._root.name) / "localstack.log"

    def start(self) -> LocalStack:
        started = time.monotonic()
        self._root = tempfile.TemporaryDirectory(prefix="lambda3-localstack-")
        self.port = free_port()
        environment = {**server_environment(self.port, Path(self._root.name)),
                       **self.environment}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "localstack.runtime.main"], env=environment,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self._root.name)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def health(self) -> dict | None:
        url = f"{self.endpoint_url}/_localstack/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (127.0.0.1)
                return json.load(answer)
        except (OSError, ValueError):
            return None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalStackError(f"LocalStack exited with {self.process.returncode} while "
                                      f"starting:\n{self.log_tail()}")
            services = (self.health() or {}).get("services", {})
            if services.get("lambda") in ("available", "running"):
                return
            time.sleep(0.2)
        raise LocalStackError(f"LocalStack's lambda was not available after {self.timeout:.0f} s:"
                              f"\n{self.log_tail()}")

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds (nothing is kept, so
        nothing is lost); then its files are removed."""
        if self.process is not None and self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)  # whatever it left in its group
        self.process = None
        if self._root is not None:
            self._root.cleanup()
            self._root = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


# -- the command -----------------------------------------------------------------------------
def _install() -> Path:
    fresh = not is_installed()
    started = time.monotonic()
    python = ensure_venv()
    what = "installed" if fresh else "already installed"
    print(f"LocalStack {what} in {VENV} ({time.monotonic() - started:.1f} s)", flush=True)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["install", "serve", "check", "python"])
    args = parser.parse_args(argv)
    try:
        if args.command == "python":  # the interpreter LocalStack would use, or why none
            print(find_python())
            return 0
        python = _install()
        if args.command == "install":
            return 0
        with LocalStack(python) as server:
            print(f"LocalStack ready at {server.endpoint_url} ({server.start_seconds:.1f} s)",
                  flush=True)
            if args.command == "serve":
                _serve_until_interrupted(server)
    except LocalStackError as error:
        print(f"localstack: {error}", file=sys.stderr)
        return 1
    return 0


def _serve_until_interrupted(server: LocalStack) -> None:
    """Until ^C or SIGTERM (a background job ignores SIGINT), or until LocalStack exits."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
