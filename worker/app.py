"""The Celery app: configuration only; the work is in :mod:`worker.tasks` and
:mod:`worker.runner`.

Celery is configured as its maintainers recommend for long tasks on a Redis broker:
acknowledge a job only after it ran (``task_acks_late``) and put it back when the worker
process dies (``task_reject_on_worker_lost``); reserve one job at a time
(``worker_prefetch_multiplier = 1``); a visibility timeout far above the longest job, so
Redis does not hand a running job to a second worker; no Celery result backend (job
results go to luaq's own job store and streams, see :mod:`worker.store`); explicit
connection retry on start-up. The README's operations section explains each setting.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import setup_logging

from .redis_urls import celery_broker
from .settings import Settings

TASK_NAME = "luaq.run_job"
# Ten priority lists per queue, consumed strictly in order (0 first): the fairness between
# agents rides on it (see worker.client.fair_priority). kombu names them ``luaq``,
# ``luaq\x06\x161`` ... ``luaq\x06\x169``.
PRIORITY_STEPS = tuple(range(10))


@setup_logging.connect
def _keep_luaq_logging(**_: object) -> None:
    """Celery leaves logging alone when this signal has a receiver: ``luaq worker`` has
    configured it already (JSON lines, see :mod:`worker.logs`)."""


def create_app(settings: Settings) -> Celery:
    if not settings.redis_url:
        raise RuntimeError("no Redis configured: set LUAQ_REDIS_URL, or start local mode with `luaq up`")
    broker_url, broker_options = celery_broker(settings.redis_url, master_name=settings.redis_sentinel_master)
    if settings.visibility_timeout_seconds:
        # A short visibility timeout is only useful if abandoned jobs are looked for often
        # (kombu's default sweep: every 10 s x every 10th call).
        broker_options.update(unacked_restore_interval=1, unacked_restore_throttle=1)
    app = Celery("luaq", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "queue_order_strategy": "priority",
            "priority_steps": list(PRIORITY_STEPS),
            **broker_options,
        },
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    app.luaq_settings = settings  # type: ignore[attr-defined]
    from . import tasks

    tasks.register(app)
    return app
