"""`luaq batch` without workers: inputs, job ids, the results file, resuming and retrying
(on fakeredis, jobs finished by the test), the progress line and the summary."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from worker.batch import (
    BadLine,
    BatchError,
    BatchInput,
    BatchInterrupted,
    BatchResult,
    Progress,
    ProgressDisplay,
    Source,
    batch_key,
    job_id_for,
    line_job_id_for,
    load_done,
    read_inputs,
    run_batch,
)
from worker.client import Submitted
from worker.job import JOB_ID_PATTERN, JobRequest, JobStatus, SubmissionError, failure_envelope

TEMPLATE = {"script": "return job.args.n", "account": "default", "allow_writes": False, "limits": {}}
KEY = batch_key(TEMPLATE)


def finish(store, job_id: str) -> None:
    """End a stored job as the test script would: ``{"fail": true}`` fails unless the job
    is a retry (its id ends ``-r<n>``), ``{"always_fail": true}`` fails every time."""
    args = store.get(job_id).request["args"]
    if args.get("always_fail") or (args.get("fail") and not re.search(r"-r[0-9]+$", job_id)):
        envelope = failure_envelope(job_id, JobStatus.FAILED, "error", "asked to fail")
    else:
        envelope = {"job_id": job_id, "status": "succeeded", "success": True, "result": [args.get("n")]}
    store.finish(job_id, envelope["status"], envelope, attempt=0, holder_only=False)


class FakeClient:
    """What run_batch needs of a LuaqClient, over the fakeredis store: a job created by
    ``submit`` finishes at once, or with ``instant=False`` stays queued until
    :meth:`finish_queued` (run_batch's ``sleep`` in these tests). ``created`` lists the
    jobs submissions created."""

    def __init__(self, store, settings, *, instant: bool = True) -> None:
        self.store, self.settings, self.instant = store, settings, instant
        self.created: list[str] = []
        self.queued: list[str] = []

    def submit(self, submission: dict[str, Any]) -> Submitted:
        [answer] = self.submit_many([submission])
        if isinstance(answer, SubmissionError):
            raise answer
        return answer

    def submit_many(self, submissions: list[dict[str, Any]]) -> list[Submitted | SubmissionError]:
        answers: list[Submitted | SubmissionError] = []
        for submission in submissions:
            request = JobRequest.from_dict(submission, self.settings)
            [creation] = self.store.create_many([request])
            if creation.outcome == "conflict":
                answers.append(SubmissionError(f"job_id {request.job_id!r} belongs to another submission"))
                continue
            if creation.outcome == "created":
                self.created.append(request.job_id)
                self.queued.append(request.job_id)
                if self.instant:
                    self.finish_queued()
            answers.append(Submitted(request.job_id, creation.outcome == "created"))
        return answers

    def submitted_earlier(self, job_id: str, args: dict[str, Any], *, finished: bool, **fields: Any) -> None:
        """A job as an earlier run left it (with ``fields`` added to its submission):
        finished, or still queued."""
        request = JobRequest.from_dict({**TEMPLATE, **fields, "args": args, "job_id": job_id}, self.settings)
        self.store.create(request)
        self.queued.append(job_id)
        if finished:
            self.finish_queued()

    def finish_queued(self) -> None:
        for job_id in self.queued:
            finish(self.store, job_id)
        self.queued.clear()


def write_lines(path: Path, *lines: Any) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def run(client: FakeClient, inputs: Path, out: Path, **options: Any) -> tuple[BatchResult, str]:
    """One ``luaq batch`` run; returns its result and what it wrote on stderr."""
    stderr = io.StringIO()
    options.setdefault("sleep", lambda seconds: client.finish_queued())
    result = run_batch(client, TEMPLATE, read_inputs(inputs), out, concurrency=4,
                       display=ProgressDisplay(stderr, is_tty=False), **options)  # fmt: skip
    return result, stderr.getvalue()


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_inputs_are_objects_and_malformed_lines_are_named(tmp_path):
    """Blank lines are ignored; bad JSON and non-objects come back as BadLine with their number."""
    path = tmp_path / "in.jsonl"
    path.write_text('{"n": 1}\n\n{oops\n[1]\n{"n": 2}\n')
    items = read_inputs(path)
    assert items[0] == BatchInput(1, {"n": 1})
    assert isinstance(items[1], BadLine) and items[1].line == 3 and "not valid JSON" in items[1].reason
    assert isinstance(items[2], BadLine) and items[2].line == 4 and "JSON object" in items[2].reason
    assert items[3] == BatchInput(5, {"n": 2})


def test_inputs_split_at_newlines_only(tmp_path):
    """A raw U+2028 (or U+0085, \\x1e ...) in a JSON string stays in its line, so later line numbers hold; CRLF works."""
    path = tmp_path / "in.jsonl"
    texts = ["a\u2028b", "c\u2029d", "e\x85f"]
    lines = [json.dumps({"text": text}, ensure_ascii=False) for text in texts]
    path.write_bytes(("\r\n".join(lines) + '\n{"text": "\x1e"}\n{"n": 5}').encode())
    items = read_inputs(path)
    assert items[:3] == [BatchInput(number, {"text": text}) for number, text in enumerate(texts, start=1)]
    assert isinstance(items[3], BadLine) and items[3].line == 4  # a raw control character is not JSON
    assert items[4] == BatchInput(5, {"n": 5})  # a last line without "\n"
    assert len(items) == 5


def test_results_holding_unicode_line_separators_are_read_back(tmp_path):
    """An output with U+2028 written raw (ensure_ascii=False) is one result, not a broken line."""
    out = tmp_path / "out.jsonl"
    job_id = job_id_for(KEY, BatchInput(1, {"n": 1}))
    record = {"job_id": job_id, "line": 1, "status": "succeeded", "success": True,
              "output": "one\u2028two\u2029three\x85\x1c\x1d\x1e\x0b\x0c"}  # fmt: skip
    out.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert "\u2028" in out.read_text(encoding="utf-8")
    [done] = load_done(out, KEY)
    assert done.job_id == job_id and done.success


def test_identical_inputs_are_numbered_in_line_order(tmp_path):
    """Each copy of an input gets the next occurrence number, so each has a job of its own."""
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 1}, {"n": 2}, {"n": 1}, '{"n":1}')
    items = read_inputs(inputs)
    assert [(i.line, i.occurrence) for i in items] == [(1, 1), (2, 1), (3, 2), (4, 3)]
    assert len({job_id_for(KEY, i) for i in items}) == 4


def test_job_ids_depend_on_script_options_input_and_occurrence_not_on_the_line():
    """The same script and input give the same valid job id wherever its line is; input, occurrence, retry or
    options change it."""
    same = job_id_for(batch_key(dict(TEMPLATE)), BatchInput(3, {"n": 1}))
    assert job_id_for(KEY, BatchInput(3, {"n": 1})) == same
    assert JOB_ID_PATTERN.fullmatch(same)
    assert job_id_for(KEY, BatchInput(4, {"n": 1})) == same
    assert job_id_for(KEY, BatchInput(3, {"n": 2})) != same
    assert job_id_for(KEY, BatchInput(3, {"n": 1}, occurrence=2)) != same
    assert job_id_for(KEY, BatchInput(3, {"n": 1}), retry=1) == same + "-r1"
    assert JOB_ID_PATTERN.fullmatch(job_id_for(KEY, BatchInput(10**9, {"n": 1}, occurrence=10**6), retry=10**6))
    assert batch_key({**TEMPLATE, "script": "return 2"}) != KEY
    assert batch_key({**TEMPLATE, "account": "work"}) != KEY
    assert batch_key({**TEMPLATE, "agent_id": "someone"}) == KEY  # who submits does not change the job


def test_results_file_partial_last_line_is_dropped(tmp_path):
    """A result cut off mid-write by a kill is removed, so that line runs again."""
    out = tmp_path / "out.jsonl"
    whole = json.dumps({"job_id": job_id_for(KEY, BatchInput(1, {"n": 1})), "line": 1, "status": "succeeded",
                        "success": True})  # fmt: skip
    out.write_text(whole + "\n" + '{"job_id": "batch-' + KEY + "-2-")
    [done] = load_done(out, KEY)
    assert done.success
    assert out.read_text() == whole + "\n"


def test_results_of_another_batch_are_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"job_id": "batch-0000000000000000-1-abc", "line": 1}) + "\n")
    with pytest.raises(BatchError, match="another batch"):
        load_done(out, KEY)


def test_a_result_whose_job_id_batch_never_gives_is_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"job_id": f"batch-{KEY}-mine", "line": 1}) + "\n")
    with pytest.raises(BatchError, match=r"out.jsonl:1: job id .* is not one luaq batch gives"):
        load_done(out, KEY)


def test_a_fresh_batch_runs_every_input_and_names_malformed_lines(store, settings, tmp_path):
    """Every good line runs once; a bad one is reported as "line N"; one plain failure reads "1 failed"."""
    client = FakeClient(store, settings)
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 1}, "{oops", {"n": 2, "fail": True}, {"n": 3})
    out = tmp_path / "out.jsonl"
    result, stderr = run(client, inputs, out)
    assert "luaq: line 2: not valid JSON" in stderr
    assert sorted(r["line"] for r in results(out)) == [1, 3, 4]
    assert len(client.created) == 3 and not result.ok
    summary = result.summary(out)
    assert summary.startswith("batch finished in ")
    assert summary.endswith(": 3 inputs, 2 succeeded, 1 failed; 3 ran now; 1 malformed line(s) skipped: 2")


def test_a_resume_counts_results_in_out_jobs_reused_jobs_waited_for_and_jobs_run(store, settings, tmp_path):
    """Each input's result comes from one place, and the summary counts each place; only the new input runs."""
    client = FakeClient(store, settings, instant=False)
    out = tmp_path / "out.jsonl"
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 1}, {"n": 2}, {"n": 3}, {"n": 4})
    items = read_inputs(inputs)
    run(client, write_lines(tmp_path / "first.jsonl", {"n": 1}), out)  # its result is in --out
    client.submitted_earlier(job_id_for(KEY, items[1]), items[1].args, finished=True)
    client.submitted_earlier(job_id_for(KEY, items[2]), items[2].args, finished=False)
    client.created.clear()

    result, _ = run(client, inputs, out)
    assert client.created == [job_id_for(KEY, items[3])]
    assert sorted(r["line"] for r in results(out)) == [1, 2, 3, 4]
    assert result.ok
    assert result.progress.by_source == Counter({Source.OUT: 1, Source.REUSED: 1, Source.WAITED: 1, Source.RAN: 1})
    assert result.summary(out).endswith(
        f": 4 inputs, 4 succeeded, 0 failed; 1 already in {out}, 1 finished in an earlier run (read back), "
        "1 submitted by an earlier run (waited for), 1 ran now"
    )


def test_a_job_of_an_earlier_run_that_cannot_be_submitted_again_is_waited_for_all_the_same(store, settings, tmp_path):
    """Submitted with another agent id, the unfinished job is refused a second submission; the batch says so and
    waits for it rather than calling its line rejected."""
    client = FakeClient(store, settings, instant=False)
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 1})
    job_id = job_id_for(KEY, read_inputs(inputs)[0])
    client.submitted_earlier(job_id, {"n": 1}, finished=False, agent_id="someone-else")
    out = tmp_path / "out.jsonl"
    result, stderr = run(client, inputs, out)
    assert f"luaq: line 1: waiting for job {job_id} of an earlier run, which could not be submitted again" in stderr
    assert result.ok and not result.bad_lines and result.progress.by_source == Counter({Source.WAITED: 1})
    assert [r["job_id"] for r in results(out)] == [job_id]


def test_inserting_lines_runs_only_the_new_inputs(store, settings, tmp_path):
    """A line put before the others, or another copy of an input, is all that runs; the rest resume."""
    client = FakeClient(store, settings)
    out = tmp_path / "out.jsonl"
    run(client, write_lines(tmp_path / "in.jsonl", {"n": 1}, {"n": 2}, {"n": 3}), out)
    client.created.clear()
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 0}, {"n": 1}, {"n": 2}, {"n": 2}, {"n": 3})
    result, _ = run(client, inputs, out)
    items = read_inputs(inputs)
    assert client.created == [job_id_for(KEY, items[0]), job_id_for(KEY, items[3])]
    assert result.ok and result.progress.by_source == Counter({Source.OUT: 3, Source.RAN: 2})
    assert [r["line"] for r in results(out)[3:]] == [1, 4]  # a new result says where its input is now


def test_an_edited_line_runs_and_its_old_result_is_reported_unmatched(store, settings, tmp_path):
    client = FakeClient(store, settings)
    out = tmp_path / "out.jsonl"
    run(client, write_lines(tmp_path / "in.jsonl", {"n": 1}, {"n": 2}), out)
    result, stderr = run(client, write_lines(tmp_path / "in.jsonl", {"n": 1}, {"n": 20}), out)
    assert f"luaq: 1 result(s) in {out} match no input line" in stderr
    assert result.progress.total == 2 and result.progress.by_source == Counter({Source.OUT: 1, Source.RAN: 1})
    assert f"1 result(s) in {out} match no input line (kept, not counted)" in result.summary(out)


def test_retry_failed_runs_failed_inputs_again_and_the_last_result_counts(store, settings, tmp_path):
    """Without the flag a failed input stays failed; with it, it runs as a new job whose result is appended."""
    client = FakeClient(store, settings)
    out = tmp_path / "out.jsonl"
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 1}, {"n": 2, "fail": True})
    first, _ = run(client, inputs, out)
    assert not first.ok
    again, _ = run(client, inputs, out)
    assert not again.ok and len(client.created) == 2  # nothing ran
    assert again.summary(out).endswith(f"1 succeeded, 1 failed; 2 already in {out}, 0 ran now")

    retried, _ = run(client, inputs, out, retry_failed=True)
    failed_id = job_id_for(KEY, read_inputs(inputs)[1])
    assert client.created[2:] == [failed_id + "-r1"]
    assert [(r["line"], r["status"]) for r in results(out)] == [(1, "succeeded"), (2, "failed"), (2, "succeeded")]
    assert retried.ok
    assert retried.summary(out).endswith(
        f": 2 inputs, 2 succeeded, 0 failed; 1 already in {out}, 1 ran now; 1 retried after failing"
    )
    last, _ = run(client, inputs, out, retry_failed=True)
    assert last.ok and len(client.created) == 3 and last.progress.by_source == Counter({Source.OUT: 2})


def test_retry_failed_after_an_interrupt_resumes_the_same_retry(store, settings, tmp_path):
    """The retry number comes from --out: an interrupted retry is found again, not started a second time."""
    client = FakeClient(store, settings)
    out = tmp_path / "out.jsonl"
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 1, "always_fail": True})
    run(client, inputs, out)
    client.instant = False
    with pytest.raises(BatchInterrupted):
        run(client, inputs, out, retry_failed=True, should_stop=lambda: len(client.created) == 2,
            sleep=lambda seconds: None)  # fmt: skip
    job_id = job_id_for(KEY, read_inputs(inputs)[0])
    assert client.created == [job_id, job_id + "-r1"] and len(results(out)) == 1

    result, _ = run(client, inputs, out, retry_failed=True)
    assert client.created == [job_id, job_id + "-r1"]  # waited for, not submitted again
    assert result.progress.by_source == Counter({Source.WAITED: 1}) and result.progress.retries == 1
    run(client, inputs, out, retry_failed=True)
    assert client.created[-1] == job_id + "-r2"  # -r1 is in --out now, and failed too
    assert [r["job_id"] for r in results(out)] == [job_id, job_id + "-r1", job_id + "-r2"]


def test_results_and_jobs_of_ids_naming_the_line_still_resume(store, settings, tmp_path):
    """An older luaq's results count for the unchanged input at their line, and its job still queued is waited
    for; a failed one is retried under a new id."""
    client = FakeClient(store, settings, instant=False)
    inputs = write_lines(tmp_path / "in.jsonl", {"n": 1}, {"n": 2, "always_fail": True}, {"n": 3}, {"n": 4},
                         {"n": 50})  # fmt: skip
    items = read_inputs(inputs)
    out = tmp_path / "out.jsonl"
    old = [(items[0], "succeeded", True), (items[1], "failed", False), (BatchInput(5, {"n": 5}), "succeeded", True)]
    out.write_text("".join(json.dumps({"job_id": line_job_id_for(KEY, i), "line": i.line, "status": status,
                                       "success": success}) + "\n" for i, status, success in old))  # fmt: skip
    queued = line_job_id_for(KEY, items[2])
    client.submitted_earlier(queued, items[2].args, finished=False)

    result, stderr = run(client, inputs, out)
    assert f"luaq: 1 result(s) in {out} match no input line" in stderr  # line 5 was edited
    assert client.created == [job_id_for(KEY, items[3]), job_id_for(KEY, items[4])]
    assert {r["job_id"]: r["line"] for r in results(out)[3:]} == {queued: 3, client.created[0]: 4,
                                                                  client.created[1]: 5}  # fmt: skip
    assert result.progress.by_source == Counter({Source.OUT: 2, Source.WAITED: 1, Source.RAN: 2})

    client.instant = True
    retried, _ = run(client, inputs, out, retry_failed=True)
    assert client.created[2:] == [job_id_for(KEY, items[1], retry=1)]
    assert retried.progress.by_source == Counter({Source.OUT: 4, Source.RAN: 1})


def test_the_summary_breaks_failures_down_only_when_that_says_more():
    plain = BatchResult(Progress(total=3, succeeded=1, failed=2, by_status={"failed": 2}), 1.0, [])
    assert "3 inputs, 1 succeeded, 2 failed;" in plain.summary(Path("out.jsonl"))
    mixed = BatchResult(Progress(total=3, succeeded=1, failed=2, by_status={"failed": 1, "lost": 1}), 1.0, [])
    assert "3 inputs, 1 succeeded, 2 failed (1 failed, 1 lost);" in mixed.summary(Path("out.jsonl"))


def test_progress_redraws_one_line_on_a_terminal_and_prints_lines_otherwise():
    """On a TTY the line is redrawn in place (carriage return); elsewhere plain lines at most every interval."""
    now = [100.0]
    progress = Progress(total=10, started=90.0, succeeded=4, failed=1, running=3)
    tty = io.StringIO()
    display = ProgressDisplay(tty, is_tty=True, clock=lambda: now[0])
    display.update(progress)
    assert tty.getvalue() == "\r\x1b[2Kdone 5/10  failed 1  running 3  0.5 jobs/s  ETA 10s"
    display.clear()
    assert tty.getvalue().endswith("\r\x1b[2K")

    plain = io.StringIO()
    display = ProgressDisplay(plain, is_tty=False, plain_interval=5.0, clock=lambda: now[0])
    display.update(progress)
    now[0] += 1
    display.update(progress)  # too soon: nothing
    now[0] += 5
    display.update(progress)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("luaq: batch: done 5/10") for line in lines)
    assert "\r" not in plain.getvalue()
