"""`luaq batch`'s pieces without workers: inputs, job ids, the results file, the progress line."""

from __future__ import annotations

import io
import json

import pytest

from worker.batch import (
    BadLine,
    BatchError,
    BatchInput,
    Progress,
    ProgressDisplay,
    batch_key,
    job_id_for,
    load_done,
    read_inputs,
)
from worker.job import JOB_ID_PATTERN

TEMPLATE = {"script": "return job.args.n", "account": "default", "allow_writes": False, "limits": {}}


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
    key = batch_key(TEMPLATE)
    out = tmp_path / "out.jsonl"
    record = {"job_id": f"batch-{key}-1-abc", "line": 1, "status": "succeeded", "success": True,
              "output": "one\u2028two\u2029three\x85\x1c\x1d\x1e\x0b\x0c"}  # fmt: skip
    out.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert "\u2028" in out.read_text(encoding="utf-8")
    done = load_done(out, key)
    assert list(done) == [1] and done[1].success


def test_job_ids_depend_on_script_options_line_and_input():
    """The same script, line and input give the same valid job id; changing any of them changes it."""
    key = batch_key(TEMPLATE)
    same = job_id_for(batch_key(dict(TEMPLATE)), BatchInput(3, {"n": 1}))
    assert job_id_for(key, BatchInput(3, {"n": 1})) == same
    assert JOB_ID_PATTERN.fullmatch(same)
    assert job_id_for(key, BatchInput(4, {"n": 1})) != same
    assert job_id_for(key, BatchInput(3, {"n": 2})) != same
    assert batch_key({**TEMPLATE, "script": "return 2"}) != key
    assert batch_key({**TEMPLATE, "account": "work"}) != key
    assert batch_key({**TEMPLATE, "agent_id": "someone"}) == key  # who submits does not change the job


def test_results_file_partial_last_line_is_dropped(tmp_path):
    """A result cut off mid-write by a kill is removed, so that line runs again."""
    key = batch_key(TEMPLATE)
    out = tmp_path / "out.jsonl"
    whole = json.dumps({"job_id": f"batch-{key}-1-abc", "line": 1, "status": "succeeded", "success": True})
    out.write_text(whole + "\n" + '{"job_id": "batch-' + key + "-2-")
    done = load_done(out, key)
    assert list(done) == [1] and done[1].success
    assert out.read_text() == whole + "\n"


def test_results_of_another_batch_are_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"job_id": "batch-0000000000000000-1-abc", "line": 1}) + "\n")
    with pytest.raises(BatchError, match="another batch"):
        load_done(out, batch_key(TEMPLATE))


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
