"""The markdown step summary of one builder result (success, plan or failure)."""
from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

STEP_ORDER = ("fetch", "spec", "install", "strip", "bytecode", "package", "plan", "apply",
              "total")


def render_summary(result: Mapping[str, Any], *, function: str | None = None,
                   dry_run: bool = False) -> str:
    """Markdown for `$GITHUB_STEP_SUMMARY`."""
    if not result.get("ok"):
        return render_failure(result.get("error") or {}, function=function)
    title = "planned" if dry_run else "deployed"
    parts = [f"### lambda3 {title} `{_code(function or _name_from_arn(result))}`\n",
             _facts(result), _components(result)]
    if dry_run or result.get("plan"):
        parts.append(_plan(result.get("plan") or [], result.get("plan_text") or []))
    parts.append(_timings(result.get("timings") or {}))
    return "\n".join(part for part in parts if part)


def render_failure(error: Mapping[str, Any], *, function: str | None = None) -> str:
    step = error.get("step") or "unknown"
    where = ""
    if error.get("file"):
        where = f"{error['file']}:{error['line']}" if error.get("line") else str(error["file"])
    lines = [f"### lambda3 failed{' for `' + _code(function) + '`' if function else ''}"
             f" at step `{_code(step)}`\n"]
    if where:
        lines.append(f"**Where:** `{_code(where)}`\n")
    if error.get("type"):
        lines.append(f"**Error:** `{_code(error['type'])}`\n")
    lines.append("```text\n" + str(error.get("message") or "no message").replace("```", "'''")
                 + "\n```\n")
    return "\n".join(lines)


def _facts(result: Mapping[str, Any]) -> str:
    rows = [
        ("Commit", result.get("commit")),
        ("Version", result.get("version")),
        ("Alias", result.get("alias")),
        ("Function ARN", result.get("function_arn")),
        ("Code SHA-256", result.get("code_sha256")),
    ]
    return "\n".join(f"- **{label}:** `{_code(value)}`" for label, value in rows if value) + "\n"


def _components(result: Mapping[str, Any]) -> str:
    components = result.get("components") or []
    if not components:
        return ""
    arns = {layer.get("name"): layer.get("arn") for layer in result.get("layers") or []}
    lines = ["| component | kind | size | state | ARN |", "| --- | --- | ---: | --- | --- |"]
    for comp in components:
        arn = result.get("function_arn") if comp.get("kind") == "function" else None
        arn = arn or comp.get("arn") or arns.get(comp.get("name"))
        state = "changed" if comp.get("changed") else "reused"
        lines.append("| " + " | ".join([
            _cell(comp.get("name")), _cell(comp.get("kind")), _cell(format_size(comp.get("size"))),
            state, f"`{_cell(arn)}`" if arn else "",
        ]) + " |")
    return "\n".join(lines) + "\n"


def _plan(plan: list[Mapping[str, Any]], text: list[str]) -> str:
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


def _name_from_arn(result: Mapping[str, Any]) -> str:
    arn = str(result.get("function_arn") or "")
    return arn.split(":")[6] if arn.count(":") >= 6 else arn or "function"


def _code(value: Any) -> str:
    """Text inside an inline code span: no backticks, no line breaks."""
    return " ".join(str(value).replace("`", "'").split())


def _cell(value: Any) -> str:
    """Text inside a table cell: pipes escaped, HTML neutralised, one line."""
    if value is None:
        return ""
    return html.escape(_code(value), quote=False).replace("|", "\\|")
