"""``luaq batch``: one job per line of a JSONL file, results appended as they finish, resumable.

    luaq batch SCRIPT.lua INPUTS.jsonl --out RESULTS.jsonl [--account NAME] [--concurrency N] [--retry-failed]

Each non-blank input line (lines end at "\\n", nowhere else) is a JSON object, the job's
``args``. Each result line is that job's envelope plus ``"line"``, the input's line number
(1-based) when the job ran, written as soon as the job finishes, so the results file is in
finishing order.

Resuming rests on two things. A job's id says what the job is, not where its line is: the
batch key (a hash of the script, the account and every other submission option), a hash of
the input and its occurrence among identical inputs (1 for the first, in line order):
``batch-<key>-<input hash>-<occurrence>``. And the job id is luaq's idempotency key. So a
re-run of the same command skips every input whose result is already in ``--out``, and an
input whose job was submitted before the interruption does not run again: the re-run finds
the job by its id and reads its result (it had finished) or waits for it (it had not;
submitted once more first, which runs nothing new but sends the job's message again if the
earlier run was killed between storing the job and sending it). Inserting, removing or
moving lines changes no other input's job; an edited line is a new input and runs. Results
of a different batch in ``--out`` (another script or options) are refused rather than
mixed in.

With ``retry_failed``, an input whose result in ``--out`` did not succeed runs again as a
new job, ``-r<n>`` added to its id: n is one more than the input's highest retry in
``--out``, so a re-run after an interruption finds that retry job again instead of starting
another. Its result is appended; an input's last result in ``--out`` is the one that counts.

Results and jobs of an older luaq, whose ids named the line (``batch-<key>-<line>-<input
hash>``), still resume: such a result counts for the input now at its line when that input
is unchanged, and such a job still in Redis (submitted, result not yet written) is waited
for, not run a second time.

Malformed lines (not JSON, not an object, rejected as a submission) are reported on stderr
with their line number and skipped. ``--concurrency`` bounds how many of this batch's jobs
are queued or running at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
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
    """A well-formed input line. ``occurrence`` numbers identical inputs of the file in line
    order (1 for the first), so that each has a job of its own."""

    line: int
    args: dict[str, Any]
    occurrence: int = 1

    @cached_property
    def digest(self) -> str:
        return _digest(self.args)

    @property
    def identity(self) -> tuple[str, int]:
        """What the input's job and results are known by: its hash and its occurrence."""
        return self.digest[:16], self.occurrence


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
    seen: Counter[str] = Counter()
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
        digest = _digest(value)
        seen[digest] += 1
        items.append(BatchInput(number, value, seen[digest]))
    return items


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def batch_key(template: Mapping[str, Any]) -> str:
    """16 hex digits naming the batch: the script and every option that changes its jobs."""
    return _digest({name: template.get(name) for name in KEYED_FIELDS})[:16]


def job_id_for(key: str, item: BatchInput, retry: int = 0) -> str:
    """``batch-<key>-<input hash>-<occurrence>``, ending ``-r<retry>`` for a retry."""
    digest, occurrence = item.identity
    return f"batch-{key}-{digest}-{occurrence}" + (f"-r{retry}" if retry else "")


def line_job_id_for(key: str, item: BatchInput) -> str:
    """The id an older luaq gave the job: it named the line (``batch-<key>-<line>-<hash>``)."""
    return f"batch-{key}-{item.line}-{item.digest[:10]}"


_RESULT_JOB_ID = re.compile(
    r"batch-[0-9a-f]{16}-(?:(?P<digest>[0-9a-f]{16})-(?P<occurrence>[0-9]+)(?:-r(?P<retry>[0-9]+))?"
    r"|(?P<line>[0-9]+)-(?P<line_digest>[0-9a-f]{10}))"
)


@dataclass(frozen=True)
class Written:
    """A result in the results file, and the input it belongs to: ``identity`` (see
    :attr:`BatchInput.identity`) and ``retry``, or, for a job id naming its line (an older
    luaq), ``line_input``: that line and the first 10 hex digits of its input's hash."""

    job_id: str
    status: str
    success: bool
    identity: tuple[str, int] | None = None
    retry: int = 0
    line_input: tuple[int, str] | None = None


def load_done(out_path: Path, key: str) -> list[Written]:
    """The results in the results file, in file order. A partial last line (a write cut off
    by a kill) is removed; results of another batch are refused."""
    if not out_path.exists():
        return []
    data = out_path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(out_path, "r+b") as handle:
            handle.truncate(cut)
        data = data[:cut]
    done: list[Written] = []
    for number, raw in enumerate(jsonl_lines(data.decode("utf-8", errors="replace")), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            job_id = str(record["job_id"])
            int(record["line"])  # every result names its input's line
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise BatchError(f"{out_path}:{number} is not a luaq batch result; use another --out") from None
        if not job_id.startswith(f"batch-{key}-"):
            raise BatchError(
                f"{out_path} holds results of another batch (a different script or options, job {job_id}); "
                "use another --out, or remove it to start over"
            )
        parts = _RESULT_JOB_ID.fullmatch(job_id)
        if parts is None:
            raise BatchError(f"{out_path}:{number}: job id {job_id} is not one luaq batch gives; use another --out")
        status, success = str(record.get("status")), bool(record.get("success"))
        if parts["digest"]:
            identity = (parts["digest"], int(parts["occurrence"]))
            done.append(Written(job_id, status, success, identity=identity, retry=int(parts["retry"] or 0)))
        else:
            done.append(Written(job_id, status, success, line_input=(int(parts["line"]), parts["line_digest"])))
    return done


@dataclass
class Plan:
    """What a run does with each input: ``done`` holds those whose result in --out counts,
    ``todo`` the others with the retry their job is (0: the input's first job). ``retries``:
    how many of ``todo`` run again because their result failed; ``unmatched``: results in
    --out that belong to no input now (lines edited or removed since)."""

    done: list[tuple[BatchInput, Written]] = field(default_factory=list)
    todo: list[tuple[BatchInput, int]] = field(default_factory=list)
    retries: int = 0
    unmatched: int = 0


def plan_batch(inputs: list[BatchInput], written: list[Written], *, retry_failed: bool = False) -> Plan:
    """Match the results in --out to ``inputs`` (an input's last result counts) and list
    the inputs that still need a job: those without a result (their first job, retry 0)
    and, with ``retry_failed``, those whose last result did not succeed (their next retry)."""
    by_identity = {item.identity: item for item in inputs}
    by_line = {(item.line, item.digest[:10]): item for item in inputs}
    plan = Plan()
    last: dict[tuple[str, int], Written] = {}
    retries: Counter[tuple[str, int]] = Counter()
    for result in written:
        if result.identity is not None:
            item = by_identity.get(result.identity)
        else:
            item = by_line.get(result.line_input) if result.line_input is not None else None
        if item is None:
            plan.unmatched += 1
            continue
        last[item.identity] = result
        retries[item.identity] = max(retries[item.identity], result.retry)
    for item in inputs:
        result = last.get(item.identity)
        if result is None:
            plan.todo.append((item, 0))
        elif retry_failed and not result.success:
            plan.todo.append((item, retries[item.identity] + 1))
            plan.retries += 1
        else:
            plan.done.append((item, result))
    return plan


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
    retries: int = 0  # inputs run again because their result in --out failed
    unmatched: int = 0  # results in --out that belong to no input
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
        if p.retries:
            parts.append(f"{p.retries} retried after failing")
        if p.unmatched:
            parts.append(f"{p.unmatched} result(s) in {out_path} match no input line (kept, not counted)")
        if self.bad_lines:
            parts.append(f"{len(self.bad_lines)} malformed line(s) skipped: "
                         + ", ".join(str(b.line) for b in self.bad_lines[:20])
                         + (" ..." if len(self.bad_lines) > 20 else ""))  # fmt: skip
        return "; ".join(parts)


def run_batch(client: Any, template: Mapping[str, Any], inputs: list[BatchInput | BadLine], out_path: Path, *,
              concurrency: int, display: ProgressDisplay, retry_failed: bool = False, poll_seconds: float = 0.1,
              should_stop: Callable[[], bool] = lambda: False, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> BatchResult:  # fmt: skip
    """Run ``inputs`` as jobs through ``client`` (a :class:`~worker.client.LuaqClient`),
    appending each result to ``out_path``; see the module docstring.

    ``should_stop`` is checked between steps (the CLI sets it on Ctrl-C, so that no
    submission is cut in half): then :class:`BatchInterrupted` is raised, every submitted
    job goes on, and the results file holds whole lines only."""
    key = batch_key(template)
    bad = [item for item in inputs if isinstance(item, BadLine)]
    good = [item for item in inputs if isinstance(item, BatchInput)]
    plan = plan_batch(good, load_done(out_path, key), retry_failed=retry_failed)
    progress = Progress(total=len(good), retries=plan.retries, unmatched=plan.unmatched, started=clock())
    for bad_line in bad:
        display.message(f"luaq: line {bad_line.line}: {bad_line.reason}; skipped")
    if plan.unmatched:
        display.message(f"luaq: {plan.unmatched} result(s) in {out_path} match no input line (edited or removed "
                        "since they ran): they stay in the file and are not counted")  # fmt: skip
    for _, result in plan.done:
        progress.count(result.status, result.success, Source.OUT)
    redis = client.store.redis
    in_flight, queue = _find_submitted(redis, key, plan.todo)
    _submit_again(client, template, in_flight, display)
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


def _find_submitted(redis: Any, key: str, todo: list[tuple[BatchInput, int]]
                    ) -> tuple[dict[str, tuple[BatchInput, Source]], list[tuple[BatchInput, str]]]:  # fmt: skip
    """Split ``todo`` (inputs and retries) into the jobs an earlier run submitted (by job
    id; finished: ``REUSED``, else ``WAITED``) and the jobs still to submit, in one round
    trip.

    An input's first job may also exist under the id an older luaq gave it
    (:func:`line_job_id_for`), submitted before the upgrade, its result not yet written:
    that job is used rather than a second one. Such jobs expire with ``LUAQ_JOB_TTL``,
    after which this look-up finds nothing and can go."""
    candidates = [[job_id_for(key, item, retry)] + ([] if retry else [line_job_id_for(key, item)])
                  for item, retry in todo]  # fmt: skip
    with redis.pipeline(transaction=False) as pipe:
        for job_id in (job_id for ids in candidates for job_id in ids):
            pipe.hget(keys.job(job_id), "status")
        replies = iter(pipe.execute())
    in_flight: dict[str, tuple[BatchInput, Source]] = {}
    queue: list[tuple[BatchInput, str]] = []
    for (item, _), ids in zip(todo, candidates, strict=True):
        statuses = [next(replies) for _ in ids]
        job_id, status = next(((i, s) for i, s in zip(ids, statuses, strict=True) if s is not None), (ids[0], None))
        if status is None:
            queue.append((item, job_id))
        else:
            in_flight[job_id] = (item, Source.REUSED if status in FINAL_STATUSES else Source.WAITED)
    return in_flight, queue


def _submit_again(client: Any, template: Mapping[str, Any], in_flight: Mapping[str, tuple[BatchInput, Source]],
                  display: ProgressDisplay) -> None:  # fmt: skip
    """Submit the unfinished jobs of an earlier run again, in one round trip: a job whose
    submitter was killed between storing it and sending its message is still queued, and
    submitting it again sends the message (:meth:`~worker.client.LuaqClient.submit_many`);
    for the others it changes nothing. One stored with another submission (another
    ``--agent-id``, the script named by another path) is refused: it is waited for all the
    same, and said so."""
    waiting = [(job_id, item) for job_id, (item, source) in in_flight.items() if source is Source.WAITED]
    if not waiting:
        return
    answers = client.submit_many([{**template, "args": item.args, "job_id": job_id} for job_id, item in waiting])
    for (job_id, item), answer in zip(waiting, answers, strict=True):
        if isinstance(answer, SubmissionError):
            display.message(f"luaq: line {item.line}: waiting for job {job_id} of an earlier run, which could not "
                            f"be submitted again ({answer}): if it stays queued, its message was lost")  # fmt: skip


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
