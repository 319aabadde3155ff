"""Spend caps through real workers: a create loop stopped at its job's cap, and an account's
daily cap (from LUAQ_RATE_LIMITS) stopping the next job, with nothing sent past either."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from api_client.simulator import Simulator, serve

pytestmark = pytest.mark.e2e

CREATE_LOOP = """
local n = 0
while true do
  app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = "cat " .. n } })
  n = n + 1
end
"""


@pytest.fixture
def shared_simulator() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(prediction_seconds=0.1, public_base_url=None)
    server = serve(sim, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield sim, server.base_url
    server.shutdown()
    server.server_close()


def test_a_create_loop_is_stopped_at_its_caps_by_a_worker(workers, client, shared_simulator):
    """Done when 4, through a worker: the job's cap (limits.predictions = 3) ends the loop with
    limit_exceeded; then the account's daily cap of 5 lets the next job create 2 more only."""
    sim, base_url = shared_simulator
    env = {"LUAQ_SIMULATE": "1", "LUAQ_SIMULATOR_URL": base_url,
           "LUAQ_RATE_LIMITS": '{"default": {"daily_predictions": 5}}'}  # fmt: skip
    workers.start(1, 1, env=env)
    capped = client.wait(client.submit({"script": CREATE_LOOP, "allow_writes": True,
                                        "limits": {"predictions": 3}}).job_id, timeout=60)  # fmt: skip
    assert capped["status"] == "limit_exceeded", capped["error"]
    assert capped["error"]["limit"] == "predictions"
    assert capped["integration_calls"][-1]["limit"] == "predictions"

    daily = client.wait(client.submit({"script": CREATE_LOOP, "allow_writes": True}).job_id, timeout=60)
    assert daily["status"] == "limit_exceeded", daily["error"]
    assert daily["error"]["limit"] == "daily_predictions"
    assert sum(call["status"] == "ok" for call in daily["integration_calls"]) == 2
    created = [r for r in sim.requests if r.route == "create_prediction" and r.status == 201]
    assert len(created) == 5
    assert '"event": "ratelimit.cap_reached"' in workers.logs()
