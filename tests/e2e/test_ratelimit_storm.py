"""A 429 storm on one account pauses every worker for that account, and no worker for another."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from api_client.simulator import RateLimits, Simulator, serve

CREATE = """
local p = app.integrations.replicate.create_model_prediction({
  model_owner = "black-forest-labs", model_name = "flux-schnell", input = { prompt = "x" },
})
return p.status
"""


@pytest.fixture
def shared_simulator() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(prediction_seconds=0.1, public_base_url=None)
    server = serve(sim, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield sim, server.base_url
    server.shutdown()
    server.server_close()


def test_a_429_storm_pauses_all_workers_for_that_account_only(workers, client, shared_simulator):
    """After Replicate answers 429 for account default, no worker sends for that account until
    the pause is over; account b's jobs go straight through meanwhile."""
    sim, base_url = shared_simulator
    # Account "default" (user luaq-sim) may create one prediction, then one every 3 s.
    sim.set_rate_limits(RateLimits(create_per_minute=20, create_burst=1), user="luaq-sim")
    env = {"LUAQ_SIMULATE": "1", "LUAQ_SIMULATOR_URL": base_url, "REPLICATE_API_TOKEN_B": "r8_unused_b"}
    workers.start(2, 2, env=env)
    client.wait(client.submit({"script": "return 0"}).job_id, timeout=60)  # the workers are up
    started = time.monotonic()
    throttled, free = [], []
    for _ in range(4):  # new jobs keep arriving while the account is paused
        throttled.append(client.submit({"script": CREATE, "allow_writes": True}).job_id)
        free.append(client.submit({"script": CREATE, "allow_writes": True, "account": "b"}).job_id)
        time.sleep(0.3)  # pacing the arrivals, not waiting for anything
    free_done = [client.wait(job_id, timeout=60) for job_id in free]
    free_took = time.monotonic() - started
    throttled_done = [client.wait(job_id, timeout=90) for job_id in throttled]
    assert all(e["status"] == "succeeded" for e in free_done + throttled_done), (free_done, throttled_done)
    assert free_took < 4, f"account b waited {free_took:.1f} s behind account default's throttling"
    creates = [r for r in sim.requests if r.route == "create_model_prediction"]
    by_user = {user: [r for r in creates if r.user == user] for user in ("luaq-sim", "luaq-sim-b")}
    assert sum(r.status == 201 for r in by_user["luaq-sim"]) == 4, "each throttled job created one prediction"
    assert sum(r.status == 429 for r in by_user["luaq-sim-b"]) == 0
    throttled_at = [r.time for r in by_user["luaq-sim"] if r.status == 429]
    assert throttled_at, "the storm never happened"
    # Once a 429 came back, no worker sent for that account until the pause was over
    # (requests already in flight when it came back may land within 0.1 s).
    for t in throttled_at:
        during = [r.time - t for r in by_user["luaq-sim"] if t + 0.1 < r.time < t + 0.8]
        assert not during, f"requests {during} s after a 429: the workers did not share the pause"
