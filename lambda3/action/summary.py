"""The markdown step summary of one builder result (success, plan or failure); with several
functions (`functions:`), a section for each."""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from builder.contract import BuildResult, Failure

STEP_ORDER = ("request", "fetch", "spec", "install", "strip", "bytecode", "package", "plan",
              "apply", "total")


def render_summary(result: BuildResult, *, function: str | None = None,
                   dry_run: bool = False) -> str:
    """Markdown for `$GITHUB_STEP_SUMMARY`."""
    if not result.ok:
        return render_failure(result.error or Failure(), function=function,
                              functions=result.functions)
    title = "planned" if dry_run else "deployed"
    if len(result.functions) > 1:
        names = ", ".join(f"`{_code(f.name)}`" for f in result.functions)
        parts = [f"### lambda3 {title} {len(result.functions)} functions: {names}\n",
                 _facts(result), *(_function(f, dry_run) for f in result.functions),
                 _timings(result.timings)]
        return "\n".join(part for part in parts if part)
    parts = [f"### lambda3 {title} `{_code(function or _name_from_arn(result))}`\n",
             _facts(result), _components(result)]
    if dry_run or result.plan:
        parts.append(_plan(result.plan, result.plan_text))
    parts.append(_timings(result.timings))
    return "\n".join(part for part in parts if part)


def render_failure(error: Failure, *, function: str | None = None,
                   functions: Sequence[Any] = ()) -> str:
    where = ""
    if error.file:
        where = f"{error.file}:{error.line}" if error.line else str(error.file)
    lines = [f"### lambda3 failed{' for `' + _code(function) + '`' if function else ''}"
             f" at step `{_code(error.step)}`\n"]
    if where:
        lines.append(f"**Where:** `{_code(where)}`\n")
    if error.type:
        lines.append(f"**Error:** `{_code(error.type)}`\n")
    lines.append("```text\n" + str(error.message or "no message").replace("```", "'''")
                 + "\n```\n")
    if len(functions) > 1:
        lines += [_function(f, False) for f in functions]
    return "\n".join(lines)


def _function(function: Any, dry_run: bool) -> str:
    """One function of several (a `FunctionResult`): its state, facts, components, plan."""
    state = ("failed" if function.error else "deployed" if function.deployed
             else "planned" if dry_run else "not deployed")
    rows = [("Version", function.version), ("Alias", function.alias),
            ("Function ARN", function.arn), ("Code SHA-256", function.code_sha256),
            ("Function URL", function.function_url)]
    parts = [f"#### `{_code(function.key)}`: `{_code(function.name)}` ({state})\n",
             "\n".join(f"- **{label}:** `{_code(value)}`" for label, value in rows if value)
             + "\n", _component_rows(function.components, function.layers, function.arn)]
    if dry_run or function.plan:
        parts.append(_plan(function.plan, function.plan_text))
    return "\n".join(part for part in parts if part)


def _facts(result: BuildResult) -> str:
    rows = [
        ("Commit", result.commit),
        ("Version", result.version),
        ("Alias", result.alias),
        ("Function ARN", result.function_arn),
        ("Code SHA-256", result.code_sha256),
        ("Function URL", result.function_url),
    ]
    return "\n".join(f"- **{label}:** `{_code(value)}`" for label, value in rows if value) + "\n"


def _components(result: BuildResult) -> str:
    return _component_rows(result.components, result.layers, result.function_arn)


def _component_rows(components: Sequence[Any], layers: Sequence[Any],
                    function_arn: str | None) -> str:
    if not components:
        return ""
    arns = {layer.name: layer.arn for layer in layers}
    lines = ["| component | kind | size | state | ARN |", "| --- | --- | ---: | --- | --- |"]
    for comp in components:
        arn = function_arn if comp.kind == "function" else None
        arn = arn or comp.arn or arns.get(comp.name)
        state = "changed" if comp.changed else "reused"
        lines.append("| " + " | ".join([
            _cell(comp.name), _cell(comp.kind), _cell(format_size(comp.size)),
            state, f"`{_cell(arn)}`" if arn else "",
        ]) + " |")
    return "\n".join(lines) + "\n"


def _plan(plan: Sequence[Mapping[str, Any]], text: Sequence[str]) -> str:
    if not plan:
        return "**Plan:** nothing to do\n"
    lines = ["**Plan:**", ""]
    if len(text) == len(plan):  # the builder's own one-line descriptions
        return "\n".join(lines + [f"1. {_cell(line)}" for line in text]) + "\n"
    for step in plan:
        details = ", ".join(f"{key}={_code(value)}" for key, value in step.items()
                            if key != "action" and not isinstance(value, (dict, list)))
        lines.append(f"1. `{_code(step.get('action'))}`" + (f" ({details})" if details else ""))
    return "\n".join(lines) + "\n"


def _timings(timings: Mapping[str, Any]) -> str:
    if not timings:
        return ""
    names = [n for n in STEP_ORDER if n in timings] + sorted(set(timings) - set(STEP_ORDER))
    head = "| " + " | ".join(_cell(n) for n in names) + " |"
    rule = "| " + " | ".join("---:" for _ in names) + " |"
    row = "| " + " | ".join(_seconds(timings[n]) for n in names) + " |"
    return "\n".join(["**Timings (s):**", "", head, rule, row]) + "\n"


def format_size(size: Any) -> str:
    if not isinstance(size, (int, float)):
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # pragma: no cover - the loop always returns


def _seconds(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else _cell(value)


def _name_from_arn(result: BuildResult) -> str:
    arn = str(result.function_arn or "")
    return arn.split(":")[6] if arn.count(":") >= 6 else arn or "function"


def _code(value: Any) -> str:
    """Text inside an inline code span: no backticks, no line breaks."""
    return " ".join(str(value).replace("`", "'").split())


def _cell(value: Any) -> str:
    """Text inside a table cell: pipes escaped, HTML neutralised, one line."""
    if value is None:
        return ""
    return html.escape(_code(value), quote=False).replace("|", "\\|")
