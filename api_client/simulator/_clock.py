"""A manual clock for tests and benchmarks: time moves only when something sleeps on it."""

from __future__ import annotations

__all__ = ["ManualClock"]

START = 1_700_000_000.0


class ManualClock:
    """Call it for the time (Unix seconds); ``sleep`` records the wait and moves the time on
    at once, ``advance`` moves it without a sleep. Hand the same clock to the simulator, the
    provider (or a ``RetryPolicy``) and the sandbox, and no test ever really waits."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds
