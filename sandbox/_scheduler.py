"""The scheduler hook: how a driver shares a process's CPU between many runs.

A worker process runs many scripts at once, each on a thread of its own. Left alone,
every one of them that has Python work to do competes for the GIL at once, and the
process spends much of its CPU handing the GIL from thread to thread (each blocking call
hands it over, each wake-up takes it back): ``ops/bench/throughput.py`` measures it. A
driver may give a run a :class:`Scheduler` that lets only a few runs do Python work at a
time, as the Lua handlers of OpenResty take turns on one event loop. The run holds
``released()`` whenever it needs no turn: while it waits on a call or a sleep, and while
its Lua runs (Lua runs without the GIL, so scripts still compute in parallel, on every
core, and a compute-heavy one holds back no one).

The time a run waits for its turn counts against its wall clock, not its instructions.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class Scheduler(Protocol):
    def released(self) -> AbstractContextManager[object]:
        """Held while the run needs no turn (a call out, a sleep, Lua running): others may work."""
        ...


class NoScheduler:
    """Every run works whenever it has work (``luaq run``, tests)."""

    def released(self) -> AbstractContextManager[object]:
        return nullcontext()


NO_SCHEDULER = NoScheduler()
