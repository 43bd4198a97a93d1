"""The builder's allow-list: which functions a request may deploy to."""
from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from builder.errors import TargetNotAllowed


def check_allowed(function: str, patterns: Sequence[str]) -> None:
    """The builder deploys only to functions its allow-list names, whatever IAM says."""
    if not patterns:
        return
    if not any(fnmatch.fnmatchcase(function, pattern) for pattern in patterns):
        raise TargetNotAllowed(
            f"function {function!r} is not in this builder's allow-list "
            f"({', '.join(patterns)}); re-run `lambda3 bootstrap --allow PATTERN` to extend it"
        )
