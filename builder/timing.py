"""Per-step wall-clock timings, reported in results and summaries; the step running when
a `Lambda3Error` leaves it is stamped on the error."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Timings:
    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._start = clock()
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        from builder.errors import Lambda3Error

        started = self._clock()
        try:
            yield
        except Lambda3Error as error:
            error.stamp(name)
            raise
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + self._clock() - started, 3)

    def as_dict(self) -> dict[str, float]:
        return {**self.steps, "total": round(self._clock() - self._start, 3)}
