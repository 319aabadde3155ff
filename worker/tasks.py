"""The one Celery task: run a job by id. Thin on purpose; see :func:`worker.runner.run_job`."""

from __future__ import annotations

import functools
import gc
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import structlog
from celery import Celery, Task
from celery.exceptions import TimeLimitExceeded
from celery.signals import worker_ready

from . import metrics
from .app import TASK_NAME
from .job import JobRequest, JobStatus, stuck_envelope
from .providers import build_providers
from .ratelimit import RedisLimiter
from .runner import WorkerDeps, run_job
from .settings import Settings
from .store import JobStore
from .watchdog import Watchdog

log = structlog.get_logger("luaq.worker")

_heartbeat: Callable[[], None] | None = None
_on_drain: Callable[[], None] | None = None


def set_process_hooks(heartbeat: Callable[[], None], on_drain: Callable[[], None]) -> None:
    """What this process's watchdog calls on every tick (the supervisor reads it), and when
    a stuck job means the process must take no more jobs (see :mod:`worker.watchdog`)."""
    global _heartbeat, _on_drain
    _heartbeat, _on_drain = heartbeat, on_drain


@functools.lru_cache(maxsize=1)
def worker_deps(settings: Settings, hostname: str, pid: int) -> WorkerDeps:
    # One store (and Redis connection pool), limiter and watchdog per process, made on
    # first use (after the fork, under prefork).
    store = JobStore.from_settings(settings, ride_out_restarts=True)
    limiter = metrics.MeteredLimiter(RedisLimiter(store.redis, settings.rate_limits))
    name = f"{hostname}:{pid}"
    watchdog = Watchdog(store, name, heartbeat=_heartbeat, on_drain=_on_drain)
    return WorkerDeps(settings=settings, store=store, worker_name=name, limiter=limiter, watchdog=watchdog,
                      defer=functools.partial(_defer, settings, store),
                      provider_factory=metrics.tracking_waits(build_providers))  # fmt: skip


DEFER_SECONDS = 1.0
GC_THRESHOLD = 10_000


def _defer(settings: Settings, store: JobStore, job_id: str) -> None:
    """The job's agent already runs its quota (``LUAQ_AGENT_MAX_RUNNING``): queue the job
    again, behind everything else, after a pause that keeps an agent whose every job is
    deferred from spinning through the queue. The pause holds one thread, not a CPU."""
    from .client import LOWEST_PRIORITY, publish

    record = store.get(job_id)
    if record is None or record.is_final:
        return
    time.sleep(DEFER_SECONDS)
    log.info("job.deferred", job_id=job_id, agent_id=record.request.get("agent_id"),
             quota=settings.agent_max_running)  # fmt: skip
    publish(_app(settings), settings, JobRequest.from_stored(record.request), LOWEST_PRIORITY)


@functools.lru_cache(maxsize=1)
def _app(settings: Settings) -> Celery:
    from .app import create_app

    return create_app(settings)


def process_deps(app: Celery, hostname: str | None) -> WorkerDeps:
    return worker_deps(app.luaq_settings, hostname or socket.gethostname(), os.getpid())  # type: ignore[attr-defined]


class JobTask(Task):
    """Records the outcome of a job whose process Celery's hard time limit ended.

    Celery runs ``on_failure`` for a hard time limit in the pool's parent process, after
    killing the child: the job's script never returned, so nothing else will write its
    final state (see :mod:`worker.watchdog`, which normally gets there first).
    """

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if not isinstance(exc, TimeLimitExceeded) or not args:
            return
        job_id = args[0]
        deps = process_deps(self.app, self.request.hostname)
        record = deps.store.get(job_id)
        if record is None or record.is_final:
            return

        limits = JobRequest.from_stored(record.request).limits_for(deps.settings)
        envelope = stuck_envelope(
            job_id,
            limits.wall_clock_seconds,
            [],
            {"worker": deps.worker_name, "attempt": record.attempt},
            ended="Celery's hard time limit replaced its worker process",
        )
        if deps.store.finish(job_id, JobStatus.LIMIT_EXCEEDED.value, envelope, record.attempt):
            metrics.record_job(envelope)


def register(app: Celery) -> None:
    settings: Settings = app.luaq_settings  # type: ignore[attr-defined]

    @app.task(name=TASK_NAME, bind=True, base=JobTask, ignore_result=True, shared=False)
    def run_job_task(self: Task, job_id: str) -> None:
        run_job(job_id, process_deps(self.app, self.request.hostname))

    @worker_ready.connect(weak=False)
    def _start_watchdog(sender: Any = None, **_: Any) -> None:
        # The heartbeat starts with the worker, before any job arrives.
        if settings.worker_pool == "threads" and sender is not None and sender.app is app:
            process_deps(app, sender.hostname).watchdog.start()
            tune_garbage_collection()


def tune_garbage_collection() -> None:
    """Make Python's cycle collector cheap in a process that runs many jobs at once.

    Every run leaves a reference cycle behind (its Lua runtime and the Python callbacks
    registered in it), so the collector runs often, and each full collection walked every
    object the worker had made at start-up, too: 16% of a busy worker's CPU
    (``perf`` on ``ops/bench/throughput.py``'s P4). The objects alive once the worker is up
    (modules, the Celery app, the catalog) are frozen out of collection, and the youngest
    generation is collected every ``GC_THRESHOLD`` allocations rather than 700."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, middle, oldest)
