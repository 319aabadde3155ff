"""Many jobs in one worker process: a compute-heavy script does not starve the waiting
ones, and waiting costs no CPU."""

from __future__ import annotations

import os
import subprocess
import time

from tests.conftest import wait_until

BUSY = "local x = 0 for i = 1, 4e8 do x = x + 1 end return x"
TICKS = "local t = {} for i = 1, 10 do sleep(0.1) end return 'done'"


def worker_children(workers) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(workers.processes[0].pid)],
                         capture_output=True, text=True).stdout.splitlines()  # fmt: skip
    return [int(line.split()[0]) for line in out if "spawn_main" in line]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_compute_heavy_job_does_not_hold_back_a_waiting_one(workers, client):
    """Two busy loops share the process with a job that sleeps ten times 0.1 s: it ends
    in about its own 1 s, not after the loops."""
    workers.start(1, 4)
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)
    busy = [client.submit({"script": BUSY, "limits": {"instructions": 2_000_000_000}}).job_id for _ in range(2)]
    wait_until(lambda: all(client.get(job_id).status == "running" for job_id in busy), timeout=20)
    ticks = client.wait(client.submit({"script": TICKS}).job_id, timeout=60)
    assert ticks["result"] == ["done"]
    assert ticks["execution_time_ms"] < 1600, ticks["execution_time_ms"]
    assert all(client.get(job_id).status == "running" for job_id in busy), "the loops should outlast it"
    for job_id in busy:
        assert client.wait(job_id, timeout=120)["status"] == "succeeded"


def test_sleeping_jobs_cost_no_cpu(workers, client):
    """Twenty jobs sleeping 3 s in one process: from the moment all of them run until the
    first one ends, the process uses almost no CPU."""
    workers.start(1, 32)
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)
    (child,) = worker_children(workers)
    sleepers = [client.submit({"script": "sleep(3) return 1"}).job_id for _ in range(20)]
    wait_until(lambda: all(client.get(job_id).status == "running" for job_id in sleepers), timeout=20)
    before, started = cpu_seconds(child), time.monotonic()
    wait_until(lambda: any(client.get(job_id).is_final for job_id in sleepers), timeout=20)
    used, slept = cpu_seconds(child) - before, time.monotonic() - started
    assert slept > 1.5 and used < 0.3, f"{used:.2f} CPU seconds in {slept:.1f} s of sleeping"
    for job_id in sleepers:
        assert client.wait(job_id, timeout=60)["status"] == "succeeded"
