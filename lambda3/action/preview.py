"""The action's `preview` input: a pull request deployed to a function (or an alias) of its
own while it is open, and removed when it closes.

`read_pull_request` takes the pull request from the workflow's event (GITHUB_EVENT_NAME,
GITHUB_EVENT_PATH): only `pull_request` events of this repository's own branches. A fork's
pull request gets no OIDC token, and `pull_request_target` would run its code with this
repository's credentials: both are refused with the reason. See docs/releases.md.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.errors import Lambda3Error

MODES = ("function", "alias")


class PreviewError(Lambda3Error):
    step = "settings"


@dataclass(frozen=True)
class PullRequest:
    number: int
    closed: bool
    head_sha: str

    def alias(self) -> str:
        return f"pr-{self.number}"


def read_mode(value: str | None) -> str | None:
    if value is None:
        return None
    mode = value.strip().lower()
    if mode not in MODES:
        raise PreviewError(f"the input preview is {value!r}",
                           hint="use function (its own function <function-name>-pr-<N>) or "
                                "alias (an alias pr-<N> of function-name)")
    return mode


def read_pull_request(environ: Mapping[str, str]) -> PullRequest:
    """The pull request of this run's event, or a PreviewError saying why there is none."""
    event_name = environ.get("GITHUB_EVENT_NAME", "")
    if event_name == "pull_request_target":
        raise PreviewError(
            "preview does not run on pull_request_target: that event gives the pull "
            "request's code this repository's credentials",
            hint="run the preview job on: pull_request")
    if event_name != "pull_request":
        raise PreviewError(f"preview needs a pull_request event; this run is "
                           f"{event_name or 'not a workflow run'}",
                           hint="run it on: pull_request (types: opened, synchronize, "
                                "reopened, closed), or leave preview empty")
    event = _event(environ.get("GITHUB_EVENT_PATH", ""))
    pull = event.get("pull_request")
    if not isinstance(pull, Mapping) or not isinstance(pull.get("number"), int):
        raise PreviewError("the pull_request event names no pull request")
    head = pull.get("head") or {}
    base = pull.get("base") or {}
    head_repo = (head.get("repo") or {}).get("full_name")
    base_repo = (base.get("repo") or {}).get("full_name")
    if head_repo != base_repo:
        raise PreviewError(
            f"pull request #{pull['number']} comes from {head_repo or 'a deleted fork'}: a "
            "fork's pull request gets no OIDC token, and is not previewed",
            hint="add `if: github.event.pull_request.head.repo.full_name == "
                 "github.repository` to the job")
    return PullRequest(pull["number"], event.get("action") == "closed",
                       str(head.get("sha") or ""))


def _event(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, ValueError) as error:
        raise PreviewError(f"the event file GITHUB_EVENT_PATH ({path or 'unset'}) cannot be "
                           f"read: {error}") from None
    if not isinstance(event, dict):
        raise PreviewError("the event file GITHUB_EVENT_PATH holds no JSON object")
    return event


def removed_summary(number: int, lines: list[str], *, dry_run: bool) -> str:
    what = "would be removed" if dry_run else "removed"
    body = "\n".join(lines)
    return f"\n### Preview of #{number} {what}\n\n```\n{body}\n```\n"
