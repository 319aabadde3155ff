"""`luaq status` against a real worker: queue depth with reserved work, worker load, jobs and accounts."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import wait_until
from tests.e2e.conftest import LUAQ, luaq_env
from worker.job import JobRequest
from worker.ratelimit import RedisLimiter, parse_rates

SLOW = "sleep(3) return 1"


def test_status_shows_queue_workers_jobs_and_accounts(workers, client, e2e_settings):
    """One busy worker, two waiting jobs, a finished job with a 429 and a throttled account all show up."""
    workers.start(count=1, concurrency=1, env={"LUAQ_RATE_LIMITS": '{"work": {"create": [60, 5]}}'})
    ids = [client.submit({"script": SLOW}).job_id for _ in range(3)]
    wait_until(lambda: client.get(ids[0]).status.value == "running", timeout=30, message="the first job running")

    # A finished job that met one 429 on account "work", and that account's bucket throttled.
    store = client.store
    done = JobRequest(script="return 1", job_id="finished-with-429", account="default")
    store.create(done)
    calls = [{"account": "work", "http_status": 429, "status": "error"}, {"account": "work", "http_status": 200}]
    store.finish(done.job_id, "failed", {"job_id": done.job_id, "status": "failed", "integration_calls": calls}, 1)
    limiter = RedisLimiter(store.redis, parse_rates('{"work": {"create": [60, 5]}}'))
    for _ in range(3):
        assert limiter.try_acquire("work", "create") == 0.0
    limiter.throttled("work", "create", 30)

    env = luaq_env(e2e_settings)  # the limits shown are the worker's, not this environment's
    result = subprocess.run([*LUAQ, "status", "--json", "--timeout", "0.5"], env=env, capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)

    assert status["queues"]["luaq"] == {"waiting": 2, "reserved": 1, "total": 3}
    [worker] = status["workers"]
    assert worker["name"].startswith("luaq-") and worker["running"] == 1 and worker["concurrency"] == 1
    assert worker["load"] == 1.0
    assert status["jobs_last_hour"] == {"failed": 1}
    work = status["accounts"]["work"]
    assert work["calls_last_hour"] == 2 and work["rate_limited_429_last_hour"] == 1
    create = work["buckets"]["create"]
    assert (create["per_minute"], create["burst"]) == (60, 5)
    assert 2 <= create["burst_in_use"] <= 3
    assert 25 < create["blocked_for_seconds"] <= 30
    assert work["buckets"]["other"]["per_minute"] == 3000 and work["buckets"]["other"]["blocked_for_seconds"] == 0

    human = subprocess.run([*LUAQ, "status", "--timeout", "0.5"], env=env, capture_output=True, text=True, timeout=30)
    assert human.returncode == 0, human.stderr
    assert "WORKERS  1 answering" in human.stdout and worker["name"] in human.stdout
    assert "1 failed" in human.stdout and "blocked" in human.stdout
    assert human.stdout.splitlines()[0].split() == ["QUEUE", "WAITING", "RESERVED"]


TRIAL_LIMITS = '{"*": {"create": [6, 1], "in_flight": 5}, "default": {"daily_predictions": 8}}'
CREATE_TWO = """
for n = 1, 2 do
  app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = "cat " .. n } })
end
return 2
"""


def test_status_shows_the_limits_the_workers_enforce_not_the_shells(workers, client, e2e_settings):
    """The trial: a worker started with LUAQ_RATE_LIMITS enforces them, and a plain `luaq
    status` (no LUAQ_RATE_LIMITS of its own) shows those, with in-flight and today's count
    against the daily cap; once the worker has stopped, status says no worker announced
    limits and labels what it shows instead."""
    workers.start(count=1, concurrency=2, env={"LUAQ_RATE_LIMITS": TRIAL_LIMITS})
    done = client.wait(client.submit({"script": CREATE_TWO, "allow_writes": True}).job_id, timeout=60)
    assert done["status"] == "succeeded", done["error"]

    env = luaq_env(e2e_settings)
    assert "LUAQ_RATE_LIMITS" not in env
    result = subprocess.run([*LUAQ, "status", "--json", "--timeout", "0.5"], env=env, capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    limits = status["limits"]
    assert limits["source"] == "workers" and len(limits["workers"]) == 1 and not limits["disagreeing"]
    default = status["accounts"]["default"]
    assert (default["buckets"]["create"]["per_minute"], default["buckets"]["create"]["burst"]) == (6, 1)
    assert default["in_flight"] == {"now": 0, "cap": 5}
    assert default["daily_predictions"] == {"today": 2, "cap": 8}

    human = subprocess.run([*LUAQ, "status", "--timeout", "0.5"], env=env, capture_output=True, text=True, timeout=30)
    assert human.returncode == 0, human.stderr
    assert f"LIMITS  announced by 1 worker ({limits['workers'][0]})" in human.stdout
    row = next(line for line in human.stdout.splitlines() if line.startswith("default "))
    assert "6/min" in row and "600/min" not in row and "0/5" in row and row.endswith("2/8")

    workers.stop()  # a warm stop withdraws the announcement
    after = subprocess.run([*LUAQ, "status", "--timeout", "0.5"], env=env, capture_output=True, text=True, timeout=30)
    assert after.returncode == 0, after.stderr
    assert "LIMITS  no worker announced its limits: showing luaq's defaults (the workers' may differ)" in after.stdout
