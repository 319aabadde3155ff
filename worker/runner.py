"""Running one job: load it, run its script in the sandbox, publish what happens.

:func:`run_job` is plain Python, driven by the Celery task in production and directly by
tests. Log lines and integration calls are appended to the job's event stream as they
happen; write calls are journaled before they are sent (:mod:`worker.journal`); the final
envelope is written once, atomically, by :meth:`JobStore.finish`.

Before the script runs, in order: a stored request that no longer passes validation (a
message that reached the queue by another path) ends ``rejected``; a job asked to stop
ends ``cancelled`` (cancelling its predictions if asked); a job out of attempts, or taken
over after an attempt that made write calls, ends ``lost`` with its journal. While it
runs, the watchdog sets the run's cancel event when the job is cancelled (or taken over
by another attempt), and the sandbox stops it within a fraction of a second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from api_client import abandon_when
from sandbox import Envelope, Provider, run_script

from . import metrics
from .job import JobRequest, JobStatus, SubmissionError, failure_envelope, stuck_envelope
from .journal import Journal, JournalingProvider, cancel_predictions
from .providers import UnknownAccount, build_providers
from .settings import Settings
from .store import Begun, JobStore, now_ms
from .watchdog import Watchdog

log = structlog.get_logger("luaq.worker")

ProviderFactory = Callable[..., Sequence[Provider]]
IN_FLIGHT_GRACE_SECONDS = 2.0  # how long a cancel waits for abandoned write calls to report


@dataclass
class WorkerDeps:
    """What running a job needs; built once per worker process."""

    settings: Settings
    store: JobStore
    worker_name: str = field(default_factory=socket.gethostname)
    provider_factory: ProviderFactory = build_providers
    watchdog: Watchdog = field(default_factory=Watchdog)
    limiter: Any = None  # api_client's Limiter; the Redis one in workers (see tasks.py)
    # Queues a job again, last, when its agent runs its quota of jobs (see tasks.py).
    defer: Callable[[str], None] = lambda job_id: None


def run_job(job_id: str, deps: WorkerDeps) -> dict[str, Any] | None:
    """Run the job ``job_id`` as a new attempt; returns its envelope, or None when there
    was nothing to run (unknown or expired, already final, or held by a live attempt: a
    duplicate delivery)."""
    store = deps.store
    begun = store.begin(job_id, deps.worker_name)
    if begun.state == "deferred":
        deps.defer(job_id)
        return None
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
        request, envelope = _settle_before_running(job_id, begun, deps, meta)
        if envelope is None:
            if attempt > 1:
                log.warning("job.retaken", attempt=attempt, previous_worker=begun.previous_worker)
            log.info("job.started", attempt=attempt, queued_ms=meta["queued_ms"])
            with metrics.job_running():
                envelope = _execute(job_id, request, deps, meta, attempt)
        if store.finish(job_id, envelope["status"], envelope, attempt):
            metrics.record_job(envelope)
            log.info("job.finished", status=envelope["status"],
                     execution_time_ms=envelope["execution_time_ms"])  # fmt: skip
        else:
            log.warning("job.finish_lost", status=envelope["status"])
        return envelope


def _settle_before_running(job_id: str, begun: Begun, deps: WorkerDeps,
                           meta: dict[str, Any]) -> tuple[JobRequest | None, dict[str, Any] | None]:  # fmt: skip
    """The job's request, checked again, and the envelope of a job that must end without
    running its script (None: run it)."""
    store, attempt = deps.store, begun.attempt
    try:
        if begun.request_error:
            raise SubmissionError(begun.request_error)
        request = JobRequest.from_dict(begun.request, deps.settings, delivered=True)
    except SubmissionError as exc:
        log.error("job.rejected", reason=str(exc))
        return None, failure_envelope(job_id, JobStatus.REJECTED, "rejected", f"submission rejected: {exc}", meta)
    cancel = begun.cancel
    if cancel is not None:
        log.info("job.cancelled_before_running", attempt=attempt)
        envelope = failure_envelope(job_id, JobStatus.CANCELLED, "cancelled", "the job was cancelled", meta)
        if cancel == "predictions":
            envelope["meta"]["cancelled_predictions"] = _cancel_predictions(job_id, request, deps)
        if begun.state in ("wrote", "exhausted"):  # an earlier attempt's writes stay visible
            envelope = _with_journal(envelope, store.journal(job_id))
        return request, envelope
    if begun.state == "exhausted":
        log.error("job.attempts_exhausted", attempts=attempt)
        envelope = failure_envelope(
            job_id, JobStatus.LOST, "lost",
            f"gave up after {attempt} attempts: each one lost its worker process "
            f"(last: {begun.previous_worker or 'unknown'})", meta,
        )  # fmt: skip
        return request, _with_journal(envelope, store.journal(job_id))
    if begun.state == "wrote":
        journal = store.journal(job_id)
        log.error("job.lost_after_writes", writes=len(journal), previous_worker=begun.previous_worker)
        envelope = failure_envelope(
            job_id, JobStatus.LOST, "lost",
            f"attempt {attempt - 1} lost its worker ({begun.previous_worker or 'unknown'}) after making "
            f"{len(journal)} write call(s), listed in `journal`; the job is not run again, as that could repeat "
            'them (submit with on_redelivery = "rerun" to allow it)', meta,
        )  # fmt: skip
        return request, _with_journal(envelope, journal)
    return request, None


def _with_journal(envelope: dict[str, Any], journal: list[dict[str, Any]]) -> dict[str, Any]:
    if journal:
        envelope["journal"] = journal
    return envelope


def _cancel_predictions(job_id: str, request: JobRequest, deps: WorkerDeps,
                        journal: Journal | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Cancel the predictions the job's journal shows still running (after waiting briefly
    for write calls the cancel cut off, so that their predictions are known too)."""
    if journal is not None and not journal.wait_idle(IN_FLIGHT_GRACE_SECONDS):
        log.warning("job.cancel_in_flight_unknown")
    try:
        providers = deps.provider_factory(deps.settings, account=request.account, simulate=request.simulate,
                                          attachments=request.files, limiter=deps.limiter)  # fmt: skip
    except UnknownAccount:
        return []
    return cancel_predictions(providers, deps.store.journal(job_id))


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
    journal = Journal(deps.store, job_id, attempt)
    journaled = [JournalingProvider(provider, journal) for provider in providers]
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
    run_over = threading.Event()
    # A call the run gave up on (cancelled, taken over, past the wall clock) sends nothing
    # more, in the thread it was left running in.
    with (deps.watchdog.watch(job_id, attempt, limits.wall_clock_seconds, on_stuck) as watched,
          abandon_when(lambda: watched.cancel.is_set() or run_over.is_set())):  # fmt: skip
        try:
            envelope: Envelope = run_script(
                request.script, providers=journaled, args=request.args, limits=limits,
                allow_writes=request.allow_writes, on_output=on_output, on_call=on_call,
                chunk_name=request.file, job_id=job_id, cancel=watched.cancel,
            )  # fmt: skip
        finally:
            run_over.set()
    result = envelope.to_dict()
    result["job_id"] = job_id
    result["meta"] = {**result.get("meta", {}), **meta}
    if result["status"] == JobStatus.CANCELLED.value:
        log.info("job.cancel_honoured", reason=watched.cancel_reason)
        if deps.store.cancel_requested(job_id) == "predictions":
            result["meta"]["cancelled_predictions"] = _cancel_predictions(job_id, request, deps, journal)
    log.debug("job.ran", seconds=round(time.monotonic() - started, 3))
    return result
