"""Pull-request previews: finding them, choosing which go, removing what they made.

A preview is a function `<function>-pr-<N>` or an alias `pr-<N>`, deployed by lambda3 (a
published version whose Description is lambda3's stamp, `lambda3 <sha> <time>`). Nothing is
tagged: the PR number is in the name and the last deploy is the LastModified of the newest
version (of the one the alias points at). Which PRs are open is not asked of GitHub: the
caller says (`--pr N` when one closes, `--open-prs 1,2,3` from `gh pr list`), else a preview
not deployed for `--older-than` is taken as gone. See docs/releases.md.
"""
from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from builder.aws import Aws
from builder.errors import RequestError
from builder.plan import parse_stamp
from lambda3.commands.prune import (
    PrunePlan,
    alias_targets,
    all_configurations,
    apply_prune,
    pages,
    plan_prune,
    read_inventory,
)

_FUNCTION = re.compile(r"(?P<base>[A-Za-z0-9_-]+?)-pr-(?P<pr>[0-9]+)")
_ALIAS = re.compile(r"pr-(?P<pr>[0-9]+)")
_AGE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([dhm])")
_UNIT = {"d": 86400, "h": 3600, "m": 60}


@dataclass(frozen=True)
class Preview:
    function: str
    alias: str | None  # None: the whole function is the preview
    pr: int
    deployed: float  # unix seconds of its last deploy

    def describe(self) -> str:
        what = f"alias {self.alias} of " if self.alias else "function "
        return f"{what}{self.function} (pull request #{self.pr})"


def parse_age(text: str) -> float:
    """`7d`, `12h`, `30m` -> seconds."""
    found = _AGE.fullmatch((text or "").strip().lower())
    if not found:
        raise RequestError(f"--older-than {text!r} is not an age", hint="use 7d, 12h or 30m")
    return float(found.group(1)) * _UNIT[found.group(2)]


def parse_prs(text: str | None) -> frozenset[int] | None:
    if text is None:
        return None
    try:
        return frozenset(int(part) for part in re.split(r"[\s,]+", text.strip()) if part)
    except ValueError:
        raise RequestError(f"--open-prs {text!r}: give pull request numbers, e.g. 1,2,3") from None


def choose(previews: Sequence[Preview], *, now: float, pr: int | None = None,
           older_than: float | None = None,
           open_prs: Collection[int] | None = None) -> list[Preview]:
    """Which previews go: one PR's, or those whose PR is not open and/or not deployed for
    `older_than` seconds."""
    if pr is not None:
        return [p for p in previews if p.pr == pr]
    if older_than is None and open_prs is None:
        raise RequestError("--previews needs --pr N, --older-than AGE or --open-prs LIST")
    return [p for p in previews
            if (older_than is None or p.deployed < now - older_than)
            and (open_prs is None or p.pr not in open_prs)]


def _seconds(stamp: str | None) -> float:
    """Lambda's LastModified (2026-12-02T04:09:13.291+0000) as unix seconds."""
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", stamp or "")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def find(configs: Sequence[Mapping[str, Any]], aliases: Mapping[str, Sequence[Mapping]], *,
         base: str | None = None) -> list[Preview]:
    """Previews among every version of every function (`configs`) and the aliases of each
    function lambda3 deployed (`aliases`: function -> its aliases)."""
    by_function: dict[str, dict[str, Mapping[str, Any]]] = {}
    for config in configs:
        by_function.setdefault(config["FunctionName"], {})[config["Version"]] = config
    found = []
    for name, versions in sorted(by_function.items()):
        if not any(parse_stamp(v.get("Description")) for k, v in versions.items()
                   if k != "$LATEST"):
            continue  # not deployed (and published) by lambda3: never a preview of ours
        match = _FUNCTION.fullmatch(name)
        if match and (base is None or match.group("base") == base):
            newest = max(_seconds(v.get("LastModified")) for v in versions.values())
            found.append(Preview(name, None, int(match.group("pr")), newest))
        if base is not None and name != base:
            continue
        for alias in aliases.get(name, ()):
            match = _ALIAS.fullmatch(alias["Name"])
            if match:
                target = versions.get(alias["FunctionVersion"], {})
                found.append(Preview(name, alias["Name"], int(match.group("pr")),
                                     _seconds(target.get("LastModified"))))
    return found


def remove(aws: Aws, preview: Preview, configs: Sequence[Mapping[str, Any]], *,
           dry_run: bool = False) -> list[str]:
    """Delete what the preview made: the function (its versions and aliases with it) or
    the alias and the versions only it used, and our layer versions nothing else uses."""
    if preview.alias is None:
        inventory = read_inventory(aws, preview.function, configurations=list(configs))
        layers = [arn for arns in inventory.layers.values() for arn in arns
                  if arn not in inventory.elsewhere]
        lines = [f"delete function {preview.function}"] + [
            f"delete layer version {arn}" for arn in layers]
        if not dry_run:
            aws.call("lambda", "delete_function", FunctionName=preview.function)
            apply_prune(aws, preview.function, PrunePlan((), tuple(layers), ()))
        return lines
    found = aws.call("lambda", "get_alias", FunctionName=preview.function, Name=preview.alias)
    targets = alias_targets(found)
    settings = _alias_settings(aws, preview, dry_run=dry_run)
    if not dry_run:
        aws.call("lambda", "delete_alias", FunctionName=preview.function, Name=preview.alias)
    inventory = read_inventory(aws, preview.function)
    if dry_run:  # as it will be once the alias is gone
        inventory = replace(inventory, aliases={k: v for k, v in inventory.aliases.items()
                                                if k != preview.alias})
    plan = plan_prune(inventory, None, candidates=targets)
    if not dry_run:
        apply_prune(aws, preview.function, plan)
    return settings + [f"delete alias {preview.alias} of {preview.function}"] + [
        line for line in plan.lines(preview.function) if line.startswith("delete")]


def _alias_settings(aws: Aws, preview: Preview, *, dry_run: bool) -> list[str]:
    """What the build file set on a preview alias (its function URL with our public
    statements, its provisioned concurrency), deleted before the alias: nothing is left
    for Lambda to keep or bill, whether or not deleting the alias takes them along."""
    from builder.plan import URL_STATEMENTS

    where = {"FunctionName": preview.function, "Qualifier": preview.alias}
    lines = []
    url = aws.maybe("lambda", "get_function_url_config", **where)
    if url is not None:
        lines.append(f"delete function URL {url.get('FunctionUrl')} of alias {preview.alias}")
        if not dry_run:
            aws.maybe("lambda", "delete_function_url_config", **where)
            for sid in URL_STATEMENTS:
                aws.maybe("lambda", "remove_permission", StatementId=sid, **where)
    if aws.maybe("lambda", "get_provisioned_concurrency_config", **where) is not None:
        lines.append(f"delete provisioned concurrency of alias {preview.alias}")
        if not dry_run:
            aws.maybe("lambda", "delete_provisioned_concurrency_config", **where)
    return lines


def remove_all(aws: Aws, chosen: Sequence[Preview], configs: Sequence[Mapping[str, Any]], *,
               dry_run: bool) -> list[str]:
    """`remove` of each preview, its lines under a heading per preview."""
    lines = []
    for preview in chosen:
        lines.append(f"preview {preview.describe()}:")
        lines += [f"  {line}" for line in remove(aws, preview, configs, dry_run=dry_run)]
    return lines


def tagged(aws: Aws, configs: Sequence[Mapping[str, Any]], *, repository: str,
           pr: int) -> list[Preview]:
    """The function previews of pull request `pr` of `repository` (the `host/owner/name`
    of builder.reconcile.preview_tags): named `...-pr-<pr>` and tagged so by the builder,
    whatever the function's name before it (a `functions:` entry's own `name` too)."""
    from builder.reconcile import PREVIEW_TAG, REPOSITORY_TAG

    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for config in configs:
        if config["FunctionName"].endswith(f"-pr-{pr}"):
            by_name.setdefault(config["FunctionName"], []).append(config)
    found = []
    for name, versions in sorted(by_name.items()):
        arn = ":".join(versions[0]["FunctionArn"].split(":")[:7])  # unqualified
        tags = aws.call("lambda", "list_tags", Resource=arn).get("Tags") or {}
        if tags.get(PREVIEW_TAG) == str(pr) and tags.get(REPOSITORY_TAG) == repository:
            newest = max(_seconds(v.get("LastModified")) for v in versions)
            found.append(Preview(name, None, pr, newest))
    return found


def remove_pull_request(aws: Aws, *, repository: str, pr: int, alias_of: str | None = None,
                        dry_run: bool = False) -> list[str]:
    """What the action does when pull request `pr` closes: remove its function previews
    (found by their tags), or with `alias_of`, its alias `pr-<N>` of that function."""
    configs = all_configurations(aws)
    if alias_of is not None:
        aliases = {alias_of: pages(aws, "list_aliases", "Aliases", FunctionName=alias_of)}
        chosen = [p for p in find(configs, aliases, base=alias_of)
                  if p.alias is not None and p.pr == pr]
    else:
        chosen = tagged(aws, configs, repository=repository, pr=pr)
    return remove_all(aws, chosen, configs, dry_run=dry_run) or [
        f"no preview of pull request #{pr} to remove"]


def sweep(aws: Aws, *, base: str | None = None, pr: int | None = None,
          older_than: float | None = None, open_prs: Collection[int] | None = None,
          dry_run: bool = False, now: float | None = None) -> list[str]:
    configs = all_configurations(aws)
    names = {c["FunctionName"] for c in configs if parse_stamp(c.get("Description"))}
    aliases = {name: pages(aws, "list_aliases", "Aliases", FunctionName=name)
               for name in sorted(names) if base is None or name == base}
    chosen = choose(find(configs, aliases, base=base), now=time.time() if now is None else now,
                    pr=pr, older_than=older_than, open_prs=open_prs)
    return remove_all(aws, chosen, configs, dry_run=dry_run) or ["no preview to remove"]


def sweep_command(aws: Aws, args) -> list[str]:
    """`lambda3 prune --previews [FUNCTION] (--pr N | --older-than AGE | --open-prs LIST)`,
    or `--previews --pr N --repository HOST/OWNER/NAME` for the tagged previews."""
    if args.repository:
        if args.pr is None or args.function or args.older_than or args.open_prs:
            raise RequestError("--repository goes with --pr N alone: it removes the functions "
                               "tagged as that repository's preview of N")
        return remove_pull_request(aws, repository=args.repository.strip("/"), pr=args.pr,
                                   dry_run=args.dry_run)
    older = parse_age(args.older_than) if args.older_than else None
    return sweep(aws, base=args.function, pr=args.pr, older_than=older,
                 open_prs=parse_prs(args.open_prs), dry_run=args.dry_run)
