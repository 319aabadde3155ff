"""A job stuck in one call that never returns is stopped from outside, and the worker goes on.

The sandbox stops every known C-side hazard itself, so the stuck call here is an upstream
that trickles one byte every 0.2 s: httpx's timeouts count inactivity, so the request
never times out, and the script never gets back to Lua.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import wait_until


@pytest.fixture
def trickling_upstream() -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    stop.set()
    server.close()


def test_stuck_job_ends_at_its_wall_clock_and_the_worker_goes_on(workers, client, trickling_upstream):
    """A job stuck in a call ends limit_exceeded (wall_clock) within its limit plus the margin;
    the next job on the same worker succeeds and the stuck one does not run again."""
    workers.start(count=1, concurrency=1, env={"LUAQ_SIMULATE": "1", "LUAQ_SIMULATOR_URL": trickling_upstream})
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)  # the worker is up
    started = time.monotonic()
    stuck = client.submit(
        {"script": "return app.integrations.replicate.get_account({})", "limits": {"wall_clock_seconds": 1}}
    ).job_id
    envelope = client.wait(stuck, timeout=60)
    took = time.monotonic() - started
    assert envelope["status"] == "limit_exceeded", envelope
    assert envelope["error"]["limit"] == "wall_clock"
    assert "stuck inside a single call" in envelope["error"]["message"]
    assert took < 1 + 2 + 3, f"took {took:.1f} s"
    after = client.wait(client.submit({"script": "return ('ok'):upper()"}).job_id, timeout=60)
    assert after["result"] == ["OK"]
    assert client.get(stuck).attempt == 1, "the stopped job must not run again"


def test_a_stuck_job_ends_alone_and_the_other_jobs_of_its_process_are_requeued(workers, client, trickling_upstream):
    """One process runs a stuck job beside four waiting ones. The watchdog records the stuck
    job and replaces the process; the four are not lost: each is queued again, runs as a
    second attempt and succeeds."""
    workers.start(1, 8, env={"LUAQ_SIMULATE": "1", "LUAQ_SIMULATOR_URL": trickling_upstream})
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)  # the worker is up
    others = [
        client.submit({"script": "print('attempt') sleep(4) return job.args.n", "args": {"n": n}}).job_id
        for n in range(4)
    ]
    wait_until(lambda: all(client.get(job_id).status == "running" for job_id in others), timeout=30)
    stuck = client.submit(
        {"script": "return app.integrations.replicate.get_account({})", "limits": {"wall_clock_seconds": 1}}
    ).job_id

    envelope = client.wait(stuck, timeout=60)
    assert envelope["status"] == "limit_exceeded" and envelope["error"]["limit"] == "wall_clock", envelope
    first_worker = envelope["meta"]["worker"]
    for n, job_id in enumerate(others):
        done = client.wait(job_id, timeout=90)
        assert done["status"] == "succeeded" and done["result"] == [n], done
        assert done["meta"]["attempt"] == 2, done["meta"]
        assert done["meta"]["worker"] != first_worker  # a new process ran it
        types = [event.type for event in client.follow(job_id)]
        assert types.count("started") == 2 and "requeued" in types and types.count("finished") == 1, types
    assert client.get(stuck).attempt == 1, "the stuck job must not run again"
    assert '"exitcode": 70' in workers.logs()


def test_luaq_run_stops_a_stuck_script_at_its_wall_clock(trickling_upstream, tmp_path):
    """`luaq run` runs the script in a child process and stops it at the wall clock plus the margin."""
    import json
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "REPLICATE_API_TOKEN": "r8_test_token_123",
           "REPLICATE_BASE_URL": trickling_upstream}  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "run", "--json", "--timeout", "1", "--eval",
         'print("before") return app.integrations.replicate.get_account({})'],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    took = time.monotonic() - started
    envelope = json.loads(done.stdout)
    assert done.returncode == 1
    assert envelope["status"] == "limit_exceeded" and envelope["error"]["limit"] == "wall_clock"
    assert envelope["output"] == "before"
    assert took < 1 + 2 + 3, f"took {took:.1f} s"
