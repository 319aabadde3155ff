"""The job store and results channel, on fakeredis."""

import pytest

from worker.job import JobRequest, JobStatus
from worker.store import JobNotFound


def make_request(settings, **fields):
    return JobRequest.from_dict({"script": "return 1", **fields}, settings)


def test_create_is_idempotent_on_job_id(store, settings):
    """Creating a job whose id exists changes nothing and reports False."""
    assert store.create(make_request(settings, job_id="j1")) is True
    assert store.create(make_request(settings, job_id="j1", args={"x": 1})) is False
    record = store.get("j1")
    assert record.status is JobStatus.QUEUED
    assert record.request["args"] == {}
    assert [e.type for e in store.read_events("j1")] == ["queued"]


def test_events_are_read_in_order_and_resumable(store, settings):
    """A reader resuming after an event id gets exactly the events after it."""
    store.create(make_request(settings, job_id="j2"))
    attempt = store.begin("j2", "w1").attempt
    for n in range(5):
        store.add_event("j2", "log", {"line": f"line {n}"}, attempt)
    events = store.read_events("j2")
    assert [e.type for e in events] == ["queued", "started"] + ["log"] * 5
    resumed = store.read_events("j2", events[3].id)
    assert [e.data["line"] for e in resumed] == ["line 2", "line 3", "line 4"]


def test_only_the_first_finish_wins(store, settings):
    """A second attempt cannot overwrite a final state or append a second finished event."""
    store.create(make_request(settings, job_id="j3"))
    store.begin("j3", "w1")
    assert store.finish("j3", "succeeded", {"status": "succeeded", "result": [1]}, 1) is True
    assert store.finish("j3", "failed", {"status": "failed"}, 2) is False
    record = store.get("j3")
    assert record.status is JobStatus.SUCCEEDED
    assert record.envelope["result"] == [1]
    assert [e.type for e in store.read_events("j3")].count("finished") == 1


def test_finish_publishes_to_the_global_stream(store, settings, fake_redis):
    """Every finished envelope also lands on the global finished stream."""
    store.create(make_request(settings, job_id="j4"))
    store.finish("j4", "succeeded", {"status": "succeeded"}, 1)
    entries = fake_redis.xrange("luaq:finished")
    assert [fields["job_id"] for _id, fields in entries] == ["j4"]


def test_records_and_streams_expire(store, settings, fake_redis):
    """Job records and event streams carry the configured TTL."""
    store.create(make_request(settings, job_id="j5"))
    assert 0 < fake_redis.ttl("luaq:job:j5") <= settings.job_ttl_seconds
    assert 0 < fake_redis.ttl("luaq:events:j5") <= settings.job_ttl_seconds


def test_follow_stops_at_finished(store, settings):
    """Following a finished job replays every event and stops after ``finished``."""
    store.create(make_request(settings, job_id="j6"))
    store.begin("j6", "w1")
    store.add_event("j6", "log", {"line": "hi"})
    store.finish("j6", "succeeded", {"status": "succeeded"}, 1)
    assert [e.type for e in store.follow("j6", timeout=5)] == [
        "queued",
        "started",
        "log",
        "finished",
    ]


def test_follow_unknown_job_raises(store):
    """Following a job that does not exist says so instead of waiting forever."""
    with pytest.raises(JobNotFound):
        list(store.follow("nope", timeout=1))


def test_follow_times_out_on_a_job_that_does_not_finish(store, settings):
    """A follower with a timeout gets TimeoutError when the job is still running."""
    store.create(make_request(settings, job_id="j7"))
    with pytest.raises(TimeoutError):
        list(store.follow("j7", timeout=0.3, poll_ms=50))


def test_job_ids_cannot_collide_with_other_jobs_keys(store, settings):
    """A job id that looks like another job's key suffix gets records of its own."""
    store.create(make_request(settings, job_id="k2:events"))
    assert store.create(make_request(settings, job_id="k2")) is True
    store.add_event("k2", "log", {"line": "mine"})
    assert [e.type for e in store.read_events("k2")] == ["queued", "log"]
    assert [e.type for e in store.read_events("k2:events")] == ["queued"]
