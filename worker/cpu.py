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

A provider call runs in a thread of its own (so that a cancel need not wait for it); it
takes a turn of its own for its Python work (:class:`TakingTurns`) and gives it up around
every blocking wait inside the call: the HTTP exchange, the limiter's and the client's
sleeps (:func:`blocking`, :func:`sleep`, found through a context variable). The Celery
consumer and the watchdog do not take turns.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

# Lua that has computed this long with others waiting goes on without its turn.
STEP_ASIDE_SECONDS = 0.002

# The turn the work of this thread (or context) is done in.
_current: contextvars.ContextVar[Turn | None] = contextvars.ContextVar("luaq_turn", default=None)


@contextmanager
def working(turn: Turn) -> Iterator[None]:
    """Do this thread's work in ``turn``: take it, and let :func:`blocking` find it."""
    token = _current.set(turn)
    try:
        with turn.held():
            yield
    finally:
        _current.reset(token)


@contextmanager
def blocking() -> Iterator[None]:
    """Around a blocking wait in code that knows nothing of turns (httpx, a sleep): the
    turn this thread works in, if any, is given up meanwhile."""
    turn = _current.get()
    if turn is None:
        yield
        return
    with turn.released():
        yield


def sleep(seconds: float) -> None:
    """``time.sleep`` that gives the current turn up meanwhile."""
    with blocking():
        time.sleep(seconds)


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


class TakingTurns:
    """A provider whose calls do their Python work in turns of ``slots`` (each call, in
    the thread it runs in, its own turn). :meth:`revoke` ends the turns of calls still
    out (the run gave up on them), so that none can hold the process up."""

    def __init__(self, provider: Any, slots: CpuSlots) -> None:
        self._provider = provider
        self._slots = slots
        self._out: set[Turn] = set()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._provider.name

    def functions(self) -> Sequence[Any]:
        return self._provider.functions()

    def accounts(self) -> Sequence[str]:
        return self._provider.accounts()

    def overview_doc(self) -> str:
        return self._provider.overview_doc()

    def call(self, function: str, account: str, args: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        turn = self._slots.turn()
        with self._lock:
            self._out.add(turn)
        try:
            with working(turn):
                return self._provider.call(function, account, args, timeout=timeout)
        finally:
            with self._lock:
                self._out.discard(turn)

    def revoke(self) -> None:
        with self._lock:
            out = list(self._out)
        for turn in out:
            turn.revoke()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)
