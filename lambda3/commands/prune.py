"""`lambda3 prune FUNCTION [--keep N] [--dry-run]`: delete the function's old versions and
our layer versions nothing uses; `lambda3 prune --previews ...` removes pull-request previews
(`lambda3.previews`).

Never deleted: a version an alias points at (its version, its weighted versions, and both
versions of a rollout recorded on it), the newest N versions, and a layer version that
$LATEST, a kept version or any version of another function in the region uses. "Our"
layers are those the function's configurations use whose name starts with `<function>-`
(the builder's default names), and those named with --layer.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from builder.aws import Aws, layer_name_of, layer_version_of

DEFAULT_KEEP = 3


@dataclass(frozen=True)
class Inventory:
    """What prune decides from: one function's versions and aliases, and who uses what."""

    function: str
    versions: Mapping[str, tuple[str, ...]]  # version -> its layer ARNs
    latest_layers: tuple[str, ...]  # $LATEST's
    aliases: Mapping[str, tuple[str, ...]]  # alias -> the versions it sends traffic to or
    # records in a rollout
    elsewhere: frozenset[str] = frozenset()  # layer ARNs other functions' versions use
    layers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # ours: name -> ARNs


@dataclass(frozen=True)
class PrunePlan:
    versions: tuple[str, ...]  # to delete, oldest first
    layers: tuple[str, ...]  # layer version ARNs to delete
    kept: tuple[tuple[str, str], ...]  # (version, why), for --dry-run

    def lines(self, function: str) -> list[str]:
        shown = [f"keep version {v} ({why})" for v, why in self.kept]
        shown += [f"delete version {v} of {function}" for v in self.versions]
        shown += [f"delete layer version {arn}" for arn in self.layers]
        return shown or [f"{function}: nothing to prune"]


def plan_prune(inventory: Inventory, keep: int | None,
               candidates: Collection[str] | None = None) -> PrunePlan:
    """Which versions and layer versions go; `keep` newest versions stay (None: only
    `candidates` may go, when nothing else references them)."""
    numbers = sorted(inventory.versions, key=int)
    why: dict[str, str] = {}
    for alias, versions in sorted(inventory.aliases.items()):
        for version in versions:
            why.setdefault(version, f"alias {alias}")
    for version in numbers[-keep:] if keep else ():
        why.setdefault(version, f"one of the newest {keep}")
    allowed = set(numbers) if candidates is None else set(candidates)
    doomed = tuple(v for v in numbers if v not in why and v in allowed)
    if candidates is not None:
        why.update({v: "not asked" for v in numbers if v not in allowed and v not in why})
    used = set(inventory.latest_layers) | inventory.elsewhere
    for version in numbers:
        if version not in doomed:
            used |= set(inventory.versions[version])
    layers = tuple(arn for name in sorted(inventory.layers) for arn in inventory.layers[name]
                   if arn not in used)
    kept = tuple((v, why[v]) for v in numbers if v in why and v not in doomed)
    return PrunePlan(doomed, layers, kept)


# -- reading and deleting ------------------------------------------------------------------
def pages(aws: Aws, method: str, key: str, **kwargs: Any) -> list[Mapping[str, Any]]:
    items, marker = [], None
    while True:
        page = aws.call("lambda", method, **kwargs, **({"Marker": marker} if marker else {}))
        items += page.get(key, [])
        marker = page.get("NextMarker")
        if not marker:
            return items


def all_configurations(aws: Aws) -> list[Mapping[str, Any]]:
    """Every function's every version ($LATEST included) in the region."""
    return pages(aws, "list_functions", "Functions", FunctionVersion="ALL")


def alias_targets(alias: Mapping[str, Any]) -> tuple[str, ...]:
    from builder.rollout import decode

    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    state = decode(alias.get("Description"))
    recorded = (state.old, state.new) if state and not state.final else ()
    return tuple(dict.fromkeys((alias["FunctionVersion"], *weights, *recorded)))


def _layer_arns(config: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(layer["Arn"] for layer in config.get("Layers") or [])


def read_inventory(aws: Aws, function: str, layer_names: Iterable[str] = (), *,
                   configurations: list[Mapping[str, Any]] | None = None) -> Inventory:
    configs = all_configurations(aws) if configurations is None else configurations
    mine = [c for c in configs if c["FunctionName"] == function]
    versions = {c["Version"]: _layer_arns(c) for c in mine if c["Version"] != "$LATEST"}
    latest = next((_layer_arns(c) for c in mine if c["Version"] == "$LATEST"), ())
    aliases = {a["Name"]: alias_targets(a)
               for a in pages(aws, "list_aliases", "Aliases", FunctionName=function)}
    elsewhere = frozenset(arn for c in configs if c["FunctionName"] != function
                          for arn in _layer_arns(c))
    seen = {layer_name_of(arn) for arns in [latest, *versions.values()] for arn in arns}
    names = {n for n in seen if n.startswith(f"{function}-")} | set(layer_names)
    layers = {name: tuple(v["LayerVersionArn"] for v in
                          pages(aws, "list_layer_versions", "LayerVersions", LayerName=name))
              for name in sorted(names)}
    return Inventory(function, versions, latest, aliases, elsewhere, layers)


def apply_prune(aws: Aws, function: str, plan: PrunePlan) -> None:
    for version in plan.versions:
        aws.call("lambda", "delete_function", FunctionName=function,
                 Qualifier=version)
    for arn in plan.layers:
        aws.call("lambda", "delete_layer_version",
                 LayerName=layer_name_of(arn), VersionNumber=layer_version_of(arn))


def prune_function(aws: Aws, function: str, *, keep: int = DEFAULT_KEEP, dry_run: bool = False,
                   layer_names: Iterable[str] = ()) -> PrunePlan:
    """Prune one function (what `prune: {keep: N}` runs after a deploy)."""
    plan = plan_prune(read_inventory(aws, function, layer_names), keep)
    if not dry_run:
        apply_prune(aws, function, plan)
    return plan


# -- the command ---------------------------------------------------------------------------
def add_parser(subparsers, summary: str) -> None:
    from lambda3.commands.rollout import add_aws_flags

    p = subparsers.add_parser("prune", help=summary, description=__doc__)
    p.add_argument("function", nargs="?", help="function name (with --previews: the base "
                                               "name of the previews, optional)")
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                   help="newest versions to keep (default: %(default)s)")
    p.add_argument("--layer", action="append", default=[], metavar="NAME",
                   help="also prune this layer's unused versions")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    p.add_argument("--previews", action="store_true",
                   help="remove pull-request previews (FUNCTION-pr-N functions, pr-N aliases)")
    p.add_argument("--pr", type=int, help="--previews: remove this pull request's previews")
    p.add_argument("--older-than", help="--previews: last deployed longer ago than this "
                                        "(7d, 12h, 30m)")
    p.add_argument("--open-prs", help="--previews: the open pull requests (1,2,3): previews "
                                      "of others are removed")
    p.add_argument("--repository", metavar="HOST/OWNER/NAME",
                   help="--previews --pr N: the functions tagged as that repository's "
                        "preview of N (`lambda3 deploy --preview N`, the action's preview)")
    add_aws_flags(p)


def run(args: argparse.Namespace) -> int:
    from builder.errors import Lambda3Error, RequestError
    from lambda3.commands.rollout import aws_of

    try:
        aws = aws_of(args)
        if args.previews:
            from lambda3.previews import sweep_command

            lines = sweep_command(aws, args)
        else:
            if args.pr is not None or args.older_than or args.open_prs or args.repository:
                raise RequestError("--pr, --older-than, --open-prs and --repository go with "
                                   "--previews")
            if not args.function:
                raise RequestError("name the function to prune, or pass --previews")
            if args.keep < 1:
                raise RequestError("--keep must be at least 1")
            plan = prune_function(aws, args.function, keep=args.keep, dry_run=args.dry_run,
                                  layer_names=args.layer)
            lines = plan.lines(args.function)
    except Lambda3Error as error:
        print(f"lambda3 prune: {error}", file=sys.stderr)
        return 1
    for line in lines:
        bare = line.lstrip()
        dry = args.dry_run and bare.startswith("delete")
        print(line[:len(line) - len(bare)] + "would " + bare if dry else line)
    return 0
