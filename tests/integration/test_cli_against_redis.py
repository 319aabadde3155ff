"""The queue-side CLI against a real Redis with no worker running."""

import json

import pytest
from click.testing import CliRunner

import worker.cli
from worker.cli import cli


@pytest.fixture
def luaq(real_settings):
    def invoke(*args: str):
        env = {
            "LUAQ_REDIS_URL": real_settings.redis_url,
            "LUAQ_HOME": str(real_settings.home),
            "LUAQ_QUEUES": "luaq,nobody",
        }
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_submit_prints_the_job_id_and_stores_the_job(luaq, real_settings):
    """`luaq submit` prints the new job's id; `luaq result` then says it is queued (exit 3)."""
    done = luaq("submit", "--eval", "return 1", "--job-id", "cli-1")
    assert done.exit_code == 0
    assert done.stdout.strip() == "cli-1"
    pending = luaq("result", "cli-1", "--json")
    assert pending.exit_code == 3
    assert json.loads(pending.stdout) == {"job_id": "cli-1", "status": "queued"}


def test_waiting_without_a_worker_hints_and_times_out(luaq, monkeypatch):
    """`submit --wait` with no worker says the job is still queued, then exits 3 at --wait-timeout."""
    monkeypatch.setattr(worker.cli, "QUEUED_HINT_SECONDS", 0.05)
    done = luaq(
        "submit",
        "--wait",
        "--json",
        "--wait-timeout",
        "0.5",
        "--eval",
        "return 1",
        "--queue",
        "nobody",
    )
    assert done.exit_code == 3
    assert json.loads(done.stdout)["status"] == "queued"
    assert "still queued" in done.stderr and "'nobody'" in done.stderr


def test_watch_rejects_a_malformed_event_id(luaq):
    """`luaq watch --from garbage` is a usage error, not a traceback."""
    luaq("submit", "--eval", "return 1", "--job-id", "cli-2")
    done = luaq("watch", "cli-2", "--from", "garbage")
    assert done.exit_code == 2
    assert "event id" in done.stderr


def test_unknown_job_is_a_usage_error(luaq):
    """result and watch of a job that does not exist exit 2 with a clear message."""
    for command in (["result", "nope"], ["watch", "nope"], ["result", "nope", "--wait"]):
        done = luaq(*command)
        assert done.exit_code == 2, command
        assert "no job 'nope'" in done.stderr


def test_bad_submission_json_is_rejected_with_an_envelope(luaq, tmp_path):
    """A malformed JSON submission is refused (exit 2) with a rejected envelope under --json."""
    path = tmp_path / "job.json"
    path.write_text('{"script": "return 1",')
    done = luaq("submit", "--request", str(path), "--json")
    assert done.exit_code == 2
    envelope = json.loads(done.stdout)
    assert envelope["status"] == "rejected"
    assert "not valid JSON" in envelope["error"]["message"]


def test_unknown_queue_is_rejected(luaq):
    """A queue that is not one of LUAQ_QUEUES is refused at submission, naming the valid ones."""
    done = luaq("submit", "--json", "--eval", "return 1", "--queue", "luaq:finished")
    assert done.exit_code == 2
    message = json.loads(done.stdout)["error"]["message"]
    assert "unknown queue 'luaq:finished'" in message and "luaq, nobody" in message


def test_resuming_after_the_finished_event_yields_nothing_more(real_settings):
    """A reader resuming from the finished event's id gets no second, made-up finished event."""
    from worker.job import JobRequest
    from worker.store import JobStore

    store = JobStore.from_settings(real_settings)
    store.create(JobRequest.from_dict({"script": "return 1", "job_id": "r1"}, real_settings))
    store.finish("r1", "succeeded", {"status": "succeeded"}, 1)
    last = list(store.follow("r1", timeout=5))[-1]
    assert last.type == "finished"
    assert list(store.follow("r1", last.id, timeout=5)) == []


def test_hard_time_limit_records_a_wall_clock_envelope(real_settings):
    """When Celery's hard time limit ends a job's process, on_failure (in the parent) records the outcome."""
    from celery.exceptions import TimeLimitExceeded

    from worker.app import TASK_NAME, create_app
    from worker.job import JobRequest
    from worker.store import JobStore

    store = JobStore.from_settings(real_settings)
    store.create(JobRequest.from_dict({"script": "while true do end", "job_id": "hard-1"}, real_settings))
    store.begin("hard-1", "w")
    task = create_app(real_settings).tasks[TASK_NAME]
    task.on_failure(TimeLimitExceeded(5), "hard-1", ["hard-1"], {}, None)
    record = store.get("hard-1")
    assert record.status.value == "limit_exceeded"
    assert record.envelope["error"]["limit"] == "wall_clock"


def test_limiter_shares_one_limit_across_clients_with_skewed_clocks(real_settings):
    """Two limiters whose local clocks disagree by a minute still share one limit (the server's clock decides)."""
    import redis as redis_py

    from worker.ratelimit import Rate, RedisLimiter

    client = redis_py.Redis.from_url(real_settings.redis_url)
    rates = {"acct": {"create": Rate(60, 2)}}
    here = RedisLimiter(client, rates, clock=lambda: 1000.0)
    skewed = RedisLimiter(client, rates, clock=lambda: 1060.0)
    assert here.try_acquire("acct", "create") == 0.0
    assert skewed.try_acquire("acct", "create") == 0.0
    assert here.try_acquire("acct", "create") > 0
    assert skewed.try_acquire("acct", "create") > 0
