"""Done when 2: a job running longer than the broker's visibility timeout runs exactly once.

Redis hands the unacknowledged message to a worker again once the visibility timeout (3 s
here) passes; that delivery finds the job held by a live attempt and runs nothing."""

from __future__ import annotations

from tests.conftest import wait_until
from tests.faults.conftest import FAULT_ENV, creates_by_prompt, wait_final

SCRIPT = """
app.integrations.replicate.create_prediction({version = "replicate-version-id", input = {prompt = "once"}})
sleep(7)
return "done"
"""


def test_a_job_outliving_the_visibility_timeout_runs_once(fault_workers, fault_client, shared_simulator):
    sim, base_url = shared_simulator
    fault_workers.start(1, 4, env={**FAULT_ENV, "LUAQ_SIMULATOR_URL": base_url, "LUAQ_VISIBILITY_TIMEOUT": "3"})
    job_id = fault_client.submit({"script": SCRIPT, "simulate": True, "allow_writes": True}).job_id
    wait_until(lambda: '"reason": "busy"' in fault_workers.logs(), timeout=20,
               message="the message to be delivered again while the job runs")  # fmt: skip
    envelope = wait_final(fault_client, [job_id], timeout=30)[job_id]
    assert envelope["status"] == "succeeded" and envelope["meta"]["attempt"] == 1, envelope
    types = [event.type for event in fault_client.follow(job_id)]
    assert types.count("started") == 1 and types.count("finished") == 1, types
    assert fault_client.get(job_id).attempt == 1
    assert creates_by_prompt(sim)["once"] == 1
