"""Run a composite action the way a GitHub runner does, on this machine.

`ActionRunner` reads `action.yml`, evaluates each step's `env:` mapping (`inputs.*`,
`steps.*.outputs.*`, `github.*`), runs the `run:` scripts with bash and the runner's
variables (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ACTION_PATH, RUNNER_TEMP, ...),
honours workflow commands in the log (`::add-mask::` hides a value from every later line),
evaluates a step's `if:` (`steps.X.outputs.Y == 'value'` and `!=`), and collects the step
outputs, the action's outputs and the job summary. `python3` on the scripts' PATH is this
machine's Python itself (`python`, symlinks resolved, so no virtual environment comes with
it), as on a runner with only python3; RUNNER_TOOL_CACHE is `tool_cache` (default: inside
`runner_temp`, so a fresh runner temp dir is a fresh machine).
Two `uses:` steps are known: `actions/setup-python` answers with `python`, and
`actions/cache` restores a tar from `cache_store` (the cache service, kept across runs when
the caller passes the same folder) and saves one after the last step on a miss, as its post
step does. The demo, the end-to-end tests and benchmarks/action_overhead.py drive the action
through this.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
_CONDITION = re.compile(r"^\s*([\w.-]+)\s*(==|!=)\s*'([^']*)'\s*$")


@dataclass
class ActionRun:
    exit_code: int
    outputs: dict[str, str]
    summary: str
    log: list[str]
    failed_step: str | None = None
    masks: list[str] = field(default_factory=list, repr=False)
    raw_log: list[str] = field(default_factory=list, repr=False)  # before masking


@dataclass
class ActionRunner:
    action_dir: Path
    runner_temp: Path
    github: Mapping[str, str]  # the `github` context: token, repository, sha, server_url, ...
    base_env: Mapping[str, str]
    python: str = sys.executable
    on_line: Callable[[str], None] | None = None
    tool_cache: Path | None = None
    cache_store: Path | None = None
    _stopped: str | None = field(default=None, init=False, repr=False)
    _post: list = field(default_factory=list, init=False, repr=False)

    def run(self, inputs: Mapping[str, str]) -> ActionRun:
        import yaml

        action = yaml.safe_load((self.action_dir / "action.yml").read_text())
        values = self._inputs(action.get("inputs", {}), inputs)
        steps: dict[str, dict[str, str]] = {}
        result = ActionRun(0, {}, "", [])
        self._post = []
        for index, step in enumerate(action["runs"]["steps"]):
            step_id = step.get("id", f"step{index}")
            if not self._condition(step.get("if"), {"inputs": values, "steps": steps}):
                continue
            outputs, code = self._step(step, values, steps, result)
            steps[step_id] = outputs
            if code != 0:
                result.exit_code, result.failed_step = code, step.get("name", step_id)
                break
        for post in reversed(self._post):
            post()
        context = {"inputs": values, "steps": steps}
        result.outputs = {name: self._evaluate(spec.get("value", ""), context)
                          for name, spec in action.get("outputs", {}).items()}
        return result

    def _inputs(self, declared: Mapping, given: Mapping[str, str]) -> dict[str, str]:
        values = {}
        for name, spec in declared.items():
            if name in given:
                values[name] = str(given[name])
            else:
                default = str(spec.get("default", ""))
                values[name] = self._evaluate(default, {"inputs": {}, "steps": {}})
            if spec.get("required") and not values[name]:
                raise ValueError(f"input {name!r} is required")
        unknown = set(given) - set(declared)
        if unknown:
            raise ValueError(f"unexpected inputs: {', '.join(sorted(unknown))}")
        return values

    def _evaluate(self, text: str, context: Mapping) -> str:
        def value(match: re.Match) -> str:
            parts = match.group(1).split(".")
            if parts[0] == "github":
                return str(self.github.get(parts[1], ""))
            if parts[0] == "inputs":
                return context["inputs"].get(parts[1], "")
            if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
                return context["steps"].get(parts[1], {}).get(parts[3], "")
            if parts[0] == "runner" and parts[1] == "temp":
                return str(self.runner_temp)
            raise ValueError(f"unsupported expression: {match.group(0)}")

        return _EXPRESSION.sub(value, str(text))

    def _condition(self, condition: str | None, context: Mapping) -> bool:
        """A step's `if:`: absent, or `context.path == 'text'` / `!= 'text'`."""
        if condition is None:
            return True
        text = str(condition).strip()
        text = text[3:-2] if text.startswith("${{") and text.endswith("}}") else text
        match = _CONDITION.match(text)
        if not match:
            raise ValueError(f"unsupported if: {condition!r}")
        left = self._evaluate("${{ " + match.group(1) + " }}", context)
        return (left == match.group(3)) == (match.group(2) == "==")

    def _step(self, step: Mapping, values, steps, result: ActionRun) -> tuple[dict, int]:
        context = {"inputs": values, "steps": steps}
        if "uses" in step:
            uses = str(step["uses"])
            if uses.startswith("actions/setup-python@"):
                return {"python-path": self.python, "python-version": sys.version.split()[0]}, 0
            if uses.startswith("actions/cache@"):
                with_ = {k: self._evaluate(v, context) for k, v in step.get("with", {}).items()}
                return self._cache(Path(with_["path"]), with_["key"], result), 0
            raise ValueError(f"cannot run {uses} locally")
        if "${{" in step["run"]:
            raise ValueError(f"step {step.get('name')!r}: expressions inside run: are an "
                             "injection risk; pass values through env:")
        env = {name: self._evaluate(text, context) for name, text in step.get("env", {}).items()}
        return self._run_script(step["run"], env, result)

    def _cache(self, path: Path, key: str, result: ActionRun) -> dict[str, str]:
        """actions/cache: restore `key` into `path`, or save `path` there after the steps."""
        store = self.cache_store or self.runner_temp / "_cache_store"
        archive = store / f"{key}.tar"
        if archive.is_file():
            path.mkdir(parents=True, exist_ok=True)
            subprocess.run(["tar", "-xf", str(archive), "-C", str(path)], check=True)
            self._log(f"Cache restored from key: {key}", result)
            return {"cache-hit": "true"}

        def save() -> None:
            if path.is_dir():
                store.mkdir(parents=True, exist_ok=True)
                subprocess.run(["tar", "-cf", str(archive), "-C", str(path), "."], check=True)

        self._post.append(save)
        self._log(f"Cache not found for input keys: {key}", result)
        return {"cache-hit": "false"}

    def _run_script(self, script: str, step_env: Mapping[str, str],
                    result: ActionRun) -> tuple[dict, int]:
        self.runner_temp.mkdir(parents=True, exist_ok=True)
        files = self.runner_temp / f"_step_{uuid.uuid4().hex}"
        files.mkdir()
        output, summary, script_path = files / "output", files / "summary", files / "run.sh"
        for path in (output, summary):
            path.write_text("")
        script_path.write_text(script)
        env = {**self.base_env, **self._runner_env(output, summary), **step_env}
        env["PATH"] = f"{self._python3_dir()}{os.pathsep}{env.get('PATH', os.defpath)}"
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_path)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.runner_temp)
        for line in process.stdout:
            self._log(line.rstrip("\n"), result)
        code = process.wait()
        result.summary += summary.read_text()
        return parse_output_file(output.read_text()), code

    def _python3_dir(self) -> Path:
        """A folder whose `python3` is this machine's Python, without its venv."""
        folder = self.runner_temp / "_python3"
        if not (folder / "python3").exists():
            folder.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.realpath(self.python), folder / "python3")
        return folder

    def _runner_env(self, output: Path, summary: Path) -> dict[str, str]:
        return {
            "GITHUB_ACTIONS": "true", "CI": "true", "RUNNER_TEMP": str(self.runner_temp),
            "RUNNER_TOOL_CACHE": str(self.tool_cache or self.runner_temp / "_tool"),
            "GITHUB_ACTION_PATH": str(self.action_dir), "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_REPOSITORY": self.github.get("repository", ""),
            "GITHUB_SHA": self.github.get("sha", ""),
            "GITHUB_SERVER_URL": self.github.get("server_url", "https://github.com"),
            "GITHUB_RUN_ID": self.github.get("run_id", "1"),
            "GITHUB_REF": self.github.get("ref", "refs/heads/main"),
        }

    def _log(self, line: str, result: ActionRun) -> None:
        result.raw_log.append(line)
        line = self._command(line, result)
        if line is None:
            return
        for secret in sorted(result.masks, key=len, reverse=True):
            line = line.replace(secret, "***")
        result.log.append(line)
        if self.on_line:
            self.on_line(line)


    def _command(self, text: str, result: ActionRun) -> str | None:
        """Act on a workflow command; return what the log shows for the line (None: nothing).
        As the runner does, leading whitespace is trimmed before looking for `::`."""
        line = text.lstrip()
        if self._stopped is not None:
            if line == f"::{self._stopped}::":
                self._stopped = None
                return None
            return text
        if not line.startswith("::"):
            return text
        if line.startswith("::add-mask::"):
            secret = line[len("::add-mask::"):].strip()
            if secret:
                result.masks.append(secret)
            return None
        if line.startswith("::stop-commands::"):
            self._stopped = line[len("::stop-commands::"):].strip()
            return None
        if line.startswith("::group::"):
            return "> " + line[len("::group::"):]
        if line.startswith("::endgroup::"):
            return None
        if line.startswith(("::error", "::warning", "::notice")):
            kind, _, message = line[2:].partition("::")
            return f"{kind.split()[0].capitalize()}: {message}"
        return text


def parse_output_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's format: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1
            outputs[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def default_base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
            "PIP_CONFIG_FILE", "PIP_FIND_LINKS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    return {name: os.environ[name] for name in keep if name in os.environ}
