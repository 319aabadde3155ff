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


def test_a_call_that_never_returns_ends_at_the_wall_clock_and_the_process_goes_on(workers, client,
                                                                                   trickling_upstream):  # fmt: skip
    """A job whose call never comes back ends limit_exceeded (wall_clock) at its wall clock:
    the sandbox gives up on the call. Its process is not replaced: the next job runs there."""
    workers.start(count=1, concurrency=1, env={"LUAQ_SIMULATE": "1", "LUAQ_SIMULATOR_URL": trickling_upstream})
    first = client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)  # the worker is up
    started = time.monotonic()
    stuck = client.submit(
        {"script": "return app.integrations.replicate.get_account({})", "limits": {"wall_clock_seconds": 1}}
    ).job_id
    envelope = client.wait(stuck, timeout=60)
    took = time.monotonic() - started
    assert envelope["status"] == "limit_exceeded", envelope
    assert envelope["error"]["limit"] == "wall_clock"
    assert "abandoned" in envelope["integration_calls"][0]["error"]
    assert took < 1 + 2, f"took {took:.1f} s"
    after = client.wait(client.submit({"script": "return ('ok'):upper()"}).job_id, timeout=60)
    assert after["result"] == ["OK"]
    assert after["meta"]["worker"] == first["meta"]["worker"], "the same process goes on"
    assert client.get(stuck).attempt == 1, "the stopped job must not run again"


# Keys made weak after setmetatable: the collector's work grows with the square of the chain,
# inside one C call (SECURITY.md, known gaps). Minutes of C, beyond any wall clock.
STUCK_IN_C = """
local mt = {}
local eph = setmetatable({}, mt)
mt.__mode = "k"
local keys = {}
for i = 1, 250000 do keys[i] = {} end
for i = 1, 249999 do eph[keys[i]] = keys[i + 1] end
local root = {keys[1]}
keys = nil
for r = 1, 30 do local junk = {} for i = 1, 100000 do junk[i] = {i} end end
return "done"
"""


def test_a_job_stuck_in_a_c_call_ends_alone_and_the_others_of_its_process_finish(workers, client):
    """One process runs a job stuck inside one C call beside four sleeping ones, two of which
    have made a write call. The watchdog records the stuck job at its wall clock plus the
    margin and drains the process: the four go on and succeed as their first attempt (the
    writers are not cut off, so nothing ends lost), then the process is replaced."""
    workers.start(1, 8)
    first = client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)  # the worker is up
    write = 'app.integrations.replicate.create_prediction({version = "replicate-version-id", input = {prompt = "x"}}) '
    others = [
        client.submit({"script": (write if n < 2 else "") + "sleep(4) return job.args.n", "args": {"n": n},
                       "allow_writes": True}).job_id
        for n in range(4)
    ]  # fmt: skip
    wait_until(lambda: all(client.get(job_id).status == "running" for job_id in others), timeout=30)
    started = time.monotonic()
    stuck = client.submit({"script": STUCK_IN_C, "limits": {"wall_clock_seconds": 1}}).job_id

    envelope = client.wait(stuck, timeout=60)
    assert envelope["status"] == "limit_exceeded" and envelope["error"]["limit"] == "wall_clock", envelope
    assert "stuck inside a single call" in envelope["error"]["message"]
    assert time.monotonic() - started < 1 + 2 + 3
    for n, job_id in enumerate(others):
        done = client.wait(job_id, timeout=60)
        assert done["status"] == "succeeded" and done["result"] == [n], done
        assert done["meta"]["attempt"] == 1 and done["meta"]["worker"] == first["meta"]["worker"], done["meta"]
    wait_until(lambda: '"exitcode": 70' in workers.logs(), timeout=30, message="the drained process to end")
    after = client.wait(client.submit({"script": "return 'next'"}).job_id, timeout=60)
    assert after["result"] == ["next"] and after["meta"]["worker"] != first["meta"]["worker"]
    assert client.get(stuck).attempt == 1, "the stuck job must not run again"


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
