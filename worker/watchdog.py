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
  the wall clock itself, between Lua instructions, around every host call, and on a
  provider call that does not come back in time (it gives up on it); a script stuck inside
  one C call never gives it the chance, and nothing can interrupt that call from inside the
  process. So the watchdog records the stuck job's outcome (``on_stuck``: the job is over
  for its submitter at once) and *drains* the process: ``on_drain`` makes it take no new
  jobs (and the supervisor start a replacement), the other jobs it runs go on to their
  ends, and once only stuck ones are left it ends the process with ``os._exit``. A job
  stuck in C burns one core meanwhile, for at most the longest wall clock of the others:
  a price worth paying, since a job cut off after its write calls could not be run
  again (it would end ``lost``). Should the process die anyway, the supervisor ends the
  leases of its jobs and queues them again (:mod:`worker.supervisor`).

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
    stuck: bool = False  # past its deadline and recorded; its thread may never come back

    def stop(self, reason: str) -> None:
        if not self.cancel.is_set():
            self.cancel_reason = reason
            self.cancel.set()


class Watchdog:
    """``with watchdog.watch(job_id, attempt, seconds, on_stuck): run()``.

    ``store`` renews leases (None: no leases, as in ``luaq run``); ``heartbeat`` is called
    on every tick; ``on_drain`` when the first job gets stuck (the process must take no
    more jobs); ``exit`` ends the process (``os._exit``; replaced in tests).
    """

    def __init__(self, store: Any = None, worker: str = "", *, margin: float = MARGIN_SECONDS,
                 tick: float = TICK_SECONDS, heartbeat: Callable[[], None] | None = None,
                 on_drain: Callable[[], None] | None = None,
                 exit: Callable[[int], object] = os._exit, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._store = store
        self._worker = worker
        self._margin = margin
        self._tick = tick
        self._heartbeat = heartbeat
        self._on_drain = on_drain
        self._exit = exit
        self._clock = clock
        self._jobs: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._renewed = clock()
        self._draining = False
        self._ended = False

    @property
    def draining(self) -> bool:
        return self._draining

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
        """One tick: heartbeat, stuck jobs recorded and the process drained, cancelled jobs
        stopped, lease renewal when due."""
        if self._heartbeat is not None:
            self._heartbeat()
        if self._ended:
            return
        now = self._clock()
        with self._lock:
            jobs = list(self._jobs.values())
        newly_stuck = [w for w in jobs if not w.stuck and now > w.deadline]
        if newly_stuck:
            self._record_stuck(newly_stuck, others=sum(not w.stuck for w in jobs))
        running = [w for w in jobs if not w.stuck]
        if self._draining and not running:
            self._ended = True
            log.error("watchdog.process_ending", stuck=len(jobs))
            self._exit(EXIT_STATUS)
            return
        if self._store is not None and running:
            self._stop_cancelled(running)
        if self._store is not None and now - self._renewed >= self._store.settings.lease_seconds / 3:
            self._renewed = now
            self._renew(running)

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

    def _record_stuck(self, stuck: list[Watched], others: int) -> None:
        for watched in stuck:
            watched.stuck = True
            log.error("watchdog.expired", job_id=watched.job_id, attempt=watched.attempt,
                      others=others - len(stuck))  # fmt: skip
            try:
                watched.on_stuck()
            except Exception:
                log.exception("watchdog.on_stuck_failed", job_id=watched.job_id)
        if not self._draining:
            self._draining = True
            log.warning("watchdog.draining", others=others - len(stuck))
            if self._on_drain is not None:
                try:
                    self._on_drain()
                except Exception:
                    log.exception("watchdog.on_drain_failed")
