"""The scheduler hook: how a driver shares a process's CPU between many runs.

A worker process runs many scripts at once, each on a thread of its own. Left alone,
every one of them that has work competes for Python's GIL at once, and the process spends
much of its CPU handing the GIL from thread to thread (each blocking call hands it over,
each wake-up takes it back): ``ops/bench/throughput.py`` measures it. A driver may give a
run a :class:`Scheduler` to take turns instead, as the Lua handlers of OpenResty take
turns on one event loop:

- the run calls ``pass_turn()`` between two slices of Lua work (at each clock reading,
  about every 5 ms of work): a scheduler may let others go first, then return;
- the driver holds ``waiting()`` while the run waits on a call or a sleep: a scheduler
  lets others work meanwhile.

The time a run waits for its turn counts against its wall clock, not its instructions.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Scheduler(Protocol):
    def pass_turn(self) -> None:
        """Between two slices of the run's Lua work: let other runs go first, if any wait."""
        ...

    def waiting(self) -> AbstractContextManager[object]:
        """Held while the run waits (a call out, a sleep): other runs may work."""
        ...


class NoScheduler:
    """Every run works whenever it has work (``luaq run``, tests)."""

    def pass_turn(self) -> None:
        pass

    def waiting(self) -> AbstractContextManager[object]:
        return nullcontext()


NO_SCHEDULER = NoScheduler()
