"""LuaqClient.submit_many against a real Redis with no worker running: many jobs stored in
one round trip and queued through one broker connection."""

from __future__ import annotations

import json

import pytest
import redis

import worker.client
from worker.app import PRIORITY_STEPS
from worker.client import LuaqClient, Submitted, fair_priority
from worker.job import JobRequest, SubmissionError


def queued_messages(url: str, queue: str = "luaq") -> dict[int, list[str]]:
    """The job ids waiting in each of the queue's priority lists."""
    r = redis.Redis.from_url(url, decode_responses=True)
    found = {}
    for step in PRIORITY_STEPS:
        name = queue if step == 0 else f"{queue}\x06\x16{step}"
        found[step] = [json.loads(m)["headers"]["id"] for m in r.lrange(name, 0, -1)]
    return found


@pytest.fixture
def client(real_settings):
    client = LuaqClient.from_settings(real_settings)
    yield client
    client.close()


def test_many_jobs_are_stored_and_queued_with_their_fair_priority(client, real_settings):
    submissions = [{"script": "return job.args.n", "args": {"n": n}, "agent_id": "a", "job_id": f"many-{n}"}
                   for n in range(40)]  # fmt: skip
    results = client.submit_many(submissions)

    assert results == [Submitted(f"many-{n}", created=True) for n in range(40)]
    for n in (0, 39):
        record = client.get(f"many-{n}")
        assert record.status.value == "queued" and record.request["args"] == {"n": n}
    queued = queued_messages(real_settings.redis_url)
    # The n-th job of agent a (backlog n + 1) is queued where submit() would have put it.
    for n in range(40):
        assert f"many-{n}" in queued[fair_priority(None, n + 1)]
    assert sum(len(ids) for ids in queued.values()) == 40


def test_a_bad_submission_is_rejected_alone_and_a_known_id_runs_nothing_new(client, real_settings):
    client.submit({"script": "return 0", "job_id": "exists"})
    results = client.submit_many([
        {"script": "return 1", "job_id": "fine-1"},
        {"script": "return 2", "bogus": True},
        {"script": "return 0", "job_id": "exists"},  # the same submission again: that job
        {"script": "return 1", "job_id": "fine-1"},  # the same id twice in one call
        {"script": ""},
        {"script": "return 3", "job_id": "exists"},  # another submission under a known id
    ])  # fmt: skip

    assert results[0] == Submitted("fine-1", created=True)
    assert isinstance(results[1], SubmissionError) and "bogus" in str(results[1])
    assert results[2] == Submitted("exists", created=False)
    assert results[3] == Submitted("fine-1", created=False)
    assert isinstance(results[4], SubmissionError)
    assert isinstance(results[5], SubmissionError) and "another submission" in str(results[5])
    queued = [job_id for ids in queued_messages(real_settings.redis_url).values() for job_id in ids]
    assert sorted(queued) == ["exists", "fine-1"]
    assert client.get("exists").request["script"] == "return 0"


def test_a_job_left_queued_without_its_message_is_sent_again_when_resubmitted(client, real_settings, monkeypatch):
    """A submitter killed between storing a job and sending its message: submitting the
    same job again (a batch resuming) sends its message, once it is old enough not to be
    a plain duplicate submission."""
    import worker.client as client_module

    request = JobRequest.from_dict({"script": "return 1", "job_id": "stranded"}, real_settings)
    client.store.create(request)  # stored, and the process died before publishing
    assert client.submit({"script": "return 1", "job_id": "stranded"}) == Submitted("stranded", created=False)
    assert all("stranded" not in ids for ids in queued_messages(real_settings.redis_url).values())  # too recent

    monkeypatch.setattr(client_module, "REPUBLISH_AFTER_SECONDS", 0.0)
    assert client.submit({"script": "return 1", "job_id": "stranded"}) == Submitted("stranded", created=False)
    queued = [job_id for ids in queued_messages(real_settings.redis_url).values() for job_id in ids]
    assert queued == ["stranded"]


def test_a_message_that_cannot_be_sent_takes_back_the_jobs_not_yet_queued(client, real_settings, monkeypatch):
    real_publish = worker.client.publish
    sent = []

    def failing_publish(app, settings, request, priority=None, *, producer=None):
        if len(sent) == 2:
            raise ConnectionError("broker gone")
        sent.append(request.job_id)
        real_publish(app, settings, request, priority, producer=producer)

    monkeypatch.setattr(worker.client, "publish", failing_publish)
    with pytest.raises(ConnectionError):
        client.submit_many([{"script": "return 1", "job_id": f"part-{n}"} for n in range(5)])

    assert sent == ["part-0", "part-1"]
    assert client.store.get("part-0") is not None and client.store.get("part-1") is not None
    assert all(client.store.get(f"part-{n}") is None for n in (2, 3, 4))
    monkeypatch.setattr(worker.client, "publish", real_publish)
    assert client.submit_many([{"script": "return 1", "job_id": "part-3"}]) == [Submitted("part-3", created=True)]
