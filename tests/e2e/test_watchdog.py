"""A script stuck inside one C call is stopped from outside, and the worker goes on."""

from __future__ import annotations

import time

STUCK = 'local s = string.rep("a", 100000) return s:find(".-.-.-.-.-b")'


def test_stuck_job_ends_at_its_wall_clock_and_the_worker_goes_on(workers, client):
    """A job stuck in one C call ends limit_exceeded (wall_clock) within its limit plus the margin;
    the next job on the same worker succeeds."""
    workers.start(count=1, concurrency=1)
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)  # the worker is up
    started = time.monotonic()
    stuck = client.submit({"script": STUCK, "limits": {"wall_clock_seconds": 1}}).job_id
    envelope = client.wait(stuck, timeout=60)
    took = time.monotonic() - started
    assert envelope["status"] == "limit_exceeded", envelope
    assert envelope["error"]["limit"] == "wall_clock"
    assert took < 1 + 2 + 3, f"took {took:.1f} s"
    after = client.wait(client.submit({"script": "return ('ok'):upper()"}).job_id, timeout=60)
    assert after["result"] == ["OK"]
    assert client.get(stuck).attempt == 1, "the stopped job must not run again"
