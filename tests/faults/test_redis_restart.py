"""Done when 3: Redis restarted mid-run. Workers reconnect on their own, every queued job
completes afterwards, and a follower that was reading through the restart sees every event
of its job exactly once (it resumes after the last event id it saw)."""

from __future__ import annotations

import threading
from dataclasses import replace

from tests.conftest import wait_until
from tests.faults.conftest import FAULT_ENV, wait_final
from worker.client import LuaqClient

SCRIPT = "for i = 1, 6 do print('step ' .. i) sleep(0.4) end return job.args.n"


def test_jobs_complete_and_a_follower_sees_each_event_once_across_a_restart(
    private_redis, fault_workers, shared_simulator
):  # private_redis first: it must outlive the workers, which stop cleanly only while it runs
    _sim, base_url = shared_simulator
    settings = replace(fault_workers.settings, redis_url=private_redis.url)
    fault_workers.settings = settings
    fault_workers.start(1, 4, env={**FAULT_ENV, "LUAQ_SIMULATOR_URL": base_url})
    client = LuaqClient.from_settings(settings)
    try:
        job_ids = [client.submit({"script": SCRIPT, "args": {"n": n}, "simulate": True}).job_id for n in range(10)]
        followed = job_ids[0]
        seen = []

        def follow() -> None:
            seen.extend(client.follow(followed, timeout=90))

        follower = threading.Thread(target=follow)
        follower.start()
        wait_until(lambda: any(e.type == "log" for e in seen), timeout=30, message="the first job's first log line")
        assert any(client.get(j).status == "queued" for j in job_ids), "some jobs must still be queued"
        private_redis.restart()

        envelopes = wait_final(client, job_ids, timeout=90)
        for n, job_id in enumerate(job_ids):
            assert envelopes[job_id]["status"] == "succeeded" and envelopes[job_id]["result"] == [n], envelopes[job_id]
        follower.join(30)
        stream = client.store.read_events(followed)
        assert [e.id for e in seen] == [e.id for e in stream], "the follower missed or repeated events"
        assert [e.type for e in seen].count("finished") == 1
        lines = [e.data["line"] for e in seen if e.type == "log"]
        assert lines == [f"step {i}" for i in range(1, 7)] * (lines.count("step 1")), lines
    finally:
        client.close()
