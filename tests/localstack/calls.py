"""What the deploy engine sends and gets back, seen through botocore's event hooks, and
other writers slipped in right before one of its calls. Our code is never patched.

    calls = Calls.on(lambda_client)
    before(lambda_client, "UpdateAlias", lambda: ...)   # a concurrent change, first call only
    calls.params("UpdateAlias")  -> [{...}, ...]
    calls.errors("UpdateAlias")  -> ["PreconditionFailedException", ...]
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    operation: str
    params: dict[str, Any]
    error: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class Calls:
    """Every Lambda call a client made, in order, with its parameters and outcome."""

    made: list[Call] = field(default_factory=list)

    @classmethod
    def on(cls, client: Any) -> Calls:
        calls = cls()
        client.meta.events.register("before-parameter-build.lambda", calls._sent)
        client.meta.events.register("after-call.lambda", calls._answered)
        return calls

    def _sent(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        self.made.append(Call(model.name, dict(params)))

    def _answered(self, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
        call = next(c for c in reversed(self.made) if c.operation == model.name)
        call.error = parsed.get("Error", {}).get("Code")
        call.answer = parsed

    def forget(self) -> None:
        """Start the record afresh (between two deploys)."""
        self.made.clear()

    def of(self, operation: str) -> list[Call]:
        return [call for call in self.made if call.operation == operation]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [call.params for call in self.of(operation)]

    def errors(self, operation: str | None = None) -> list[str]:
        chosen = self.made if operation is None else self.of(operation)
        return [call.error for call in chosen if call.error]

    def names(self) -> list[str]:
        return [call.operation for call in self.made]


def before(client: Any, operation: str, change: Callable[[], None], *,
           times: int | None = 1) -> None:
    """Run `change` right before the client sends `operation` (`times` times; None: always)."""
    remaining = {"n": times}

    def interfere(**kwargs: Any) -> None:
        if remaining["n"] == 0:
            return
        if remaining["n"] is not None:
            remaining["n"] -= 1
        change()

    client.meta.events.register(f"before-call.lambda.{operation}", interfere)
