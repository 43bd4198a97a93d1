"""The benchmark's report: its sections as tables, as text for the terminal and as
Markdown for benchmarks/results/latest.md, and a flat summary for comparing commits.
Pure functions over the results dict described in benchmarks/targets.py."""
from __future__ import annotations

from collections.abc import Sequence

from benchmarks.targets import (
    TOOL_LABELS,
    TOOLS,
    TargetResult,
    fmt_bytes,
    fmt_counts,
    fmt_ratio,
    fmt_s,
    imports_text,
    phase_time,
    ratio,
    short,
    tool_time,
)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in out)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


# -- the report's sections as rows -------------------------------------------------------------

COLD_HEADERS = ("set", "tool", "wall (median)", "time / lambda3", "zipped", "unzipped",
                "unzipped / lambda3", "files", "imports", "loadable on target", "result")
DEPLOY_HEADERS = ("phase", "wall (median)", "vs cold", "layer publishes", "new versions")
LEVER_HEADERS = ("lever", "on", "off", "gain", "how measured")


def cold_rows(cold: dict) -> list[list[str]]:
    rows = []
    for project, tools in cold.items():
        base = tools.get("lambda3") or {}
        base_time, base_size = tool_time(base), base.get("unzipped") if base.get("ok") else None
        for tool in TOOLS:
            result = tools.get(tool)
            if result is None:
                continue
            if result.get("skipped"):
                rows.append([project, TOOL_LABELS[tool], "-", "-", "-", "-", "-", "-", "-", "-",
                             "skipped"])
                continue
            ok = result.get("ok")
            t = tool_time(result)
            speed = "" if tool == "lambda3" else fmt_ratio(ratio(t, base_time))
            size = "" if tool == "lambda3" or not ok else fmt_ratio(
                ratio(result.get("unzipped"), base_size), 2)
            loadable = result.get("loadable") or {}
            rows.append([
                project, TOOL_LABELS[tool], fmt_s(t) if ok else _failed_time(result), speed,
                fmt_bytes(result.get("size")) if ok else "-",
                fmt_bytes(result.get("unzipped")) if ok else "-", size,
                str(result.get("files", "-")) if ok else "-",
                imports_text(result) if ok else "-",
                ("yes" if loadable.get("ok") else "no: " + ", ".join(loadable.get("bad", [])))
                if ok and loadable else "-",
                "ok" if ok else "FAILED: " + short(result.get("error"), 90),
            ])
    return rows


def _failed_time(result: dict) -> str:
    times = result.get("times") or []
    return f"({fmt_s(times[0])})" if times else "-"


def deploy_rows(deploy: dict) -> list[list[str]]:
    cold = phase_time(deploy.get("cold_full"))
    rows = []
    for key, label in (("cold_full", "cold full deploy"), ("warm_code_only", "warm code-only"),
                       ("noop", "no-op redeploy")):
        phase = deploy.get(key)
        if not phase:
            continue
        t = phase_time(phase)
        rows.append([label, fmt_s(t), "" if key == "cold_full" else
                     f"{fmt_ratio(ratio(cold, t))} faster",
                     fmt_counts(phase.get("layer_publishes")),
                     fmt_counts(phase.get("new_versions"))])
    return rows


def lever_rows(levers: Sequence[dict]) -> list[list[str]]:
    rows = []
    for lever in levers:
        on, off = lever.get("on_s"), lever.get("off_s")
        gain = ratio(off, on)
        how = lever.get("how", "")
        if lever.get("error"):
            how = f"FAILED: {short(lever['error'], 120)}" + (f" ({how})" if how else "")
        rows.append([lever["name"], fmt_s(on), fmt_s(off),
                     f"{fmt_ratio(gain)} ({fmt_s(None if on is None or off is None else off - on)}"
                     " saved)" if gain else "-", how])
    return rows


def target_rows(targets: Sequence[TargetResult]) -> list[list[str]]:
    return [[t.status, t.name, t.goal, t.measured] for t in targets]


def render_text(results: dict) -> str:
    return _render(results, table, heading=lambda s: f"\n== {s} ==")


def render_markdown(results: dict) -> str:
    return _render(results, markdown_table, heading=lambda s: f"\n### {s}\n")


def _render(results: dict, make_table, heading) -> str:
    out = [heading("lambda3 benchmark").lstrip()]
    meta = results.get("meta") or {}
    if meta:
        out.append(", ".join(f"{k}: {v}" for k, v in meta.items()))
    targets = [TargetResult(**t) for t in results.get("targets") or []]
    if targets:
        out.append(heading("Targets"))
        out.append(make_table(("status", "target", "goal", "measured"), target_rows(targets)))
    if results.get("cold"):
        out.append(heading("Cold build (empty caches for every tool; PyPI download time "
                           "included for all alike)"))
        out.append(make_table(COLD_HEADERS, cold_rows(results["cold"])))
        steps = _step_lines(results["cold"])
        if steps:
            out.append("")
            out.extend(steps)
    for deploy in (results.get("deploy") or {}).values():
        out.append(heading(f"Redeploy on the emulator, project {deploy.get('project')}: "
                           f"{deploy.get('mode')}"
                           + (" [supplementary, no target]" if deploy.get("supplementary")
                              else "")))
        if deploy.get("error"):
            out.append(f"FAILED: {deploy['error']}")
        out.append(make_table(DEPLOY_HEADERS, deploy_rows(deploy)))
        steps = deploy.get("steps") or {}
        out.append("")
        for key, timing in steps.items():
            out.append(f"- {key} steps: {_steps_text(timing)}")
    det = results.get("determinism")
    if det:
        out.append(heading("Determinism"))
        out.append(_determinism_text(det))
    if results.get("levers"):
        out.append(heading("What each lever gains"))
        out.append(make_table(LEVER_HEADERS, lever_rows(results["levers"])))
    notes = results.get("notes") or []
    if notes:
        out.append(heading("Notes"))
        out.extend(f"- {n}" for n in notes)
    return "\n".join(out) + "\n"


def _steps_text(timing: dict) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in timing.items() if isinstance(v, (int, float)))


def _step_lines(cold: dict) -> list[str]:
    lines = []
    for project, tools in cold.items():
        steps = (tools.get("lambda3") or {}).get("steps")
        if steps:
            lines.append(f"- lambda3 steps, {project} (last run): {_steps_text(steps)}")
        versions = {tool: (tools.get(tool) or {}).get("versions") for tool in TOOLS}
        shown = {tool: v for tool, v in versions.items() if v}
        if shown:
            lines.append(f"- key versions, {project}: " + "; ".join(
                f"{tool} " + " ".join(f"{k}=={v}" for k, v in sorted(v.items()))
                for tool, v in shown.items()))
    return lines


def _determinism_text(det: dict) -> str:
    if det.get("error"):
        return f"FAILED: {det['error']}"
    lines = [f"{det.get('identical_builds', 0)}/{det.get('builds', 0)} builds identical "
             f"(project {det.get('project')}; {', '.join(det.get('variants', []))})", ""]
    for name, shas in (det.get("artifacts") or {}).items():
        distinct = sorted(set(shas))
        lines.append(f"- {name}: " + (distinct[0][:16] + "..." if len(distinct) == 1
                                      else f"{len(distinct)} different sha256s"))
    return "\n".join(lines)


def summary(results: dict) -> dict:
    """The figures worth comparing across commits, flat."""
    cold = results.get("cold") or {}
    flat: dict[str, float | None] = {}
    for project, tools in cold.items():
        for tool, result in tools.items():
            flat[f"cold.{project}.{tool}.s"] = tool_time(result)
            flat[f"cold.{project}.{tool}.unzipped"] = (result or {}).get("unzipped") \
                if (result or {}).get("ok") else None
    for project, deploy in (results.get("deploy") or {}).items():
        for key in ("cold_full", "warm_code_only", "noop"):
            flat[f"deploy.{project}.{key}.s"] = phase_time(deploy.get(key))
    return flat
