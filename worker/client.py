"""The Python submission client: submit jobs, read results, follow events.

    client = LuaqClient.from_settings(Settings.from_env())
    job_id = client.submit({"script": "return 1 + 1"})
    envelope = client.wait(job_id, timeout=60)
    for event in client.follow(job_id):        # replays from the first event
        ...
    client.cancel(job_id)                      # queued: never runs; running: stops within 1 s

A submission is validated before anything is written; the job record and its ``queued``
event are stored before the Celery message is sent, so the worker never sees a job it
cannot load. Submitting an existing ``job_id`` returns it and runs nothing new. A job
naming an account that no live worker announced is rejected when workers announced any
(with none announced, the submitter cannot know, and the worker fails the job instead).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from celery import Celery

from .app import TASK_NAME, create_app
from .job import JobRequest, JobStatus, SubmissionError, failure_envelope
from .settings import Settings
from .store import Event, JobNotFound, JobRecord, JobStore, now_ms
from .watchdog import HARD_LIMIT_GRACE_SECONDS


@dataclass(frozen=True)
class Submitted:
    job_id: str
    created: bool  # False when the job_id existed already (idempotent resubmission)


@dataclass(frozen=True)
class Cancellation:
    """What :meth:`LuaqClient.cancel` did.

    ``outcome``: ``cancelled`` (it was queued and will never run, or a running job stopped
    within the wait), ``requested`` (running; its worker had not stopped it yet when the
    wait ended), ``final`` (it had already finished: ``status`` says how; nothing changed).
    ``cancelled_predictions``: with ``cancel_predictions``, one ``{id, account, status}``
    (or ``error``) per prediction the job had created and that was still running."""

    job_id: str
    outcome: str
    status: str
    cancelled_predictions: list[dict[str, Any]] = field(default_factory=list)


LOWEST_PRIORITY = 9
# A job still queued this long after it was stored, submitted again, has its message sent
# again (see LuaqClient.submit_many).
REPUBLISH_AFTER_SECONDS = 5.0


def fair_priority(priority: int | None, backlog: int) -> int:
    """The Celery priority a job is queued with (0 first, 9 last): its own ``priority``
    pushed back by how many jobs its agent already has queued — one step per doubling
    (the 1st job: +0, the 2nd-3rd: +1, the 4th-7th: +2 ... the 512th on: +9) — so that
    one agent's batch of thousands never holds back another agent's single job."""
    return min(LOWEST_PRIORITY, (priority or 0) + max(backlog, 1).bit_length() - 1)


def publish(app: Celery, settings: Settings, request: JobRequest, priority: int | None = None, *,
            producer: Any = None) -> None:  # fmt: skip
    """Send the Celery message that makes a worker run the stored job ``request``
    (at ``priority``, else the job's own), through ``producer`` when given."""
    wall = request.limits_for(settings).wall_clock_seconds
    app.send_task(
        TASK_NAME,
        args=[request.job_id],
        task_id=request.job_id,
        queue=request.queue or settings.queue,
        priority=request.priority if priority is None else priority,
        # Under the prefork pool, the backstop behind the sandbox's own wall clock and the
        # watchdog (the threads pool has no time limits; its supervisor is the backstop).
        time_limit=wall + HARD_LIMIT_GRACE_SECONDS,
        producer=producer,
    )


class LuaqClient:
    def __init__(self, settings: Settings, store: JobStore, app: Celery) -> None:
        self.settings = settings
        self.store = store
        self.app = app

    @classmethod
    def from_settings(cls, settings: Settings) -> LuaqClient:
        return cls(settings, JobStore.from_settings(settings), create_app(settings))

    def submit(self, submission: Mapping[str, Any] | JobRequest) -> Submitted:
        """Validate and enqueue a job; raises SubmissionError for a bad submission."""
        [result] = self.submit_many([submission])
        if isinstance(result, SubmissionError):
            raise result
        return result

    def submit_many(self, submissions: Iterable[Mapping[str, Any] | JobRequest]) -> list[Submitted | SubmissionError]:
        """Validate and enqueue many jobs at once: one Redis round trip stores them all and
        one broker connection carries their messages, several times faster than
        :meth:`submit` in a loop (a batch of thousands).

        Returns one entry per submission, in order: its :class:`Submitted`, or the
        :class:`SubmissionError` that rejected it (the others go ahead). When a message
        cannot be sent, the jobs not yet queued are taken back and the error raised; the
        ones before it stay queued.

        A ``job_id`` that exists returns that job (``created=False``) when the submission
        is the same, and is rejected when it differs. One still queued after
        :data:`REPUBLISH_AFTER_SECONDS` has its message sent again: a submitter killed
        between storing a job and sending its message would otherwise leave it queued for
        ever (a second message for a job runs nothing)."""
        results: list[Submitted | SubmissionError | None] = []
        accepted: list[tuple[int, JobRequest]] = []
        announced = None
        for submission in submissions:
            try:
                request = submission if isinstance(submission, JobRequest) else JobRequest.from_dict(submission,
                                                                                                     self.settings)  # fmt: skip
                if announced is None:
                    announced = self.store.known_accounts()
                self._check_account(request, announced)
            except SubmissionError as exc:
                results.append(exc)
                continue
            accepted.append((len(results), request))
            results.append(None)
        creations = self.store.create_many([request for _, request in accepted])
        to_send: list[tuple[int, JobRequest, int]] = []  # (index, request, priority)
        for (index, request), creation in zip(accepted, creations, strict=True):
            if creation.outcome == "conflict":
                results[index] = SubmissionError(
                    f"job_id {request.job_id!r} belongs to another submission; a job_id is an idempotency key: "
                    "submitting it again returns that job only when the submission is the same"
                )
            elif creation.outcome == "created":
                to_send.append((index, request, fair_priority(request.priority, creation.count)))
            else:
                results[index] = Submitted(request.job_id, created=False)
                if creation.outcome == "queued" and now_ms() - creation.count > REPUBLISH_AFTER_SECONDS * 1000:
                    to_send.append((index, request, fair_priority(request.priority, 1)))
        with self.app.producer_or_acquire() as producer:
            for sent, (index, request, priority) in enumerate(to_send):
                try:
                    publish(self.app, self.settings, request, priority, producer=producer)
                except Exception:
                    self.store.discard([r for i, r, _ in to_send[sent:] if results[i] is None])
                    raise
                if results[index] is None:
                    results[index] = Submitted(request.job_id, created=True)
        return cast(list[Submitted | SubmissionError], results)  # every entry is filled in by now

    def _check_account(self, request: JobRequest, announced: set[str] | None = None) -> None:
        if announced is None:
            announced = self.store.known_accounts()
        if not announced:
            return  # no worker said which accounts it has: the worker decides
        known = announced | ({"default"} if request.simulate else set())
        if request.account not in known:
            raise SubmissionError(
                f"unknown account {request.account!r}: the running workers have tokens for "
                f"{', '.join(sorted(known))} (a worker adds one with REPLICATE_API_TOKEN_{request.account.upper()})"
            )

    def cancel(self, job_id: str, cancel_predictions: bool = False, *, timeout: float = 10.0) -> Cancellation:
        """Cancel a job. A queued one is finished ``cancelled`` at once, atomically, so its
        delivery runs nothing; a running one is flagged, its worker stops the script within
        a second, and this waits up to ``timeout`` s for its final state. With
        ``cancel_predictions`` the worker also cancels the predictions the job created
        that are still running (from its write journal). Raises JobNotFound."""
        envelope = failure_envelope(job_id, JobStatus.CANCELLED, "cancelled", "the job was cancelled before it started",
                                    {"attempt": 0})  # fmt: skip
        outcome, status = self.store.cancel(job_id, cancel_predictions=cancel_predictions, envelope=envelope)
        if outcome == "missing":
            raise JobNotFound(job_id)
        if outcome == "final":
            return Cancellation(job_id, "final", status or "")
        if outcome == "cancelled":
            return Cancellation(job_id, "cancelled", JobStatus.CANCELLED.value)
        deadline = time.monotonic() + timeout
        while True:
            record = self.get(job_id)
            if record.envelope is not None:
                reports = list(record.envelope.get("meta", {}).get("cancelled_predictions", []))
                how = "cancelled" if record.status == JobStatus.CANCELLED else "final"
                return Cancellation(job_id, how, record.status.value, reports)
            if time.monotonic() >= deadline:
                return Cancellation(job_id, "requested", record.status.value)
            time.sleep(0.05)

    def submit_json(self, text: str | bytes) -> Submitted:
        """Submit a job given as JSON text (the submission contract of DESIGN.md)."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SubmissionError(f"the submission is not valid JSON: {exc}") from None
        return self.submit(data)

    def get(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        return record

    def follow(
        self,
        job_id: str,
        after: str = "0-0",
        *,
        timeout: float | None = None,
        on_idle: Callable[[float, str], None] | None = None,
    ) -> Iterator[Event]:
        """Every event of the job after ``after``, live, until it finishes (see
        :meth:`JobStore.follow`)."""
        return self.store.follow(job_id, after, timeout=timeout, on_idle=on_idle)

    def wait(self, job_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job finishes and return its envelope."""
        record = self.get(job_id)
        if record.envelope is not None:
            return record.envelope
        for event in self.follow(job_id, timeout=timeout):
            if event.type == "finished":
                return event.data
        raise RuntimeError(f"job {job_id} ended without a finished event")  # pragma: no cover

    def close(self) -> None:
        self.store.redis.close()
        self.app.close()
