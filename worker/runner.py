"""Running one job: load it, run its script in the sandbox, publish what happens.

:func:`run_job` is plain Python, driven by the Celery task in production and directly by
tests. Log lines and integration calls are appended to the job's event stream as they
happen; the final envelope is written once, atomically, by :meth:`JobStore.finish`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from sandbox import Envelope, Provider, run_script

from . import metrics
from .job import JobRequest, JobStatus, failure_envelope, stuck_envelope
from .providers import UnknownAccount, build_providers
from .settings import Settings
from .store import JobStore, now_ms
from .watchdog import Watchdog

log = structlog.get_logger("luaq.worker")

ProviderFactory = Callable[..., Sequence[Provider]]


@dataclass
class WorkerDeps:
    """What running a job needs; built once per worker process."""

    settings: Settings
    store: JobStore
    worker_name: str = field(default_factory=socket.gethostname)
    provider_factory: ProviderFactory = build_providers
    watchdog: Watchdog = field(default_factory=Watchdog)
    limiter: Any = None  # api_client's Limiter; the Redis one in workers (see tasks.py)


def run_job(job_id: str, deps: WorkerDeps) -> dict[str, Any] | None:
    """Run the job ``job_id`` as a new attempt; returns its envelope, or None when there
    was nothing to run (unknown or expired, already final, or held by a live attempt: a
    duplicate delivery)."""
    store = deps.store
    begun = store.begin(job_id, deps.worker_name)
    if begun.state in ("missing", "final", "busy"):
        log.info("job.not_run", job_id=job_id, reason=begun.state)
        return None
    request_data = begun.request or {}
    with structlog.contextvars.bound_contextvars(
        job_id=job_id, account=request_data.get("account"), agent_id=request_data.get("agent_id")
    ):
        attempt = begun.attempt
        meta: dict[str, Any] = {"worker": deps.worker_name, "attempt": attempt,
                                "queued_ms": max(0, now_ms() - (begun.created_at or now_ms()))}  # fmt: skip
        if begun.state == "exhausted":
            envelope = failure_envelope(
                job_id, JobStatus.LOST, "lost",
                f"gave up after {attempt} attempts: each one lost its worker process "
                f"(last: {begun.previous_worker or 'unknown'})", meta,
            )  # fmt: skip
            if store.finish(job_id, JobStatus.LOST.value, envelope, attempt):
                metrics.record_job(envelope)
                log.error("job.attempts_exhausted", attempts=attempt)
            return envelope
        if attempt > 1:
            log.warning("job.retaken", attempt=attempt, previous_worker=begun.previous_worker)
        log.info("job.started", attempt=attempt, queued_ms=meta["queued_ms"])
        with metrics.job_running():
            envelope = _execute(job_id, JobRequest.from_stored(request_data), deps, meta, attempt)
        if store.finish(job_id, envelope["status"], envelope, attempt):
            metrics.record_job(envelope)
            log.info("job.finished", status=envelope["status"],
                     execution_time_ms=envelope["execution_time_ms"])  # fmt: skip
        else:
            log.warning("job.finish_lost", status=envelope["status"])
        return envelope


def _execute(job_id: str, request: JobRequest, deps: WorkerDeps, meta: dict[str, Any],
             attempt: int) -> dict[str, Any]:  # fmt: skip
    settings = deps.settings
    limits = request.limits_for(settings)
    meta["limits"] = asdict(limits)
    try:
        providers = deps.provider_factory(
            settings,
            account=request.account,
            simulate=request.simulate,
            attachments=request.files,
            limiter=deps.limiter,
        )
    except UnknownAccount as exc:
        return failure_envelope(job_id, JobStatus.FAILED, exc.error_type, str(exc), meta)
    output: list[str] = []

    def on_output(line: str) -> None:
        output.append(line)
        deps.store.add_event(job_id, "log", {"line": line}, attempt)

    def on_call(entry: dict[str, Any]) -> None:
        deps.store.add_event(job_id, "call", entry, attempt)

    def on_stuck() -> None:
        stuck = stuck_envelope(job_id, limits.wall_clock_seconds, output, meta, ended="its worker process was replaced")
        if deps.store.finish(job_id, JobStatus.LIMIT_EXCEEDED.value, stuck, attempt):
            metrics.record_job(stuck)

    started = time.monotonic()
    with deps.watchdog.watch(job_id, attempt, limits.wall_clock_seconds, on_stuck):
        envelope: Envelope = run_script(
            request.script, providers=providers, args=request.args, limits=limits,
            allow_writes=request.allow_writes, on_output=on_output, on_call=on_call,
            chunk_name=request.file, job_id=job_id,
        )  # fmt: skip
    result = envelope.to_dict()
    result["job_id"] = job_id
    result["meta"] = {**result.get("meta", {}), **meta}
    log.debug("job.ran", seconds=round(time.monotonic() - started, 3))
    return result
