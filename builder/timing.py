"""Per-step wall-clock timings, reported in results and summaries; the step running when
a `Lambda3Error` leaves it is stamped on the error. Each step logs `step NAME ...` when it
starts and `step NAME done in N s` (or `failed after N s`) when it ends."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Timings:
    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._start = clock()
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        from builder.errors import Lambda3Error

        started = self._clock()
        log.info("step %s ...", name)
        outcome = "failed after"
        try:
            yield
            outcome = "done in"
        except Lambda3Error as error:
            error.stamp(name)
            raise
        finally:
            took = self._clock() - started
            self.steps[name] = round(self.steps.get(name, 0.0) + took, 3)
            log.info("step %s %s %.2f s", name, outcome, took)

    def as_dict(self) -> dict[str, float]:
        return {**self.steps, "total": round(self._clock() - self._start, 3)}
