"""``luaq batch``: one job per line of a JSONL file, results appended as they finish, resumable.

    luaq batch SCRIPT.lua INPUTS.jsonl --out RESULTS.jsonl [--account NAME] [--concurrency N]

Each non-blank input line is a JSON object, the job's ``args``. Each result line is that
job's envelope plus ``"line"``, the input's line number (1-based), written as soon as the
job finishes, so the results file is in finishing order.

Resuming rests on two things. A job's id is derived from what the job is: the batch key
(a hash of the script, the account and every other submission option), the line number
and a hash of the line's input (``batch-<key>-<line>-<input hash>``). And the job id is
luaq's idempotency key. So a re-run of the same command skips every line whose result is
already in ``--out``, and a line whose job was submitted before the interruption but had
not finished is not submitted again: the re-run finds the job (queued, running or
finished) by its id and waits for it. Only a line whose input changed runs again. Results
of a different batch in ``--out`` (another script or options) are refused rather than
mixed in.

Malformed lines (not JSON, not an object, rejected as a submission) are reported on stderr
with their line number and skipped. ``--concurrency`` bounds how many of this batch's jobs
are queued or running at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from . import keys
from .job import FINAL_STATUSES, JobStatus, SubmissionError, failure_envelope

# Submission fields that change what a job does: they make up the batch key.
KEYED_FIELDS = ("script", "account", "allow_writes", "limits", "simulate", "queue", "priority", "files")


class BatchError(Exception):
    """The batch cannot start (unreadable files, results of another batch in --out)."""


class BatchInterrupted(Exception):
    """``should_stop`` said stop: submitted jobs go on, and their results are picked up by
    the next run of the same batch."""


@dataclass(frozen=True)
class BatchInput:
    line: int
    args: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


def jsonl_lines(text: str) -> list[str]:
    r"""The lines of a JSONL text, split at "\n" only (a "\r" before it dropped): not at the
    other line breaks :meth:`str.splitlines` knows (U+2028, U+2029, U+0085, \x0b, \x0c,
    \x1c-\x1e), which a JSON string may hold raw."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_inputs(path: Path) -> list[BatchInput | BadLine]:
    """Every non-blank line of a JSONL file, parsed: an input, or why it is malformed."""
    try:
        text = path.read_bytes().decode("utf-8")  # bytes: no newline translation, "\r" stays inside a line
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"cannot read inputs {str(path)!r}: {exc}") from None
    items: list[BatchInput | BadLine] = []
    for number, raw in enumerate(jsonl_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            items.append(BadLine(number, f"not valid JSON: {exc}"))
            continue
        if not isinstance(value, dict):
            items.append(BadLine(number, f"must be a JSON object (the job's args), got {type(value).__name__}"))
            continue
        items.append(BatchInput(number, value))
    return items


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def batch_key(template: Mapping[str, Any]) -> str:
    """16 hex digits naming the batch: the script and every option that changes its jobs."""
    return _digest({name: template.get(name) for name in KEYED_FIELDS})[:16]


def job_id_for(key: str, item: BatchInput) -> str:
    return f"batch-{key}-{item.line}-{_digest(item.args)[:10]}"


@dataclass(frozen=True)
class Written:
    """A result already in the results file."""

    job_id: str
    status: str
    success: bool


def load_done(out_path: Path, key: str) -> dict[int, Written]:
    """Lines already in the results file, by input line number. A partial last line (a
    write cut off by a kill) is removed; results of another batch are refused."""
    if not out_path.exists():
        return {}
    data = out_path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(out_path, "r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
    done: dict[int, Written] = {}
    for number, raw in enumerate(jsonl_lines(data.decode("utf-8", errors="replace")), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            job_id, line = record["job_id"], int(record["line"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise BatchError(f"{out_path}:{number} is not a luaq batch result; use another --out") from None
        if not str(job_id).startswith(f"batch-{key}-"):
            raise BatchError(
                f"{out_path} holds results of another batch (a different script or options, job {job_id}); "
                "use another --out, or remove it to start over"
            )
        done[line] = Written(str(job_id), str(record.get("status")), bool(record.get("success")))
    return done


class Source(StrEnum):
    """Where an input's result came from; the summary counts each."""

    OUT = "out"  # already in --out when the run started
    REUSED = "reused"  # its job had finished in an earlier run: read back from Redis, not run
    WAITED = "waited"  # its job was submitted by an earlier run, not yet finished: waited for
    RAN = "ran"  # submitted by this run


@dataclass
class Progress:
    """Counts for the progress line and the summary; ``clock`` is monotonic seconds."""

    total: int
    succeeded: int = 0
    failed: int = 0
    running: int = 0  # this batch's jobs submitted and not yet finished
    bad: int = 0
    by_status: dict[str, int] = field(default_factory=dict)  # the statuses of the failures
    by_source: Counter[Source] = field(default_factory=Counter)
    started: float = 0.0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    def count(self, status: str, success: bool, source: Source) -> None:
        self.by_source[source] += 1
        if success:
            self.succeeded += 1
        else:
            self.failed += 1
            self.by_status[status] = self.by_status.get(status, 0) + 1

    def rate(self, now: float) -> float:
        """Jobs finished per second by this run (results read back are not counted)."""
        elapsed = now - self.started
        ran = self.done - self.by_source[Source.OUT] - self.by_source[Source.REUSED]
        return ran / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        rate = self.rate(now)
        left = self.total - self.done
        return left / rate if rate > 0 else None

    def line(self, now: float) -> str:
        eta = self.eta(now)
        eta_text = "--" if eta is None else _duration(eta)
        return (f"done {self.done}/{self.total}  failed {self.failed}  running {self.running}  "
                f"{self.rate(now):.1f} jobs/s  ETA {eta_text}")  # fmt: skip


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressDisplay:
    """One line on stderr: redrawn in place on a terminal (at most ``tty_interval`` apart),
    or printed as a plain line every ``plain_interval`` seconds otherwise."""

    def __init__(self, stream: TextIO, *, is_tty: bool | None = None, tty_interval: float = 0.1,
                 plain_interval: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.stream = stream
        self.is_tty = stream.isatty() if is_tty is None else is_tty
        self.interval = tty_interval if self.is_tty else plain_interval
        self.clock = clock
        self._last = float("-inf")
        self._drawn = False

    def update(self, progress: Progress, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.is_tty:
            self.stream.write("\r\x1b[2K" + progress.line(now))
            self._drawn = True
        else:
            self.stream.write(f"luaq: batch: {progress.line(now)}\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (a bad input, a warning), above the progress line."""
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last = float("-inf")

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False


@dataclass
class BatchResult:
    progress: Progress
    seconds: float
    bad_lines: list[BadLine]

    @property
    def ok(self) -> bool:
        return self.progress.failed == 0 and not self.bad_lines

    def summary(self, out_path: Path) -> str:
        p = self.progress
        failed = f"{p.failed} failed"
        if set(p.by_status) - {JobStatus.FAILED.value}:  # only when the statuses say more than "failed"
            failed += " (" + ", ".join(f"{count} {status}" for status, count in sorted(p.by_status.items())) + ")"
        parts = [f"batch finished in {self.seconds:.1f} s: {p.total} inputs, {p.succeeded} succeeded, {failed}"]
        sources = {Source.OUT: f"already in {out_path}", Source.REUSED: "finished in an earlier run (read back)",
                   Source.WAITED: "submitted by an earlier run (waited for)", Source.RAN: "ran now"}  # fmt: skip
        parts.append(", ".join(f"{p.by_source[source]} {text}" for source, text in sources.items()
                               if p.by_source[source] or source is Source.RAN))  # fmt: skip
        if self.bad_lines:
            parts.append(f"{len(self.bad_lines)} malformed line(s) skipped: "
                         + ", ".join(str(b.line) for b in self.bad_lines[:20])
                         + (" ..." if len(self.bad_lines) > 20 else ""))  # fmt: skip
        return "; ".join(parts)


def run_batch(client: Any, template: Mapping[str, Any], inputs: list[BatchInput | BadLine], out_path: Path, *,
              concurrency: int, display: ProgressDisplay, poll_seconds: float = 0.1,
              should_stop: Callable[[], bool] = lambda: False, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> BatchResult:  # fmt: skip
    """Run ``inputs`` as jobs through ``client`` (a :class:`~worker.client.LuaqClient`),
    appending each result to ``out_path``; see the module docstring.

    ``should_stop`` is checked between steps (the CLI sets it on Ctrl-C, so that no
    submission is cut in half): then :class:`BatchInterrupted` is raised, every submitted
    job goes on, and the results file holds whole lines only."""
    key = batch_key(template)
    done = load_done(out_path, key)
    bad = [item for item in inputs if isinstance(item, BadLine)]
    good = [item for item in inputs if isinstance(item, BatchInput)]
    progress = Progress(total=len(good), started=clock())
    for item in bad:
        display.message(f"luaq: line {item.line}: {item.reason}; skipped")
    todo: list[tuple[BatchInput, str]] = []
    for item in good:
        job_id = job_id_for(key, item)
        written = done.get(item.line)
        if written is not None and written.job_id == job_id:
            progress.count(written.status, written.success, Source.OUT)
        else:
            if item.line in done:
                display.message(
                    f"luaq: line {item.line}: the input changed since its result was written; running it again"
                )
            todo.append((item, job_id))
    redis = client.store.redis
    in_flight, queue = _find_submitted(redis, todo)
    queue.reverse()
    with open(out_path, "a", encoding="utf-8") as out:
        try:
            while queue or in_flight:
                if should_stop():
                    raise BatchInterrupted
                while queue and len(in_flight) < concurrency and not should_stop():
                    item, job_id = queue.pop()
                    try:
                        submitted = client.submit({**template, "args": item.args, "job_id": job_id})
                    except SubmissionError as exc:
                        bad.append(BadLine(item.line, f"rejected: {exc}"))
                        progress.total -= 1
                        display.message(f"luaq: line {item.line}: rejected: {exc}; skipped")
                        continue
                    # Not created: another submitter got there between the lookup and now.
                    in_flight[job_id] = (item, Source.RAN if submitted.created else Source.WAITED)
                progress.running = len(in_flight)
                display.update(progress)
                finished = _collect_finished(client, redis, list(in_flight))
                for job_id, envelope in finished:
                    item, source = in_flight.pop(job_id)
                    out.write(json.dumps({**envelope, "line": item.line}, ensure_ascii=False) + "\n")
                    out.flush()
                    progress.count(str(envelope.get("status")), bool(envelope.get("success")), source)
                progress.running = len(in_flight)
                if not finished and in_flight:
                    display.update(progress)
                    sleep(poll_seconds)
        finally:
            out.flush()
            os.fsync(out.fileno())
            display.clear()
    progress.bad = len(bad)
    return BatchResult(progress, clock() - progress.started, sorted(bad, key=lambda b: b.line))


def _find_submitted(redis: Any, todo: list[tuple[BatchInput, str]]
                    ) -> tuple[dict[str, tuple[BatchInput, Source]], list[tuple[BatchInput, str]]]:  # fmt: skip
    """Split ``todo`` (inputs and their job ids) into the jobs an earlier run submitted
    (finished: ``REUSED``, else ``WAITED``) and the jobs still to submit, in one round trip."""
    with redis.pipeline(transaction=False) as pipe:
        for _, job_id in todo:
            pipe.hget(keys.job(job_id), "status")
        statuses = pipe.execute()
    in_flight: dict[str, tuple[BatchInput, Source]] = {}
    queue: list[tuple[BatchInput, str]] = []
    for (item, job_id), status in zip(todo, statuses, strict=True):
        if status is None:
            queue.append((item, job_id))
        else:
            in_flight[job_id] = (item, Source.REUSED if status in FINAL_STATUSES else Source.WAITED)
    return in_flight, queue


def _collect_finished(client: Any, redis: Any, job_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The envelopes of those of ``job_ids`` that have finished (one round trip for the
    statuses, one read per finished job)."""
    if not job_ids:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(keys.job(job_id), "status")
        statuses = pipe.execute()
    finished: list[tuple[str, dict[str, Any]]] = []
    for job_id, status in zip(job_ids, statuses, strict=True):
        if status is None:  # the record expired or was deleted under us
            finished.append((job_id, failure_envelope(job_id, JobStatus.LOST, "lost",
                                                      "the job's record disappeared before it finished")))  # fmt: skip
        elif status in FINAL_STATUSES:
            record = client.store.get(job_id)
            if record is not None and record.envelope is not None:
                finished.append((job_id, record.envelope))
    return finished
