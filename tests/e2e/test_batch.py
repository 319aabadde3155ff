"""`luaq batch` on real workers: 500 input lines with bad ones and a resume after Ctrl-C,
retrying failed lines, inserting a line."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import redis

from tests.conftest import wait_until
from tests.e2e.conftest import LUAQ, luaq_env
from worker import keys

SCRIPT = """
sleep(0.02)
if job.args.fail then error("asked to fail on " .. job.args.n) end
return job.args.n * job.args.n
"""

BAD_LINES = {
    7: "{not json",
    100: "[1, 2, 3]",
    250: '"just a string"',
    333: '{"n": 1',
}
FAILING_LINES = {42, 420}


def write_inputs(path) -> dict[int, int]:
    """500 lines: 4 malformed, 2 whose job fails, the rest {"n": line}; returns line -> n."""
    expected, lines = {}, []
    for number in range(1, 501):
        if number in BAD_LINES:
            lines.append(BAD_LINES[number])
        elif number in FAILING_LINES:
            lines.append(json.dumps({"n": number, "fail": True}))
        else:
            lines.append(json.dumps({"n": number}))
            expected[number] = number * number
    path.write_text("\n".join(lines) + "\n")
    return expected


def read_results(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def sources(summary: str, out) -> dict[str, int]:
    """Where the summary says the results came from: {"out", "reused", "waited", "ran"}."""
    counts = {"out": f"already in {out}", "reused": "finished in an earlier run (read back)",
              "waited": "submitted by an earlier run (waited for)", "ran": "ran now"}  # fmt: skip
    found = {name: re.search(rf"(\d+) {re.escape(text)}", summary) for name, text in counts.items()}
    return {name: int(match[1]) if match else 0 for name, match in found.items()}


def test_batch_resumes_after_an_interrupt_without_running_any_input_twice(workers, e2e_settings, tmp_path):
    """Interrupted half-way and re-run, a 500-line batch yields one correct result per good line, each job run once."""
    workers.start(count=2, concurrency=3)
    script, inputs, out = tmp_path / "square.lua", tmp_path / "inputs.jsonl", tmp_path / "results.jsonl"
    script.write_text(SCRIPT)
    expected = write_inputs(inputs)
    command = [*LUAQ, "batch", str(script), str(inputs), "--out", str(out), "--concurrency", "12"]
    env = luaq_env(e2e_settings)

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: out.exists() and len(out.read_text().splitlines()) >= 248, timeout=90,
                   message="half the results")  # fmt: skip
        first.send_signal(signal.SIGINT)
        _, first_err = first.communicate(timeout=30)
    finally:
        first.kill()
    assert first.returncode == 130, first_err
    assert "run the same command again to resume" in first_err
    written_before = len(read_results(out))
    assert 248 <= written_before < 496, written_before

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stderr  # two inputs failed, four were malformed

    results = read_results(out)
    by_line = {}
    for result in results:
        assert result["line"] not in by_line, f"line {result['line']} has two results"
        by_line[result["line"]] = result
    assert set(by_line) == set(range(1, 501)) - set(BAD_LINES)
    for line, square in expected.items():
        assert by_line[line]["status"] == "succeeded", by_line[line]
        assert by_line[line]["result"] == [square]
    for line in FAILING_LINES:
        assert by_line[line]["status"] == "failed"
        assert f"asked to fail on {line}" in by_line[line]["error"]["message"]

    # No input ran twice: one job record per good line, each run once, each finished once.
    client = redis.Redis.from_url(e2e_settings.redis_url, decode_responses=True)
    try:
        job_keys = list(client.scan_iter(keys.job("batch-*"), count=1000))
        assert len(job_keys) == 496
        attempts = [int(client.hget(key, "attempt")) for key in job_keys]
        assert attempts == [1] * 496
        assert client.xlen(keys.FINISHED_STREAM) == 496
    finally:
        client.close()

    for line in BAD_LINES:
        assert f"luaq: line {line}: " in second.stderr, second.stderr
    assert "not valid JSON" in second.stderr and "must be a JSON object" in second.stderr
    summary = second.stderr.strip().splitlines()[-1]
    assert "496 inputs, 494 succeeded, 2 failed; " in summary, summary  # no "(2 failed)" after it
    counts = sources(summary, out)
    assert counts["out"] == written_before, summary
    # The jobs the first run left in flight (at most --concurrency) were read back or waited for, not run again.
    assert counts["reused"] + counts["waited"] <= 12, summary
    assert counts["reused"] + counts["waited"] + counts["ran"] == 496 - written_before, summary
    assert "4 malformed line(s) skipped: 7, 100, 250, 333" in summary

    # A third run has nothing left to do.
    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert third.returncode == 1  # the two failures are still there
    assert f"496 already in {out}, 0 ran now" in third.stderr
    assert len(read_results(out)) == 496


def test_batch_refuses_results_of_another_script(workers, e2e_settings, tmp_path):
    """--out holding another batch's results is refused, not mixed in."""
    inputs, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text('{"n": 1}\n')
    (tmp_path / "a.lua").write_text("return job.args.n")
    (tmp_path / "b.lua").write_text("return job.args.n + 1")
    env = luaq_env(e2e_settings)
    workers.start(count=1, concurrency=1)
    ok = subprocess.run([*LUAQ, "batch", str(tmp_path / "a.lua"), str(inputs), "--out", str(out)],
                        env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    other = subprocess.run([*LUAQ, "batch", str(tmp_path / "b.lua"), str(inputs), "--out", str(out)],
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert other.returncode == 2
    assert "holds results of another batch" in other.stderr


RETRIED_SCRIPT = """
if job.args.fail and not string.find(job.id, "%-r%d+$") then error("only a retry succeeds") end
return job.args.n
"""


def test_retry_failed_runs_failed_lines_again_as_new_jobs(workers, e2e_settings, tmp_path):
    """--retry-failed gives each failed line a new job whose result is appended and counts; without it nothing runs."""
    workers.start(count=1, concurrency=4)
    script, inputs, out = tmp_path / "retried.lua", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    script.write_text(RETRIED_SCRIPT)
    inputs.write_text("".join(json.dumps({"n": n, "fail": n in (5, 12)}) + "\n" for n in range(1, 21)))
    command = [*LUAQ, "batch", str(script), str(inputs), "--out", str(out), "--concurrency", "8"]
    env = luaq_env(e2e_settings)

    def batch(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *extra], env=env, capture_output=True, text=True, timeout=90)

    first = batch()
    assert first.returncode == 1, first.stderr
    assert "20 inputs, 18 succeeded, 2 failed; 20 ran now" in first.stderr
    plain = batch()
    assert plain.returncode == 1 and f"18 succeeded, 2 failed; 20 already in {out}, 0 ran now" in plain.stderr

    retried = batch("--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert (f"20 inputs, 20 succeeded, 0 failed; 18 already in {out}, 2 ran now; "
            f"2 retried after failing") in retried.stderr  # fmt: skip
    results = read_results(out)
    assert len(results) == 22
    last = {result["line"]: result for result in results}  # the last result of each line counts
    assert all(result["status"] == "succeeded" for result in last.values())
    assert [(r["line"], r["status"], r["job_id"][-3:]) for r in results[20:]] == [(5, "succeeded", "-r1"),
                                                                                  (12, "succeeded", "-r1")]  # fmt: skip

    again = batch("--retry-failed")
    assert again.returncode == 0 and f"20 already in {out}, 0 ran now" in again.stderr
    client = redis.Redis.from_url(e2e_settings.redis_url, decode_responses=True)
    try:
        assert len(list(client.scan_iter(keys.job("batch-*"), count=1000))) == 22
    finally:
        client.close()


def test_a_line_inserted_at_the_top_is_the_only_one_that_runs(workers, e2e_settings, tmp_path):
    """Job ids do not name the line: moving every input one line down runs none of them again."""
    workers.start(count=1, concurrency=4)
    script, inputs, out = tmp_path / "square.lua", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    script.write_text(SCRIPT)
    lines = [json.dumps({"n": n}) for n in range(1, 11)]
    inputs.write_text("\n".join(lines) + "\n")
    command = [*LUAQ, "batch", str(script), str(inputs), "--out", str(out)]
    env = luaq_env(e2e_settings)
    assert subprocess.run(command, env=env, capture_output=True, text=True, timeout=90).returncode == 0

    inputs.write_text("\n".join([json.dumps({"n": 0}), *lines]) + "\n")
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
    assert second.returncode == 0, second.stderr
    assert f"11 inputs, 11 succeeded, 0 failed; 10 already in {out}, 1 ran now" in second.stderr
    new = read_results(out)[10:]
    assert [(r["line"], r["result"]) for r in new] == [(1, [0])]


def test_jobs_an_earlier_run_left_without_their_message_run_when_the_batch_resumes(workers, e2e_settings, tmp_path):
    """A job stored but never sent to the queue (its submitter killed in between) gets its message from the next run."""
    script, inputs, out = tmp_path / "square.lua", tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    script.write_text(SCRIPT)
    inputs.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(1, 7)))
    command = [*LUAQ, "batch", str(script), str(inputs), "--out", str(out)]
    env = luaq_env(e2e_settings)
    client = redis.Redis.from_url(e2e_settings.redis_url, decode_responses=True)

    def stored() -> list[str] | None:
        found = list(client.scan_iter(keys.job("batch-*")))
        return found if len(found) == 6 else None

    try:
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:  # no worker yet: the jobs stay queued
            job_keys = wait_until(stored, timeout=30, message="six stored jobs")
            first.send_signal(signal.SIGINT)
            first.communicate(timeout=30)
        finally:
            first.kill()
        assert first.returncode == 130
        # As if the batch had been killed between storing each job and sending its message, long enough ago.
        queues = [k for k in client.scan_iter("luaq*") if client.type(k) == "list"]
        assert queues and client.delete(*queues)
        for key in job_keys:
            client.hset(key, "created_at", int(client.hget(key, "created_at")) - 60_000)

        workers.start(count=1, concurrency=6)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert "6 inputs, 6 succeeded, 0 failed; 6 submitted by an earlier run (waited for), 0 ran now" in second.stderr
        assert sorted(r["result"][0] for r in read_results(out)) == [n * n for n in range(1, 7)]
    finally:
        client.close()
