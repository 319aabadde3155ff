"""Redelivery, the write journal, cancellation and rejection, without Celery (fakeredis;
tests/faults has the same with real worker processes)."""

import json
import threading
import time
from dataclasses import replace

import pytest

from worker import keys
from worker.job import JobRequest, SubmissionError
from worker.runner import WorkerDeps, run_job
from worker.watchdog import Watchdog

CREATE = 'return app.integrations.replicate.create_prediction({version = "replicate-version-id", input = {prompt = "cat"}}).id'


@pytest.fixture
def deps(store, settings):
    return WorkerDeps(settings=replace(settings, lease_seconds=30.0), store=store, worker_name="w:1")


def submit(store, settings, **fields):
    request = JobRequest.from_dict({"simulate": True, **fields}, settings)
    store.create(request)
    return request.job_id


def lose_worker(store, job_id, worker):
    """The attempt's worker dies mid-job: it began, and its lease ran out."""
    store.begin(job_id, worker)
    store.expire_leases(worker)


def test_write_calls_are_journaled_with_their_attempt_and_prediction_id(store, settings, deps):
    job_id = submit(store, settings, script=CREATE, allow_writes=True)
    envelope = run_job(job_id, deps)
    assert envelope["status"] == "succeeded", envelope
    [entry] = store.journal(job_id)
    assert entry["attempt"] == 1 and entry["operation"] == "replicate.create_prediction"
    assert entry["state"] == "ok" and entry["prediction_id"] == envelope["result"][0]
    assert entry["args"]["input"] == {"prompt": "cat"}


def test_reads_are_not_journaled_and_a_read_only_job_simply_runs_again(store, settings, deps):
    job_id = submit(store, settings, script="return app.integrations.replicate.get_account({}).type")
    lose_worker(store, job_id, "w:0")
    envelope = run_job(job_id, deps)
    assert envelope["status"] == "succeeded" and envelope["meta"]["attempt"] == 2
    assert store.journal(job_id) == []


def test_a_job_whose_lost_attempt_wrote_ends_lost_with_its_journal(store, settings, deps):
    """The takeover sees the journal in BEGIN and does not run the script again."""
    job_id = submit(store, settings, script=CREATE, allow_writes=True)
    store.begin(job_id, "w:0")
    store.journal_append(job_id, {"attempt": 1, "operation": "replicate.create_prediction", "state": "sent"}, 1)
    store.expire_leases("w:0")
    envelope = run_job(job_id, deps)
    assert envelope["status"] == "lost" and envelope["error"]["type"] == "lost"
    assert "write call" in envelope["error"]["message"] and "on_redelivery" in envelope["error"]["message"]
    assert envelope["journal"][0]["operation"] == "replicate.create_prediction"
    assert len(store.journal(job_id)) == 1, "nothing was sent again"
    assert store.begin(job_id, "w:2").state == "final"


def test_on_redelivery_rerun_runs_the_job_again_despite_its_writes(store, settings, deps):
    job_id = submit(store, settings, script=CREATE, allow_writes=True, on_redelivery="rerun")
    store.begin(job_id, "w:0")
    store.journal_append(job_id, {"attempt": 1, "operation": "replicate.create_prediction", "state": "sent"}, 1)
    store.expire_leases("w:0")
    envelope = run_job(job_id, deps)
    assert envelope["status"] == "succeeded" and envelope["meta"]["attempt"] == 2
    assert [entry["attempt"] for entry in store.journal(job_id)] == [1, 2]


def test_two_deliveries_of_a_job_that_wrote_decide_once(store, settings):
    """BEGIN takes the job while deciding: a second delivery finds it busy."""
    job_id = submit(store, settings, script=CREATE, allow_writes=True)
    store.begin(job_id, "w:0")
    store.journal_append(job_id, {"attempt": 1, "state": "sent"}, 1)
    store.expire_leases("w:0")
    assert store.begin(job_id, "w:1").state == "wrote"
    assert store.begin(job_id, "w:2").state == "busy"


def test_cancelling_a_queued_job_finishes_it_and_its_delivery_runs_nothing(store, settings, deps):
    job_id = submit(store, settings, script="return 1")
    outcome, _ = store.cancel(job_id, envelope={"status": "cancelled"})
    assert outcome == "cancelled"
    assert store.get(job_id).status == "cancelled"
    assert run_job(job_id, deps) is None
    assert [e.type for e in store.read_events(job_id)] == ["queued", "finished"]
    assert store.cancel(job_id, envelope={})[0] == "final"


def test_cancelling_a_running_job_flags_it_for_its_worker(store, settings):
    job_id = submit(store, settings, script="return 1")
    store.begin(job_id, "w:1")
    assert store.cancel(job_id, cancel_predictions=True, envelope={}) == ("requested", None)
    assert store.cancel_requests([job_id, "other"]) == {job_id}
    assert store.cancel_requested(job_id) == "predictions"
    assert store.finish(job_id, "cancelled", {"status": "cancelled"}, 1)
    assert store.cancel_requests([job_id]) == set()


def test_a_running_script_stops_within_a_second_of_its_cancel(store, settings):
    """The watchdog learns of the cancel on its next tick; the sandbox stops the sleep."""
    dog = Watchdog(store, "w:1", tick=0.05)
    deps = WorkerDeps(settings=settings, store=store, worker_name="w:1", watchdog=dog)
    job_id = submit(store, settings, script='print("before") sleep(30) print("after")')
    result: list[dict] = []
    thread = threading.Thread(target=lambda: result.append(run_job(job_id, deps)))
    thread.start()
    deadline = time.monotonic() + 10
    while store.get(job_id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    asked = time.monotonic()
    store.cancel(job_id, envelope={})
    thread.join(10)
    took = time.monotonic() - asked
    envelope = result[0]
    assert envelope["status"] == "cancelled" and envelope["error"]["type"] == "cancelled", envelope
    assert envelope["output"] == "before"
    assert took < 1.0, took
    assert store.get(job_id).status == "cancelled"


def test_cancel_predictions_cancels_the_ones_still_running(store, settings, deps):
    """A job cancelled (here: before its takeover ran it) cancels what its journal shows."""
    settings = replace(settings, simulator_prediction_seconds=60)
    deps = replace(deps, settings=settings)
    job_id = submit(store, settings, allow_writes=True, script=CREATE)
    envelope = run_job(job_id, deps)
    store.redis.hset(keys.job(job_id), "status", "running")  # pretend it is still running
    store.cancel(job_id, cancel_predictions=True, envelope={})
    store.redis.hset(keys.job(job_id), "status", "queued")
    envelope = run_job(job_id, deps)
    assert envelope["status"] == "cancelled"
    [report] = envelope["meta"]["cancelled_predictions"]
    assert report["status"] == "canceled" and report["id"] == store.journal(job_id)[0]["prediction_id"]


def test_a_stored_request_that_fails_validation_is_rejected_by_the_worker(store, settings, deps):
    job_id = submit(store, settings, script="return 1")
    stored = json.loads(store.redis.hget(keys.job(job_id), "request"))
    store.redis.hset(keys.job(job_id), "request", json.dumps({**stored, "args": [1, 2], "surprise": 1}))
    envelope = run_job(job_id, deps)
    assert envelope["status"] == "rejected" and envelope["error"]["type"] == "rejected"
    assert "unknown field(s) in submission: surprise" in envelope["error"]["message"]
    store.redis.hset(keys.job(submit(store, settings, script="return 1", job_id="j2")), "request", "{not json")
    assert "not valid JSON" in run_job("j2", deps)["error"]["message"]


def test_on_redelivery_must_be_lost_or_rerun(settings):
    with pytest.raises(SubmissionError, match="on_redelivery must be 'lost' or 'rerun'"):
        JobRequest.from_dict({"script": "return 1", "on_redelivery": "again"}, settings)


def test_the_journal_takes_a_write_only_from_the_attempt_holding_the_job(store, settings):
    """Fencing: once another attempt took the job over, or the lease ran out, or the job
    ended, an older attempt's write is refused before it is recorded (so never sent)."""
    from worker.store import NotHeld

    job_id = submit(store, settings, script=CREATE, allow_writes=True)
    assert store.begin(job_id, "w:0").attempt == 1
    assert store.journal_append(job_id, {"attempt": 1}, 1) == 0
    store.expire_leases("w:0")  # its lease ran out: not even attempt 1 may write now
    with pytest.raises(NotHeld):
        store.journal_append(job_id, {"attempt": 1}, 1)
    assert store.begin(job_id, "w:1").attempt == 2
    with pytest.raises(NotHeld):
        store.journal_append(job_id, {"attempt": 1}, 1)
    assert store.journal_append(job_id, {"attempt": 2}, 2) == 1
    assert store.finish(job_id, "succeeded", {"status": "succeeded"}, 2)
    with pytest.raises(NotHeld):
        store.journal_append(job_id, {"attempt": 2}, 2)
    assert [entry["attempt"] for entry in store.journal(job_id)] == [1, 2]


def test_a_paused_attempt_taken_over_meanwhile_sends_no_write(store, settings, deps):
    """The attack: an attempt stops (a paused process) past its lease, another attempt
    takes the job over; when the first resumes, its create is refused and never sent."""
    from worker.providers import in_process_simulator

    simulator = in_process_simulator(settings.simulator_prediction_seconds)
    job_id = submit(store, settings, allow_writes=True, script="sleep(0.5) " + CREATE)
    outcome = []
    first = threading.Thread(target=lambda: outcome.append(run_job(job_id, deps)))
    first.start()
    deadline = time.monotonic() + 10
    while store.get(job_id).status.value != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    store.expire_leases("w:1")  # attempt 1 is "paused": its lease runs out ...
    assert store.begin(job_id, "w:2").attempt == 2  # ... and another worker takes the job over
    creates_before = sum(1 for r in simulator.requests if r.method == "POST")
    first.join(10)

    envelope = outcome[0]
    assert envelope["status"] == "failed" and "no longer holds it" in envelope["error"]["message"]
    assert sum(1 for r in simulator.requests if r.method == "POST") == creates_before
    assert store.journal(job_id) == []
    assert store.get(job_id).attempt == 2 and store.get(job_id).status.value == "running"


def test_a_create_waiting_for_its_rate_slot_when_the_job_is_cancelled_is_never_sent(store, settings):
    """The attack: cancel a job while its second create waits for the account's rate slot.
    The run stops at once; the abandoned call, once its wait is over, sends nothing, and
    its journal entry says so."""
    from tests.conftest import wait_until
    from worker.providers import in_process_simulator
    from worker.ratelimit import Rate, RedisLimiter

    simulator = in_process_simulator(settings.simulator_prediction_seconds)
    limiter = RedisLimiter(store.redis, {"*": {"create": Rate(40, 1)}})  # 1.5 s between creates
    dog = Watchdog(store, "w:1", tick=0.05)
    deps = WorkerDeps(settings=settings, store=store, worker_name="w:1", watchdog=dog, limiter=limiter)
    job_id = submit(store, settings, allow_writes=True, script=CREATE + " .. " + CREATE.removeprefix("return "))
    creates = lambda: sum(1 for r in simulator.requests if r.method == "POST" and r.route == "create_prediction")  # noqa: E731
    before = creates()
    result: list[dict] = []
    thread = threading.Thread(target=lambda: result.append(run_job(job_id, deps)))
    thread.start()
    wait_until(lambda: len(store.journal(job_id)) == 2, message="the second create journaled, waiting for its slot")
    store.cancel(job_id, envelope={})
    thread.join(10)
    assert result[0]["status"] == "cancelled"

    second = wait_until(lambda: (e := store.journal(job_id)[1])["state"] != "sent" and e, timeout=10,
                        message="the abandoned call to end")  # fmt: skip
    assert second["state"] == "error" and "not sent" in second["error"]
    assert creates() == before + 1


def test_cancelling_a_queued_job_takes_it_out_of_its_agents_backlog(store, settings):
    """Its agent's next jobs are not pushed back by jobs that will never run."""
    job_ids = [submit(store, settings, script="return 1", agent_id="a") for _ in range(3)]
    for job_id in job_ids:
        assert store.cancel(job_id, envelope={"status": "cancelled"})[0] == "cancelled"
    assert store.redis.zcard(keys.agent_queued("a")) == 0
    later = JobRequest.from_dict({"script": "return 1", "agent_id": "a"}, settings)
    assert store.create_many([later])[0].count == 1


def test_a_job_cancelled_before_its_takeover_keeps_the_journal_of_its_writes(store, settings, deps):
    job_id = submit(store, settings, script=CREATE, allow_writes=True)
    store.begin(job_id, "w:0")
    store.journal_append(job_id, {"attempt": 1, "operation": "replicate.create_prediction", "state": "sent"}, 1)
    store.cancel(job_id, envelope={})  # running: flagged
    store.expire_leases("w:0")  # ... and its worker died before it saw the flag
    envelope = run_job(job_id, deps)
    assert envelope["status"] == "cancelled"
    assert envelope["journal"][0]["operation"] == "replicate.create_prediction"
