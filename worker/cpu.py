"""Turns at the CPU for the jobs of one worker process.

A worker process runs hundreds of jobs at once, one thread each, and nearly all of them
are waiting at any moment. Left alone, every thread with Python work to do competes for
the GIL with all the others, and each blocking call hands the GIL over and each wake-up
takes it back: with 500 jobs at once a job cost half as much CPU again as it costs alone,
most of it in context switches (``ops/bench/throughput.py`` and its notes). So at most
``count`` jobs of a process work at once, and the others wait their turn, in order,
without spinning. A job gives its turn up while it waits (a call out, a sleep); and a job
whose Lua has computed for :data:`STEP_ASIDE_SECONDS` while others wait goes on without
its turn until that stretch of Lua ends (Lua runs without the GIL, so scripts still
compute in parallel on every core, and a compute-heavy one keeps the others waiting for
at most that long). This is the scheduling OpenResty gets from its event loop, kept on
threads so that the sandbox, httpx and redis-py stay synchronous and a script stuck in
one C call can still be stopped from outside (:mod:`worker.watchdog`), which also revokes
a stuck job's turn.

The Celery consumer, the watchdog and the threads that carry provider calls do not take
turns.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Lua that has computed this long with others waiting goes on without its turn.
STEP_ASIDE_SECONDS = 0.002


class CpuSlots:
    """``count`` turns, handed out in the order they were asked for (``count`` 0: no
    limit, every job works whenever it can)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._free = count
        self._queue: deque[threading.Lock] = deque()
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
            handed = threading.Lock()
            handed.acquire()
            self._queue.append(handed)
        handed.acquire()  # blocks until the releasing job hands its turn over (a plain lock: cheap)

    def _release(self) -> None:
        with self._lock:
            if self._queue:
                self._queue.popleft().release()
            else:
                self._free += 1


class Turn:
    """One job's turn at the CPU: taken for the whole job (:meth:`held`), given up while it
    waits (:meth:`released`), and left while a long stretch of Lua computes (:meth:`computing`
    and :meth:`slice`). It is the job's :class:`sandbox.Scheduler`."""

    def __init__(self, slots: CpuSlots, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = slots
        self._clock = clock
        self._holding = False
        self._revoked = False
        self._stretch_started = 0.0
        self._stepped_aside = False
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        self._take()
        try:
            yield
        finally:
            self._give_up()

    @contextmanager
    def released(self) -> Iterator[None]:
        holding = self._holding
        if holding:
            self._give_up()
        try:
            yield
        finally:
            if holding:
                self._take()

    @contextmanager
    def computing(self) -> Iterator[None]:
        self._stretch_started = self._clock()
        try:
            yield
        finally:
            if self._stepped_aside:
                self._stepped_aside = False
                self._take()

    def slice(self) -> None:
        if (self._holding and self._slots.waiting
                and self._clock() - self._stretch_started >= STEP_ASIDE_SECONDS):  # fmt: skip
            self._give_up()
            self._stepped_aside = True

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
            if self._revoked:  # revoked while it waited: hand the turn straight on
                self._slots._release()
                return
            self._holding = True

    def _give_up(self) -> None:
        with self._lock:
            if self._holding:
                self._holding = False
                self._slots._release()
