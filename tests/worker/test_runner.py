"""run_job without Celery: load, run in the sandbox, publish events, finish once."""

from dataclasses import replace

import structlog

from worker.job import JobRequest
from worker.runner import WorkerDeps, run_job


def submit(store, settings, **fields):
    request = JobRequest.from_dict(fields, settings)
    store.create(request)
    return request.job_id


def test_job_runs_and_publishes_events_in_order(store, settings):
    """A job's log lines and calls reach its stream, then the finished envelope."""
    job_id = submit(store, settings, script='print("a") print("b") '
                    'return app.integrations.replicate.get_account({}).type', simulate=True)  # fmt: skip
    envelope = run_job(job_id, WorkerDeps(settings=settings, store=store, worker_name="w1"))
    assert envelope["status"] == "succeeded"
    assert envelope["job_id"] == job_id
    assert envelope["meta"]["worker"] == "w1"
    assert envelope["meta"]["attempt"] == 1
    assert envelope["meta"]["limits"]["wall_clock_seconds"] == settings.default_limits.wall_clock_seconds
    events = store.read_events(job_id)
    assert [e.type for e in events] == ["queued", "started", "log", "log", "call", "finished"]
    assert [e.data["line"] for e in events if e.type == "log"] == ["a", "b"]
    assert events[-1].data == envelope
    assert store.get(job_id).envelope == envelope


def test_a_final_job_is_not_run_again(store, settings):
    """A redelivered job that already finished is skipped."""
    job_id = submit(store, settings, script="return 1")
    deps = WorkerDeps(settings=settings, store=store)
    assert run_job(job_id, deps)["result"] == [1]
    assert run_job(job_id, deps) is None
    assert store.get(job_id).attempt == 1


def test_unknown_account_fails_naming_the_configured_ones(store, settings):
    """A job for an account with no token fails (validation) and the valid names."""
    settings = replace(settings, environ={"REPLICATE_API_TOKEN_WORK": "r8_secret_value"})
    job_id = submit(store, settings, script="return 1", account="wrok")
    envelope = run_job(job_id, WorkerDeps(settings=settings, store=store))
    assert envelope["status"] == "failed"
    assert envelope["error"]["type"] == "validation"
    assert "work" in envelope["error"]["message"]
    assert "r8_secret_value" not in str(envelope)


def test_job_account_becomes_the_default(store, settings):
    """With account=work, unqualified calls use the work account."""
    settings = replace(settings, environ={"REPLICATE_API_TOKEN_WORK": "r8_x"})
    job_id = submit(store, settings, script="return app.integrations.replicate.get_account({}).username",
                    account="work", simulate=True)  # fmt: skip
    envelope = run_job(job_id, WorkerDeps(settings=settings, store=store))
    assert envelope["success"], envelope["error"]
    assert envelope["integration_calls"][0]["account"] in ("default", "work")


def test_logs_are_bound_to_the_job(store, settings):
    """Every log line of a job carries its job_id, account and agent_id."""
    job_id = submit(store, settings, script="return 1", agent_id="agent-7")
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        run_job(job_id, WorkerDeps(settings=settings, store=store))
    started = [entry for entry in logs if entry["event"] == "job.started"]
    assert started and started[0]["job_id"] == job_id
    assert started[0]["agent_id"] == "agent-7"
    assert started[0]["account"] == "default"


def test_a_job_that_lost_its_worker_on_every_attempt_ends_lost(store, settings):
    """Each attempt's worker died (its lease ran out); after LUAQ_MAX_ATTEMPTS the next
    delivery ends the job `lost` instead of running it again."""
    job_id = submit(store, settings, script="return 1")
    for attempt in range(1, settings.max_attempts + 1):
        assert store.begin(job_id, f"w:{attempt}").attempt == attempt
        store.expire_leases(f"w:{attempt}")
    envelope = run_job(job_id, WorkerDeps(settings=settings, store=store, worker_name="w:last"))
    assert envelope["status"] == "lost" and envelope["error"]["type"] == "lost"
    assert f"after {settings.max_attempts} attempts" in envelope["error"]["message"]
    assert store.get(job_id).status.value == "lost"


def test_a_second_delivery_while_the_job_runs_elsewhere_runs_nothing(store, settings):
    job_id = submit(store, settings, script="return 1")
    store.begin(job_id, "w:1")
    assert run_job(job_id, WorkerDeps(settings=settings, store=store, worker_name="w:2")) is None
    assert store.get(job_id).attempt == 1
