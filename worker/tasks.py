"""The one Celery task: run a job by id. Thin on purpose; see :func:`worker.runner.run_job`."""

from __future__ import annotations

import functools
import socket
from typing import Any

from celery import Celery, Task
from celery.exceptions import TimeLimitExceeded

from .app import TASK_NAME
from .job import JobRequest, JobStatus, stuck_envelope
from .ratelimit import RedisLimiter
from .runner import WorkerDeps, run_job
from .settings import Settings
from .store import JobStore


@functools.lru_cache(maxsize=1)
def _deps(settings: Settings, hostname: str) -> WorkerDeps:
    # One store (and Redis connection pool) per process, made on first use (after the fork).
    store = JobStore.from_settings(settings)
    limiter = RedisLimiter(store.redis, settings.rate_limits)
    return WorkerDeps(settings=settings, store=store, worker_name=hostname, limiter=limiter)


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
        deps = _deps(self.app.luaq_settings, self.request.hostname or socket.gethostname())
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
        deps.store.finish(job_id, JobStatus.LIMIT_EXCEEDED.value, envelope, record.attempt)


def register(app: Celery) -> None:
    settings: Settings = app.luaq_settings  # type: ignore[attr-defined]

    @app.task(name=TASK_NAME, bind=True, base=JobTask, ignore_result=True, shared=False)
    def run_job_task(self: Task, job_id: str) -> None:
        hostname = self.request.hostname or socket.gethostname()
        run_job(job_id, _deps(settings, hostname))
