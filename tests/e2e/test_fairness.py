"""Fairness between agents, with real workers: one agent's big batch does not hold back
another agent's single job, and no agent runs more than its quota at once."""

from __future__ import annotations

import time

from tests.conftest import wait_until


def started_at(client, job_id: str) -> float | None:
    record = client.get(job_id)
    return None if record.started_at is None else record.started_at / 1000


def test_a_single_job_starts_within_seconds_behind_another_agents_thousand(workers, client):
    """Agent A queues 1,000 jobs, then agent B one: B's job starts within a few seconds,
    long before A's batch (which takes over a minute here) is through."""
    workers.start(1, 4)
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)  # the worker is up
    batch = [client.submit({"script": "sleep(0.25) return job.args.n", "args": {"n": n}, "agent_id": "agent-a"})
             .job_id for n in range(1000)]  # fmt: skip
    submitted = time.time()
    single = client.submit({"script": "return 'b'", "agent_id": "agent-b"}).job_id
    envelope = client.wait(single, timeout=30)
    assert envelope["status"] == "succeeded" and envelope["result"] == ["b"]
    assert started_at(client, single) - submitted < 3.0
    not_started = sum(1 for job_id in batch[-500:] if client.get(job_id).status == "queued")
    assert not_started > 400, "A's batch should still be mostly queued when B's job is done"


def test_an_agent_never_runs_more_than_its_quota(workers, client):
    """With LUAQ_AGENT_MAX_RUNNING=2 and four free slots, agent A's six jobs run two at a
    time, while agent B's job takes a free slot at once."""
    workers.start(1, 4, env={"LUAQ_AGENT_MAX_RUNNING": "2"})
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)
    batch = [client.submit({"script": "sleep(1) return 1", "agent_id": "agent-a"}).job_id for _ in range(6)]
    wait_until(lambda: sum(client.get(j).status == "running" for j in batch) == 2, timeout=20)
    single = client.submit({"script": "sleep(0.5) return 'b'", "agent_id": "agent-b"}).job_id
    wait_until(lambda: client.get(single).status == "running", timeout=5)

    spans = []
    for job_id in batch:
        envelope = client.wait(job_id, timeout=60)
        assert envelope["status"] == "succeeded"
        record = client.get(job_id)
        spans.append((record.started_at, record.finished_at))
    for moment, _ in spans:
        running = sum(1 for start, end in spans if start <= moment < end)
        assert running <= 2, spans
    assert client.wait(single, timeout=30)["result"] == ["b"]
