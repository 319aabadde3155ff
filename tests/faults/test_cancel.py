"""Done when 4: `luaq cancel` stops a queued job before it starts and a running one within
a second, ending `cancelled` with its output so far; --cancel-predictions also cancels the
predictions it created that are still running."""

from __future__ import annotations

import json
import subprocess
import time

from tests.conftest import wait_until
from tests.e2e.conftest import LUAQ, luaq_env
from tests.faults.conftest import FAULT_ENV, wait_final

BUSY = 'print("spinning") local i = 0 while true do i = i + 1 end'
WAITING = """
local p = app.integrations.replicate.create_prediction({version = "replicate-version-id", input = {prompt = "slow"}})
print("waiting")
return app.integrations.replicate.wait({prediction = p})
"""


def test_cancel_queued_and_running_jobs(fault_workers, fault_client, shared_simulator, fault_settings):
    sim, base_url = shared_simulator
    sim.prediction_seconds = 60
    fault_workers.start(1, 2, env={**FAULT_ENV, "LUAQ_SIMULATOR_URL": base_url})
    spinning = fault_client.submit({"script": BUSY}).job_id
    waiting = fault_client.submit({"script": WAITING, "simulate": True, "allow_writes": True}).job_id
    wait_until(lambda: all(fault_client.get(j).status == "running" for j in (spinning, waiting)), timeout=30,
               message="both jobs running")  # fmt: skip
    queued = fault_client.submit({"script": "return 'ran'"}).job_id  # no free slot: it waits

    asked = time.monotonic()
    done = fault_client.cancel(queued)
    assert (done.outcome, done.status) == ("cancelled", "cancelled")
    assert time.monotonic() - asked < 1.0

    wait_until(lambda: fault_client.store.journal(waiting), timeout=10, message="the prediction to be created")
    asked = time.monotonic()
    done = fault_client.cancel(spinning)
    latency = time.monotonic() - asked
    assert (done.outcome, done.status) == ("cancelled", "cancelled"), done
    assert latency < 1.0, f"cancelled after {latency:.2f} s"
    envelope = fault_client.get(spinning).envelope
    assert envelope["error"]["type"] == "cancelled" and envelope["output"] == "spinning", envelope

    asked = time.monotonic()
    cli = subprocess.run([*LUAQ, "cancel", waiting, "--cancel-predictions", "--json"], env=luaq_env(fault_settings),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    assert report["outcome"] == "cancelled" and time.monotonic() - asked < 5
    [prediction] = report["cancelled_predictions"]
    assert prediction["status"] == "canceled"
    assert any(r.route == "cancel_prediction" and prediction["id"] in r.path for r in list(sim.requests))
    envelope = fault_client.get(waiting).envelope
    assert envelope["output"] == "waiting" and envelope["meta"]["cancelled_predictions"] == [prediction]

    # The queued job's delivery ran nothing; the worker goes on with new jobs.
    after = fault_client.submit({"script": "return 'next'"}).job_id
    assert wait_final(fault_client, [after])[after]["result"] == ["next"]
    assert fault_client.get(queued).attempt == 0
    assert [e.type for e in fault_client.follow(queued)] == ["queued", "finished"]
