"""The last line of defence for the wall clock, and the keeper of running jobs' leases.

One :class:`Watchdog` per worker process watches every job the process runs (a threads-pool
process runs many at once). Its thread, every :data:`TICK_SECONDS`:

- beats the process's heartbeat, which the supervisor reads (:mod:`worker.supervisor`): a
  process whose watchdog cannot run — the GIL held by a stuck C call — stops beating and
  is replaced from outside;
- renews the leases of the running jobs in Redis every third of a lease, so that no other
  worker takes them over (:meth:`worker.store.JobStore.begin`), and learns of any job that
  was taken over anyway: that run is stopped (its cancel event is set), as its outcome
  can no longer be recorded and its write calls would repeat the new attempt's;
- asks Redis, in one round trip, which of its running jobs were cancelled
  (``luaq cancel``) and sets their cancel events: the sandbox stops the script between two
  instructions, before its next call, or in the middle of a sleep or a call it waits on;
- ends a job that outlived its wall clock by :data:`MARGIN_SECONDS`. The sandbox enforces
  the wall clock itself, between Lua instructions and around every host call; a script
  stuck inside one C call (or a call into the host that never returns) never gives it the
  chance, and nothing can interrupt that call from inside the process. So the watchdog
  records the stuck job's outcome (``on_stuck``) and ends the process with ``os._exit``.
  The other jobs of the process are not lost: the supervisor ends their leases and queues
  them again (:mod:`worker.supervisor`), where they run as a new attempt.

lupa releases the GIL while Lua runs, so this thread gets to run beside a stuck script.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from sandbox import Cancellation

log = structlog.get_logger("luaq.watchdog")

MARGIN_SECONDS = 2.0
HARD_LIMIT_GRACE_SECONDS = 10.0
TICK_SECONDS = 0.25
EXIT_STATUS = 70  # EX_SOFTWARE: the process was ended on purpose


@dataclass
class Watched:
    job_id: str
    attempt: int
    deadline: float
    on_stuck: Callable[[], None]
    taken_over: threading.Event = field(default_factory=threading.Event)
    cancel: Cancellation = field(default_factory=Cancellation)  # the run stops once set
    cancel_reason: str | None = None  # "cancelled" (luaq cancel) or "taken_over"

    def stop(self, reason: str) -> None:
        if not self.cancel.is_set():
            self.cancel_reason = reason
            self.cancel.set()


class Watchdog:
    """``with watchdog.watch(job_id, attempt, seconds, on_stuck): run()``.

    ``store`` renews leases (None: no leases, as in ``luaq run``); ``heartbeat`` is called
    on every tick; ``exit`` ends the process (``os._exit``; replaced in tests).
    """

    def __init__(self, store: Any = None, worker: str = "", *, margin: float = MARGIN_SECONDS,
                 tick: float = TICK_SECONDS, heartbeat: Callable[[], None] | None = None,
                 exit: Callable[[int], object] = os._exit, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._store = store
        self._worker = worker
        self._margin = margin
        self._tick = tick
        self._heartbeat = heartbeat
        self._exit = exit
        self._clock = clock
        self._jobs: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._renewed = clock()
        self._ended = False

    @contextlib.contextmanager
    def watch(self, job_id: str, attempt: int, seconds: float, on_stuck: Callable[[], None]) -> Iterator[Watched]:
        watched = Watched(job_id, attempt, self._clock() + seconds + self._margin, on_stuck)
        with self._lock:
            self._jobs[job_id] = watched
            self._ensure_thread()
        try:
            yield watched
        finally:
            with self._lock:
                self._jobs.pop(job_id, None)

    def start(self) -> None:
        """Start beating before any job arrives (a worker process calls this on boot)."""
        with self._lock:
            self._ensure_thread()

    @property
    def running(self) -> int:
        return len(self._jobs)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="luaq-watchdog", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self._tick)
            try:
                self.check()
            except Exception:
                log.exception("watchdog.check_failed")

    def check(self) -> None:
        """One tick: heartbeat, cancelled jobs stopped, lease renewal when due, stuck jobs ended."""
        if self._heartbeat is not None:
            self._heartbeat()
        now = self._clock()
        with self._lock:
            jobs = list(self._jobs.values())
        stuck = [w for w in jobs if now > w.deadline]
        if stuck and not self._ended:
            self._ended = True
            self._end(stuck)
            return
        if self._store is not None and jobs:
            self._stop_cancelled(jobs)
        if self._store is not None and now - self._renewed >= self._store.settings.lease_seconds / 3:
            self._renewed = now
            self._renew(jobs)

    def _renew(self, jobs: list[Watched]) -> None:
        if not jobs:
            return
        gone = set(self._store.renew(self._worker, {w.job_id: w.attempt for w in jobs}))
        for watched in jobs:
            if watched.job_id in gone and not watched.taken_over.is_set():
                watched.taken_over.set()
                watched.stop("taken_over")
                log.warning("job.taken_over", job_id=watched.job_id, attempt=watched.attempt)

    def _stop_cancelled(self, jobs: list[Watched]) -> None:
        cancelled = self._store.cancel_requests([w.job_id for w in jobs if not w.cancel.is_set()])
        for watched in jobs:
            if watched.job_id in cancelled:
                log.info("job.cancel_requested", job_id=watched.job_id, attempt=watched.attempt)
                watched.stop("cancelled")

    def _end(self, stuck: list[Watched]) -> None:
        for watched in stuck:
            log.error("watchdog.expired", job_id=watched.job_id, attempt=watched.attempt,
                      others=len(self._jobs) - len(stuck))  # fmt: skip
            try:
                watched.on_stuck()
            except Exception:
                log.exception("watchdog.on_stuck_failed", job_id=watched.job_id)
        self._exit(EXIT_STATUS)
