"""Done when 1: a worker process (or a whole `luaq worker`) killed mid-job loses nothing and
repeats no write: every job reaches one final state; the read-only ones run again; the ones
that had written end `lost` with their journal; no prediction is created twice."""

from __future__ import annotations

import os
import signal

from tests.conftest import wait_until
from tests.faults.conftest import FAULT_ENV, creates_by_prompt, kill_group, wait_final, worker_pid

READER = 'print("reading") sleep(2.5) return app.integrations.replicate.get_account({}).type'
WRITER = """
local p = app.integrations.replicate.create_prediction({version = "replicate-version-id", input = {prompt = job.args.tag}})
print("created " .. p.id)
sleep(2.5)
return p.id
"""


def submit_mix(client, tag: str) -> tuple[list[str], list[str]]:
    readers = [client.submit({"script": READER, "simulate": True}).job_id for _ in range(3)]
    writers = [
        client.submit({"script": WRITER, "simulate": True, "allow_writes": True, "args": {"tag": f"{tag}-{n}"}}).job_id
        for n in range(3)
    ]
    return readers, writers


def wait_mid_job(client, readers: list[str], writers: list[str]) -> None:
    """Every job running, and every writer past its create (journaled as done)."""
    wait_until(lambda: all(client.get(j).status == "running" for j in readers + writers), timeout=30,
               message="all jobs running")  # fmt: skip
    wait_until(lambda: all(any(e["state"] == "ok" for e in client.store.journal(j)) for j in writers), timeout=30,
               message="every writer to have created its prediction")  # fmt: skip


def check_outcome(client, sim, readers: list[str], writers: list[str], tag: str) -> None:
    envelopes = wait_final(client, readers + writers, timeout=60)
    for job_id in readers:
        envelope = envelopes[job_id]
        assert envelope["status"] == "succeeded", envelope
        assert envelope["meta"]["attempt"] == 2, envelope["meta"]
    for job_id in writers:
        envelope = envelopes[job_id]
        assert envelope["status"] == "lost" and envelope["error"]["type"] == "lost", envelope
        [entry] = envelope["journal"]
        assert entry["operation"] == "replicate.create_prediction" and entry["attempt"] == 1
        assert entry["prediction_id"] and entry["state"] == "ok"
        # exactly one finished event per job
        assert [e.type for e in client.follow(job_id)].count("finished") == 1
    created = creates_by_prompt(sim)
    assert {f"{tag}-{n}": created[f"{tag}-{n}"] for n in range(3)} == {f"{tag}-{n}": 1 for n in range(3)}, created
    assert max(created.values()) == 1, "a prediction was created twice"


def test_killing_a_worker_process_mid_job(fault_workers, fault_client, shared_simulator):
    """SIGKILL of the one process running six jobs: its supervisor takes them back at once."""
    sim, base_url = shared_simulator
    fault_workers.start(1, 8, env={**FAULT_ENV, "LUAQ_SIMULATOR_URL": base_url})
    readers, writers = submit_mix(fault_client, "child")
    wait_mid_job(fault_client, readers, writers)
    pids = {worker_pid(fault_client, j) for j in readers + writers}
    assert len(pids) == 1
    os.kill(pids.pop(), signal.SIGKILL)
    check_outcome(fault_client, sim, readers, writers, "child")


def test_killing_the_whole_worker_mid_job(fault_workers, fault_client, shared_simulator):
    """SIGKILL of the supervisor and its processes: another worker finds the expired leases."""
    sim, base_url = shared_simulator
    env = {**FAULT_ENV, "LUAQ_SIMULATOR_URL": base_url}
    fault_workers.start(1, 8, env=env)
    readers, writers = submit_mix(fault_client, "whole")
    wait_mid_job(fault_client, readers, writers)
    kill_group(fault_workers.processes[0])
    fault_workers.start(1, 8, env=env)
    check_outcome(fault_client, sim, readers, writers, "whole")
