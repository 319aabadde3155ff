"""The write journal: every write call a job makes, recorded in Redis before it is sent.

Running a script again can repeat its writes (create every prediction again, spend the
money twice), so each write call (an operation the catalog marks ``write``: POST, PUT,
PATCH, DELETE, and the ``run`` helper) goes through :class:`JournalingProvider`, which

1. appends an entry to the job's journal (``luaq:journal:{job_id}``, a list) *before*
   the request is sent: ``state = "sent"``, with the attempt, the operation, the account
   and the arguments (long strings shortened). The append is fenced: it succeeds only
   while this attempt holds the job with a live lease, so an attempt paused past its lease
   (a stopped process, a host cut off from Redis) and taken over meanwhile cannot send a
   write the new attempt may repeat. When the append fails, nothing is sent and the
   script gets an error;
2. replaces it once the call returned: ``state = "ok"`` or ``"error"``, the HTTP status,
   and for a call that created a prediction or training its ``prediction_id`` and
   ``status``.

An entry left at ``"sent"`` is a call whose outcome nobody saw (its worker died, or the
job was cancelled while it was in flight): it may have taken effect. When a job's worker
dies and another takes the job over, :data:`~worker.store.BEGIN_SCRIPT` looks at the
journal in the same atomic step: a job whose earlier attempts wrote nothing simply runs
again; one that wrote ends ``lost`` with the journal in its envelope, unless it was
submitted with ``on_redelivery = "rerun"``. ``luaq cancel --cancel-predictions`` reads
the journal to find the predictions to cancel (:func:`cancel_predictions`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from sandbox import CallOutcome, FunctionSpec, Provider

from .dryrun import shorten
from .store import JobStore, NotHeld, now_ms

log = structlog.get_logger("luaq.journal")

TERMINAL_PREDICTION_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})


class JournalUnavailable(RuntimeError):
    """The write call could not be recorded, so it was not sent."""

    error_type = "api_error"


class Journal:
    """One attempt's view of a job's journal; counts its calls in flight."""

    def __init__(self, store: JobStore, job_id: str, attempt: int) -> None:
        self.store = store
        self.job_id = job_id
        self.attempt = attempt
        self._in_flight = 0
        self._idle = threading.Condition()

    def intent(self, operation: str, account: str, args: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Record a write call about to be sent; returns its index and entry."""
        entry: dict[str, Any] = {"attempt": self.attempt, "operation": operation, "account": account,
                                 "args": shorten(dict(args)), "state": "sent", "sent_at": now_ms()}  # fmt: skip
        try:
            index = self.store.journal_append(self.job_id, entry, self.attempt)
        except NotHeld as exc:
            log.warning("journal.not_held", operation=operation, attempt=self.attempt)
            raise JournalUnavailable(
                f"{operation}: not sent: this run of the job no longer holds it (another attempt took it "
                "over, or it was ended)"
            ) from exc
        except Exception as exc:
            log.error("journal.append_failed", operation=operation, error=str(exc))
            raise JournalUnavailable(
                f"{operation}: the write call could not be recorded in the job's journal, so it was not sent"
            ) from exc
        with self._idle:
            self._in_flight += 1
        return index, entry

    def outcome(self, index: int, entry: dict[str, Any], *, creates: bool, value: Any = None,
                http_status: int | None = None, error: BaseException | None = None) -> None:  # fmt: skip
        """Record how a journaled call ended (best effort: the call is over either way)."""
        done = {**entry, "state": "error" if error is not None else "ok", "http_status": http_status,
                "finished_at": now_ms()}  # fmt: skip
        if error is not None:
            done["error"] = str(error)[:500]
            done["http_status"] = getattr(error, "status", None)
        if creates and isinstance(value, Mapping) and isinstance(value.get("id"), str):
            done["prediction_id"] = value["id"]
            done["prediction_status"] = value.get("status")
        try:
            self.store.journal_update(self.job_id, index, done)
        except Exception as exc:
            log.error("journal.update_failed", operation=entry["operation"], error=str(exc))
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for calls still in flight (abandoned by a cancel) to end."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


class JournalingProvider:
    """A provider that forwards every call to ``provider`` and journals the write calls."""

    def __init__(self, provider: Provider, journal: Journal) -> None:
        self._provider = provider
        self._journal = journal
        self._specs: dict[str, FunctionSpec] | None = None

    @property
    def name(self) -> str:
        return self._provider.name

    def functions(self) -> Sequence[FunctionSpec]:
        return self._provider.functions()

    def accounts(self) -> Sequence[str]:
        return self._provider.accounts()

    def overview_doc(self) -> str:
        return self._provider.overview_doc()

    def call(
        self, function: str, account: str, args: Mapping[str, Any], *, timeout: float | None = None
    ) -> CallOutcome:
        if self._specs is None:
            self._specs = {name: spec for spec in self.functions() for name in spec.names}
        spec = self._specs.get(function)
        if spec is None or spec.kind != "write":
            return self._provider.call(function, account, args, timeout=timeout)
        index, entry = self._journal.intent(f"{self.name}.{spec.name}", account, args)
        try:
            outcome = self._provider.call(function, account, args, timeout=timeout)
        except BaseException as exc:
            self._journal.outcome(index, entry, creates=spec.creates, error=exc)
            raise
        self._journal.outcome(index, entry, creates=spec.creates, value=getattr(outcome, "value", None),
                              http_status=getattr(outcome, "http_status", None))  # fmt: skip
        return outcome


def created_predictions(journal: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The predictions (and trainings) the journal shows were created: id, account, status."""
    return [
        {"id": entry["prediction_id"], "account": entry.get("account", "default"),
         "status": entry.get("prediction_status"), "training": "training" in entry.get("operation", "")}
        for entry in journal
        if entry.get("prediction_id")
    ]  # fmt: skip


def cancel_predictions(providers: Sequence[Provider], journal: Sequence[Mapping[str, Any]],
                       *, timeout: float = 10.0) -> list[dict[str, Any]]:  # fmt: skip
    """Cancel every prediction the journal shows created and not known to have ended;
    returns one report per prediction: ``{id, account, status}`` with the status Replicate
    gave back, or ``error``."""
    replicate = next((p for p in providers if p.name == "replicate"), None)
    reports: list[dict[str, Any]] = []
    for created in created_predictions(journal):
        if created["status"] in TERMINAL_PREDICTION_STATUSES:
            continue
        report: dict[str, Any] = {"id": created["id"], "account": created["account"]}
        function, argument = (
            ("cancel_training", "training_id") if created["training"] else ("cancel_prediction", "prediction_id")
        )
        if replicate is None:
            report["error"] = "no replicate provider"
        else:
            try:
                outcome = replicate.call(function, created["account"], {argument: created["id"]}, timeout=timeout)
                value = getattr(outcome, "value", None)
                report["status"] = value.get("status") if isinstance(value, Mapping) else None
            except Exception as exc:
                report["error"] = str(exc)[:300]
        log.info("journal.prediction_cancelled", **report)
        reports.append(report)
    return reports
