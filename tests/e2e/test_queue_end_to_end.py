"""Jobs through Redis and real `luaq worker` processes, read back from the results channel."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import wait_until
from tests.e2e.conftest import LUAQ, luaq_env
from worker.job import SubmissionError

ACCOUNT_JOB = """
local account = app.integrations.replicate.get_account({})
print("job " .. job.args.n .. " as " .. account.username)
return job.args.n, account.username
"""

SLOW_PRINTER = """
for i = 1, 10 do
  print("line " .. i)
  sleep(0.4)
end
return "done"
"""


def test_hundred_jobs_on_two_workers_all_succeed(workers, client):
    """100 jobs submitted from the Python client all succeed on two worker processes, each envelope right."""
    workers.start(count=2, concurrency=2)
    ids = [client.submit({"script": ACCOUNT_JOB, "args": {"n": n}, "simulate": True}).job_id for n in range(100)]
    envelopes = {job_id: client.wait(job_id, timeout=180) for job_id in ids}
    for n, job_id in enumerate(ids):
        envelope = envelopes[job_id]
        assert envelope["status"] == "succeeded", (envelope, workers.logs()[-3000:])
        assert envelope["job_id"] == job_id
        assert envelope["result"][0] == n
        assert envelope["output"] == f"job {n} as {envelope['result'][1]}"
        assert envelope["integration_calls"][0]["operation"] == "replicate.get_authenticated_account"
        assert envelope["meta"]["attempt"] == 1
    used = {envelopes[job_id]["meta"]["worker"] for job_id in ids}
    assert len(used) == 2, f"both workers should have run jobs, saw {used}"


def test_watch_shows_each_line_before_the_job_finishes(workers, client, e2e_settings):
    """`luaq watch` prints every log line of a running job while the job is still running."""
    workers.start(count=1, concurrency=1)
    job_id = client.submit({"script": SLOW_PRINTER}).job_id
    watcher = subprocess.Popen([*LUAQ, "watch", job_id, "--json"], env=luaq_env(e2e_settings),
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    seen_while_running = []
    try:
        for raw in watcher.stdout:
            event = json.loads(raw)
            if event["type"] == "log":
                status = client.get(job_id).status.value
                seen_while_running.append((event["data"]["line"], status))
            if event["type"] == "finished":
                break
        assert watcher.wait(30) == 0
    finally:
        watcher.kill()
    assert [line for line, _ in seen_while_running] == [f"line {i}" for i in range(1, 11)]
    assert all(status == "running" for _, status in seen_while_running), seen_while_running


def test_job_outlives_its_submitter_and_stays_readable(workers, e2e_settings):
    """A job whose submitter exited is still fully readable: result and every event from the first."""
    env = luaq_env(e2e_settings)
    submitted = subprocess.run([*LUAQ, "submit", "--eval", SLOW_PRINTER.replace("0.4", "0.05")],
                               env=env, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    job_id = submitted.stdout.strip()
    workers.start(count=1, concurrency=1)  # the job runs after its submitter is gone
    result = subprocess.run([*LUAQ, "result", job_id, "--wait", "--json", "--wait-timeout", "60"],
                            env=env, capture_output=True, text=True, timeout=90)  # fmt: skip
    assert result.returncode == 0, result.stderr
    envelope = json.loads(result.stdout)
    assert envelope["result"] == ["done"]
    assert envelope["output"].splitlines() == [f"line {i}" for i in range(1, 11)]
    replay = subprocess.run([*LUAQ, "watch", job_id, "--json"], env=env, capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    types = [json.loads(line)["type"] for line in replay.stdout.splitlines()]
    assert types == ["queued", "started"] + ["log"] * 10 + ["finished"]


def test_submit_wait_reports_failure_with_exit_status(workers, e2e_settings):
    """`luaq submit --wait` of a failing script prints a failed envelope and exits 1."""
    workers.start(count=1, concurrency=1)
    done = subprocess.run([*LUAQ, "submit", "--wait", "--json", "--eval", "local x = nil\nreturn x.y"],
                          env=luaq_env(e2e_settings), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    envelope = json.loads(done.stdout)
    assert envelope["status"] == "failed"
    assert envelope["error"]["line"] == 2


def test_resubmitting_a_job_id_runs_nothing_new(workers, client):
    """Submitting an existing job_id returns that job and does not run it again; the
    same id with another submission is refused."""
    workers.start(count=1, concurrency=1)
    first = client.submit({"script": "return 1", "job_id": "same-id"})
    client.wait(first.job_id, timeout=60)
    again = client.submit({"script": "return 1", "job_id": "same-id"})
    assert (first.created, again.created) == (True, False)
    with pytest.raises(SubmissionError, match="another submission"):
        client.submit({"script": "return 2", "job_id": "same-id"})
    assert client.get("same-id").envelope["result"] == [1]
    assert client.get("same-id").attempt == 1
    wait_until(lambda: client.store.redis.llen("luaq") == 0, message="queue drained")
