"""The scheduler hook: how a driver shares a process's CPU between many runs.

A worker process runs many scripts at once, each on a thread of its own. Left alone,
every one of them that has Python work to do competes for the GIL at once, and the
process spends much of its CPU handing the GIL from thread to thread (each blocking call
hands it over, each wake-up takes it back): ``ops/bench/throughput.py`` measures it. A
driver may give a run a :class:`Scheduler` that lets only a few runs work at a time, as
the Lua handlers of OpenResty take turns on one event loop:

- ``released()`` is held while the run waits on a call or a sleep: it needs no turn;
- ``computing()`` is held around each stretch of the run's Lua, and ``slice()`` is called
  between two slices of its work (each clock reading, and host work done for it): a
  scheduler may let a run that has computed for a while go on without a turn (its Lua
  runs without the GIL, so a compute-heavy script holds back no one, and still uses every
  core), and takes the turn back for it when the stretch ends.

The time a run waits for its turn counts against its wall clock, not its instructions.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Scheduler(Protocol):
    def released(self) -> AbstractContextManager[object]:
        """Held while the run waits (a call out, a sleep): it needs no turn meanwhile."""
        ...

    def computing(self) -> AbstractContextManager[object]:
        """Held around one stretch of the run's Lua."""
        ...

    def slice(self) -> None:
        """Between two slices of the run's work (inside ``computing``)."""
        ...


class NoScheduler:
    """Every run works whenever it has work (``luaq run``, tests)."""

    def released(self) -> AbstractContextManager[object]:
        return nullcontext()

    def computing(self) -> AbstractContextManager[object]:
        return nullcontext()

    def slice(self) -> None:
        pass


NO_SCHEDULER = NoScheduler()
