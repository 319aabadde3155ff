"""Turns at the CPU for the jobs of one worker process.

A worker process runs hundreds of jobs at once, one thread each, and nearly all of them
are waiting at any moment. Left alone, every thread that has work competes for the GIL
with all the others, and each blocking call hands the GIL over and each wake-up takes it
back: with 50 jobs at once a job cost twice the CPU it costs alone, most of it in
context switches (``ops/bench/throughput.py`` measures it). So at most ``count`` jobs of
a process *work* at once — run Python or Lua — and the others wait their turn in order,
without spinning; a job gives its turn up while it waits (a call out, a sleep) and, when
others wait, between two slices of Lua work (about every 5 ms of it), so a compute-heavy
job cannot hold the others back for more than a slice each. This is the scheduling
OpenResty gets from its event loop, kept on threads so that the sandbox, httpx and
redis-py stay synchronous, and a script stuck in one C call can still be stopped from
outside (:mod:`worker.watchdog`): its turn is revoked, and the others go on.

The Celery consumer, the watchdog and the threads that carry provider calls do not take
turns.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class CpuSlots:
    """``count`` turns, handed out in the order they were asked for (``count`` 0: no
    limit, every job works whenever it can)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._free = count
        self._queue: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Jobs waiting for a turn."""
        return len(self._queue)

    def turn(self) -> Turn:
        """A job's turn (not taken yet); it implements :class:`sandbox.Scheduler`."""
        return Turn(self)

    def _acquire(self) -> None:
        with self._lock:
            if self._free > 0 and not self._queue:
                self._free -= 1
                return
            handed = threading.Event()
            self._queue.append(handed)
        handed.wait()  # the releasing job hands its slot over directly

    def _release(self) -> None:
        with self._lock:
            if self._queue:
                self._queue.popleft().set()
            else:
                self._free += 1


class Turn:
    """One job's turn at the CPU: take it for the whole job (:meth:`held`), give it up while
    waiting (:meth:`waiting`), pass it on between slices (:meth:`pass_turn`)."""

    def __init__(self, slots: CpuSlots) -> None:
        self._slots = slots
        self._holding = False
        self._revoked = False
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        self._take()
        try:
            yield
        finally:
            self._give_up()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        holding = self._holding
        if holding:
            self._give_up()
        try:
            yield
        finally:
            if holding:
                self._take()

    def pass_turn(self) -> None:
        if self._holding and self._slots.waiting:
            self._give_up()
            self._take()

    def revoke(self) -> None:
        """The job is stuck and will never give its turn up: give it up for it (the
        watchdog, from its own thread). Should the job come back, it works without one."""
        with self._lock:
            self._revoked = True
            if self._holding:
                self._holding = False
                self._slots._release()

    def _take(self) -> None:
        if self._slots.count <= 0 or self._revoked:
            return
        self._slots._acquire()
        with self._lock:
            if self._revoked:  # revoked while it waited: hand the slot straight back
                self._slots._release()
                return
            self._holding = True

    def _give_up(self) -> None:
        with self._lock:
            if self._holding:
                self._holding = False
                self._slots._release()
