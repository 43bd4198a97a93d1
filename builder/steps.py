"""The one run loop for plans of steps (the deploy's and the bootstrap's).

A step type describes itself (`describe()`); an executor maps each step type to the method
that applies it (explicit dispatch, one table per executor). `run_steps` announces each
step, applies it, and on a failure stamps the error with the step and says which step
failed and what that means for the user (`after`: where things stand, what to do).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from builder.errors import Lambda3Error


class Describable(Protocol):
    def describe(self) -> str: ...


Handlers = Mapping[type, Callable[[Any], None]]


def run_steps(steps: Sequence[Describable], handlers: Handlers, *, label: str,
              on_step: Callable[[str], None], after: Callable[[Lambda3Error], str]) -> None:
    for number, step in enumerate(steps, 1):
        on_step(f"{label} {number}/{len(steps)}: {step.describe()}")
        handler = handlers.get(type(step))
        if handler is None:
            raise TypeError(f"not a {label} step: {step!r}")
        try:
            handler(step)
        except Lambda3Error as error:
            error.stamp(f"{label}:{type(step).__name__}")
            error.message = f"{step.describe()} failed: {error.message}{after(error)}"
            raise
