"""Spend caps through run_job: a create loop stopped at the job's cap, an account's daily
cap shared across jobs, and each cap hit, wait and 429 in integration_calls and the logs."""

from __future__ import annotations

from dataclasses import replace

import pytest
import structlog

from api_client import ReplicateProvider, simulated_accounts
from api_client.simulator import RateLimits, Simulator, SimulatorTransport
from worker.job import JobRequest
from worker.ratelimit import Rate, RedisLimiter
from worker.runner import WorkerDeps, run_job
from worker.settings import Settings

CREATE_LOOP = """
local n = 0
while true do
  app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = "cat " .. n } })
  n = n + 1
end
"""


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(prediction_seconds=0.0)


def deps_for(settings, store, simulator, limiter=None) -> WorkerDeps:
    def providers(settings, *, account="default", simulate=False, attachments=None, limiter=None):
        return [ReplicateProvider(simulated_accounts(), transport=SimulatorTransport(simulator), limiter=limiter)]

    return WorkerDeps(settings=settings, store=store, provider_factory=providers, limiter=limiter)


def submit(store, settings, **fields) -> str:
    request = JobRequest.from_dict(fields, settings)
    store.create(request)
    return request.job_id


def creates(simulator: Simulator) -> int:
    return sum(r.route == "create_prediction" and r.status == 201 for r in simulator.requests)


def test_a_create_loop_is_stopped_at_the_jobs_prediction_cap(store, settings, simulator):
    """Done when 4: a script looping on create_prediction ends with limit_exceeded at its cap,
    having created exactly that many predictions."""
    job_id = submit(store, settings, script=CREATE_LOOP, allow_writes=True, limits={"predictions": 5})
    envelope = run_job(job_id, deps_for(settings, store, simulator))
    assert envelope["status"] == "limit_exceeded"
    assert envelope["error"]["type"] == "limit_exceeded"
    assert envelope["error"]["limit"] == "predictions"
    assert creates(simulator) == 5
    assert envelope["integration_calls"][-1]["limit"] == "predictions"
    assert envelope["meta"]["limits"]["predictions"] == 5


def test_the_deployments_cap_applies_when_the_job_asks_for_nothing(store, simulator):
    """LUAQ_MAX_PREDICTIONS sets the cap every job gets (its default follows it)."""
    settings = replace(Settings.from_env({"LUAQ_MAX_PREDICTIONS": "3"}), environ={})
    job_id = submit(store, settings, script=CREATE_LOOP, allow_writes=True)
    envelope = run_job(job_id, deps_for(settings, store, simulator))
    assert envelope["error"]["limit"] == "predictions" and creates(simulator) == 3


def test_an_accounts_daily_cap_holds_across_jobs(store, settings, simulator, fake_redis):
    """With daily_predictions = 4, a first job creates 3 and a second is stopped after 1 more;
    the refusal is a cap hit in integration_calls and in the logs, bound to the job."""
    limiter = RedisLimiter(fake_redis, {"default": {"daily_predictions": 4}})
    deps = deps_for(settings, store, simulator, limiter)
    script = 'for i = 1, 3 do app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = "x" } }) end'
    assert run_job(submit(store, settings, script=script, allow_writes=True), deps)["status"] == "succeeded"
    job_id = submit(store, settings, script=CREATE_LOOP, allow_writes=True, agent_id="agent-9")
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        envelope = run_job(job_id, deps)
    assert envelope["status"] == "limit_exceeded"
    assert envelope["error"]["limit"] == "daily_predictions"
    assert "daily prediction cap of account 'default' reached (4 created today, UTC)" in envelope["error"]["message"]
    assert creates(simulator) == 4
    refused = envelope["integration_calls"][-1]
    assert refused["limit"] == "daily_predictions" and refused["http_status"] is None
    cap_logs = [entry for entry in logs if entry["event"] == "ratelimit.cap_reached"]
    assert cap_logs and cap_logs[0]["job_id"] == job_id and cap_logs[0]["agent_id"] == "agent-9"
    assert cap_logs[0]["account"] == "default"


def test_rate_limit_waits_and_429s_are_in_integration_calls_and_logs(store, settings, simulator, fake_redis):
    """A call that waited for a token carries rate_limit_wait_ms; a call that met a 429
    carries throttled; both are logged with the job's id."""
    limiter = RedisLimiter(fake_redis, {"default": {"other": Rate(600, 1)}})  # one read per 100 ms
    deps = deps_for(settings, store, simulator, limiter)
    simulator.set_rate_limits(RateLimits(create_per_minute=60, create_burst=1))
    script = """
    app.integrations.replicate.get_account({})
    app.integrations.replicate.get_account({})
    app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = "x" } })
    app.integrations.replicate.create_prediction({ version = "replicate-version-id", input = { prompt = "x" } })
    """
    job_id = submit(store, settings, script=script, allow_writes=True)
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        envelope = run_job(job_id, deps)
    assert envelope["status"] == "succeeded", envelope["error"]
    first, second, created, throttled = envelope["integration_calls"]
    assert "rate_limit_wait_ms" not in first
    assert second["rate_limit_wait_ms"] > 50
    assert "throttled" not in created
    assert throttled["throttled"] == 1 and throttled["retries"][0]["http_status"] == 429
    events = {entry["event"]: entry for entry in logs}
    assert events["ratelimit.waited"]["job_id"] == job_id
    assert events["ratelimit.throttled"]["job_id"] == job_id and events["ratelimit.throttled"]["bucket"] == "create"


def test_raising_the_deployments_cap_raises_every_jobs_default():
    """A spend cap's default follows LUAQ_MAX_<CAP> up as well as down; jobs may still ask for less."""
    settings = Settings.from_env({"LUAQ_MAX_PREDICTIONS": "1000", "LUAQ_MAX_WRITES": "2000"})
    assert (settings.default_limits.predictions, settings.default_limits.writes) == (1000, 2000)
    assert Settings.from_env({}).default_limits.predictions == 100
    lowered = JobRequest.from_dict({"script": "return 1", "limits": {"predictions": 7}}, settings)
    assert lowered.limits_for(settings).predictions == 7
