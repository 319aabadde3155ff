"""The one Celery task: run a job by id. Thin on purpose; see :func:`worker.runner.run_job`."""

from __future__ import annotations

import functools
import socket

from celery import Celery

from .app import TASK_NAME
from .runner import WorkerDeps, run_job
from .settings import Settings
from .store import JobStore


@functools.lru_cache(maxsize=1)
def _deps(settings: Settings, hostname: str) -> WorkerDeps:
    # One store (and Redis connection pool) per worker process, made after the fork.
    return WorkerDeps(settings=settings, store=JobStore.from_settings(settings), worker_name=hostname)


def register(app: Celery) -> None:
    settings: Settings = app.luaq_settings  # type: ignore[attr-defined]

    @app.task(name=TASK_NAME, bind=True, ignore_result=True)
    def run_job_task(self, job_id: str) -> None:  # type: ignore[no-untyped-def]
        hostname = self.request.hostname or socket.gethostname()
        run_job(job_id, _deps(settings, hostname))
