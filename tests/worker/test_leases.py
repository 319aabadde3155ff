"""Attempts and leases: who may run a job, who may finish it, and how a job whose worker
vanished is found and taken over (fakeredis here; tests/e2e with real processes)."""

from dataclasses import replace

import pytest

from worker import keys
from worker.job import JobRequest
from worker.store import JobStore


@pytest.fixture
def store(fake_redis, settings):
    return JobStore(fake_redis, replace(settings, lease_seconds=30.0, max_attempts=3))


def submit(store, job_id="j"):
    store.create(JobRequest.from_dict({"script": "return 1", "job_id": job_id}, store.settings))
    return job_id


def test_begin_takes_a_queued_job_and_a_second_delivery_runs_nothing(store):
    job = submit(store)
    first = store.begin(job, "w:1")
    assert (first.state, first.attempt, first.request["script"]) == ("started", 1, "return 1")
    assert store.begin(job, "w:2").state == "busy"  # a duplicate while the lease is alive
    assert store.redis.smembers(keys.node_jobs("w:1")) == {job}
    assert [e.type for e in store.read_events(job)] == ["queued", "started"]


def test_only_the_attempt_holding_a_running_job_finishes_it(store):
    job = submit(store)
    store.begin(job, "w:1")
    store.expire_leases("w:1")
    assert store.begin(job, "w:2").attempt == 2  # taken over: the old lease ran out
    assert store.finish(job, "succeeded", {"status": "succeeded"}, 1) is False
    assert store.finish(job, "succeeded", {"status": "succeeded"}, 2) is True
    assert store.begin(job, "w:3").state == "final"
    assert not store.redis.zscore(keys.LEASES, job)
    assert not store.redis.smembers(keys.node_jobs("w:1")) and not store.redis.smembers(keys.node_jobs("w:2"))


def test_renew_keeps_held_leases_and_reports_jobs_taken_over(store):
    a, b = submit(store, "a"), submit(store, "b")
    store.begin(a, "w:1")
    store.begin(b, "w:1")
    store.redis.zadd(keys.LEASES, {a: 1, b: 1})  # both ran out meanwhile
    store.begin(b, "w:2")  # b is taken over by another worker
    assert store.renew("w:1", {a: 1, b: 1}) == [b]
    assert store.redis.zscore(keys.LEASES, a) > 1
    assert store.begin(a, "w:3").state == "busy"


def test_orphans_are_claimed_once_and_again_only_if_nobody_took_them(store):
    job = submit(store)
    store.begin(job, "w:1")
    assert store.claim_orphans() == []  # its lease is alive
    assert store.expire_leases("w:1") == [job]
    assert store.claim_orphans() == [job]
    assert store.claim_orphans() == []  # claimed: its new message is on its way
    store.redis.zadd(keys.ORPHANS, {job: 1})  # ...and nobody took it within the grace
    assert store.claim_orphans() == [job]
    assert store.begin(job, "w:2").attempt == 2  # taken over without a lease to wait for
    assert not store.redis.zscore(keys.ORPHANS, job)
    assert store.claim_orphans() == []


def test_a_job_that_loses_its_worker_every_time_is_given_up(store):
    job = submit(store)
    for attempt in (1, 2, 3):
        assert store.begin(job, f"w:{attempt}").attempt == attempt
        store.expire_leases(f"w:{attempt}")
    exhausted = store.begin(job, "w:4")
    assert (exhausted.state, exhausted.attempt, exhausted.previous_worker) == ("exhausted", 3, "w:3")


def test_an_agent_at_its_quota_is_deferred_until_one_of_its_jobs_finishes(fake_redis, settings):
    store = JobStore(fake_redis, replace(settings, agent_max_running=2))
    jobs = []
    for n in range(3):
        job_id = f"a{n}"
        store.create(JobRequest.from_dict({"script": "return 1", "job_id": job_id, "agent_id": "a"}, settings))
        jobs.append(job_id)
    store.create(JobRequest.from_dict({"script": "return 1", "job_id": "b0", "agent_id": "b"}, settings))
    assert [store.begin(j, "w:1").state for j in jobs] == ["started", "started", "deferred"]
    assert store.get("a2").status.value == "queued"  # deferred changes nothing
    assert store.begin("b0", "w:1").state == "started"  # another agent is not held back
    store.finish("a0", "succeeded", {"status": "succeeded"}, 1)
    assert store.begin("a2", "w:1").state == "started"
    assert store.redis.zcard(keys.agent_running("a")) == 2 and store.redis.zcard(keys.agent_queued("a")) == 0


def test_an_agents_backlog_is_counted_at_submission(store):
    jobs = [JobRequest.from_dict({"script": "return 1", "agent_id": "a"}, store.settings) for _ in range(3)]
    assert [(c.outcome, c.count) for c in store.create_many(jobs)] == [("created", 1), ("created", 2), ("created", 3)]
    other = JobRequest.from_dict({"script": "return 1", "agent_id": "b"}, store.settings)
    assert store.create_many([other])[0].count == 1


def test_fair_priority_pushes_a_big_backlog_back_one_step_per_doubling():
    from worker.client import fair_priority

    assert [fair_priority(None, n) for n in (1, 2, 3, 4, 7, 8, 600, 5000)] == [0, 1, 1, 2, 2, 3, 9, 9]
    assert fair_priority(5, 1) == 5 and fair_priority(5, 64) == 9
