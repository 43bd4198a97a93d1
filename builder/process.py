"""Running a child process: the one way the builder does it.

- An argument list, never a shell (a user's `preinstall` line is run as `/bin/sh -c LINE`,
  where the shell is the point).
- An environment with no credential source in it (`child_env`): no AWS keys, session or
  container tokens, web identity, profile or credential files, no Lambda Runtime API
  address, nothing named like a token, secret, password or key, no value holding a
  registered secret; the instance metadata service is turned off for SDKs.
- No inherited descriptors, its own process group (killed when the child ends, so nothing it
  started in that group outlives it), and a timeout.
- Output streamed line by line, redacted, to a callback as it arrives; only a bounded tail is
  kept (for errors and for callers that read what the child said).

Before the first child starts the builder makes itself non-dumpable (Linux): a child of the
same user can then neither read the builder's /proc/<pid>/environ or memory nor ptrace it.
"""
from __future__ import annotations

import logging
import os
import selectors
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from builder.errors import Lambda3Error
from builder.redact import MIN_SECRET_LENGTH, REDACTOR

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 900.0  # Lambda's own limit: no child outlives the builder's invocation
TAIL_LINES = 200
TAIL_BYTES = 64 * 1024
LINE_LIMIT = 8 * 1024  # a longer line is cut there (a child printing no newline at all)
ERROR_TAIL_LINES = 20  # what an error message shows of the tail
CUT = " [line cut]"

_AWS_KEPT = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE", "AWS_EXECUTION_ENV"})
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "API_KEY", "APIKEY",
                 "PRIVATE_KEY", "ACCESS_KEY")
# Set for every child: SDKs find no credentials in files or the metadata service either.
_SET = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
# Where the user puts credentials for the installer on purpose (index URLs, proxies).
_INSTALLER_PREFIXES = ("PIP_", "UV_")
_PR_SET_DUMPABLE = 4
_DRAIN = 2.0  # seconds to read on after the child exits (a process that left its group)

OnLine = Callable[[str], None]
_undumpable = False


class ProcessError(Lambda3Error):
    """A child failed or timed out: the command that ran and the end of what it said,
    both redacted. The caller names the step (`step=`)."""

    def __init__(self, argv: Iterable[str], tail: str, returncode: int | None, *,
                 what: str | None = None, timeout: float | None = None,
                 secrets: Iterable[str | None] = (), **kwargs):
        argv, secrets = list(argv), _usable(secrets)
        self.argv = [redact(arg, secrets) for arg in argv]
        self.returncode, self.timeout = returncode, timeout
        self.tail = redact("\n".join(tail.strip().splitlines()[-ERROR_TAIL_LINES:]), secrets)
        command = redact(shlex.join(argv), secrets)
        what = what or (Path(self.argv[0]).name if self.argv else "command")
        if timeout is not None:
            head = f"{what} timed out after {timeout:g} s: {command}"
        else:
            head = f"{what} failed with exit code {returncode}: {command}"
        super().__init__(head + (f"\n{self.tail}" if self.tail else ""), **kwargs)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without `secrets` and without what builder.redact.REDACTOR masks."""
    for secret in _usable(secrets):
        text = text.replace(secret, "***")
    return REDACTOR(text)


def _usable(secrets: Iterable[str | None]) -> list[str]:
    return [s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH]


def scrubbed_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without AWS credentials, tokens, secrets and passwords.

    Index settings (PIP_INDEX_URL, UV_INDEX_URL, PIP_EXTRA_INDEX_URL, ...), proxies, PATH,
    HOME, TMPDIR and locale pass through, credentials in an index URL included: the user put
    them there for the installer.
    """
    source = os.environ if base is None else base
    return {name: value for name, value in source.items() if not is_secret_name(name)}


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if upper.startswith("AWS_") and upper not in _AWS_KEPT:
        return True
    # KEY as a word (DEPLOY_KEY, SSH_KEY_FILE), not inside one (UV_KEYRING_PROVIDER)
    return any(word in upper for word in _SECRET_WORDS) or "KEY" in upper.split("_")


def child_env(base: Mapping[str, str] | None = None, *,
              secrets: Iterable[str | None] = ()) -> dict[str, str]:
    """What a child gets: `scrubbed_env(base)` without any value holding one of `secrets`
    or a secret the redactor knows (installer and proxy settings keep the URL credentials
    the user gave them), with SDK credential files and the metadata service turned off."""
    secrets = _usable(secrets)
    env = {}
    for name, value in scrubbed_env(base).items():
        if any(secret in value for secret in secrets):
            continue
        if REDACTOR(value) != value and not _installer_setting(name):
            continue
        env[name] = value
    env.update(_SET)
    return env


def _installer_setting(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(_INSTALLER_PREFIXES) or upper.endswith("_PROXY")


def make_undumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0) once: same-user processes (our children) can no longer read
    this process's /proc/<pid>/environ, /proc/<pid>/mem, or ptrace it. A no-op off Linux."""
    global _undumpable
    if _undumpable:
        return
    _undumpable = True
    if not sys.platform.startswith("linux"):
        log.debug("process: not Linux, the builder stays dumpable")
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.debug("process: prctl(PR_SET_DUMPABLE) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        log.debug("process: no prctl here (%s)", exc)


def run(argv: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT, on_line: OnLine | None = None,
        secrets: Iterable[str | None] = (), step: str | None = None
        ) -> subprocess.CompletedProcess:
    """Run `argv` to its end with `child_env(env)`; every line of its output, redacted, goes
    to `on_line` as it arrives. Returns the exit code and the bounded, redacted tails of
    stdout and stderr; raises ProcessError (named for `step`) when it times out."""
    secrets = _usable(secrets)
    make_undumpable()
    proc = subprocess.Popen(
        list(argv), env=child_env(env, secrets=secrets), cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True, start_new_session=True)
    streams = {proc.stdout: _Stream(on_line, secrets), proc.stderr: _Stream(on_line, secrets)}
    try:
        timed_out = not _pump(proc, streams, time.monotonic() + timeout)
    finally:
        _kill_group(proc)
        for pipe in streams:
            pipe.close()
        proc.wait()
    out, err = (stream.tail() for stream in streams.values())
    if timed_out:
        raise ProcessError(argv, err or out, None, timeout=timeout, secrets=secrets, step=step)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def _pump(proc: subprocess.Popen, streams: dict, deadline: float) -> bool:
    """Read both pipes until they close; False when the deadline came first. Once the child
    has exited, what it left running in its group is killed (and so its pipes close)."""
    exited = None
    with selectors.DefaultSelector() as selector:
        for pipe in streams:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if exited is not None and now > exited + _DRAIN:
                break  # a process that left the group still holds a pipe: stop reading
            left = deadline - now
            if left <= 0:
                return False
            for key, _ in selector.select(min(left, 0.5)):
                data = os.read(key.fileobj.fileno(), 65536)
                if data:
                    streams[key.fileobj].feed(data)
                else:
                    selector.unregister(key.fileobj)
                    streams[key.fileobj].close()
            if exited is None and proc.poll() is not None:
                exited = time.monotonic()
                _kill_group(proc)
    return True


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Stream:
    """One pipe's bytes -> redacted lines, given to `on_line`; keeps a bounded tail."""

    def __init__(self, on_line: OnLine | None, secrets: list[str]):
        self.on_line, self.secrets = on_line, secrets
        self.buffer = b""
        self.cutting = False  # inside a line already cut: dropped until its newline
        self.lines: deque[str] = deque()
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) >= LINE_LIMIT:
                    if not self.cutting:
                        self._emit(self.buffer[:LINE_LIMIT], cut=True)
                    self.buffer, self.cutting = b"", True
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 1:]
            if self.cutting:
                self.cutting = False
            else:
                self._emit(line[:LINE_LIMIT], cut=len(line) > LINE_LIMIT)

    def close(self) -> None:
        if self.buffer and not self.cutting:
            self._emit(self.buffer[:LINE_LIMIT], cut=len(self.buffer) > LINE_LIMIT)
        self.buffer, self.cutting = b"", False

    def _emit(self, raw: bytes, *, cut: bool) -> None:
        line = redact(raw.decode("utf-8", "replace").rstrip("\r"), self.secrets)
        if cut:
            line += CUT
        self.lines.append(line)
        self.size += len(line) + 1
        while len(self.lines) > TAIL_LINES or self.size > TAIL_BYTES:
            self.size -= len(self.lines.popleft()) + 1
        if self.on_line is not None:
            self.on_line(line)

    def tail(self) -> str:
        return "".join(line + "\n" for line in self.lines)
