"""The supervisor's recovery of a dead worker process's jobs (fakeredis, no processes;
tests/e2e/test_watchdog.py does it with real ones)."""

import os
import signal
from dataclasses import replace

import pytest

from worker import keys
from worker.job import JobRequest
from worker.store import JobStore
from worker.supervisor import Supervisor


class FakeApp:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list, dict]] = []

    def send_task(self, name, args=None, **options):
        self.sent.append((name, args, options))


@pytest.fixture
def store(fake_redis, settings):
    return JobStore(fake_redis, replace(settings, lease_seconds=30.0))


@pytest.fixture
def supervisor(store, settings):
    return Supervisor(store.settings, ["luaq"], store=store, app=FakeApp())


def running(store, job_id, node, **fields):
    store.create(JobRequest.from_dict({"script": "return 1", "job_id": job_id, **fields}, store.settings))
    assert store.begin(job_id, node).state == "started"


def test_the_jobs_of_a_dead_process_are_queued_again_and_taken_over(store, supervisor):
    running(store, "a", "w:1", priority=3)
    running(store, "b", "w:1")
    running(store, "c", "w:2")  # another process's job is left alone
    assert sorted(supervisor.recover("w:1")) == ["a", "b"]
    sent = {args[0]: options for _name, args, options in supervisor.app.sent}
    assert set(sent) == {"a", "b"} and sent["a"]["priority"] == 3
    assert [e.type for e in store.read_events("a")][-1] == "requeued"
    assert store.begin("a", "w:3").attempt == 2
    assert store.begin("c", "w:3").state == "busy"
    assert supervisor.requeue_orphans() == []  # claimed once; "a" is running again


def test_after_a_hang_the_jobs_past_their_wall_clock_are_recorded_as_stuck(store, supervisor):
    running(store, "late", "w:1", limits={"wall_clock_seconds": 1})
    running(store, "fine", "w:1", limits={"wall_clock_seconds": 60})
    store.redis.hset(keys.job("late"), "started_at", 0)  # started long ago
    assert supervisor.recover("w:1", killed_for_hang=True) == ["fine"]
    late = store.get("late")
    assert late.status.value == "limit_exceeded" and late.envelope["error"]["limit"] == "wall_clock"
    assert [args[0] for _name, args, _options in supervisor.app.sent] == ["fine"]


def test_the_supervisor_announces_the_limits_it_enforces_under_its_own_name(store):
    """Each round announces this worker's rate limits under its own name; they read back
    as the limits its processes enforce."""
    from worker.announce import announced_limits, parsed
    from worker.ratelimit import RedisLimiter, parse_rates

    rates = parse_rates('{"*": {"create": [6, 1], "in_flight": 5}, "default": {"daily_predictions": 8}}')
    supervisor = Supervisor(replace(store.settings, rate_limits=rates), ["luaq"], store=store, app=FakeApp())
    supervisor.check()
    [(name, document)] = announced_limits(store.redis).items()
    assert name == supervisor.name and name.startswith("luaq-")
    limiter = RedisLimiter(store.redis, parsed(document))
    assert limiter.rate("default", "create").per_minute == 6 and limiter.in_flight_cap("work") == 5
    assert limiter.daily_predictions_cap("default") == 8


def test_once_its_parent_has_gone_a_repeated_sigterm_keeps_the_shutdown_warm(supervisor, monkeypatch):
    """A killed luaq up's worker gets its parent-death SIGTERM once per thread of the dead
    parent: the shutdown stays warm; SIGINT still makes it cold."""
    monkeypatch.setattr(os, "getppid", lambda: supervisor._parent + 1)  # the parent has gone
    supervisor._on_signal(signal.SIGTERM, None)
    supervisor._on_signal(signal.SIGTERM, None)
    assert supervisor.stopping and supervisor._signals == 1
    supervisor._on_signal(signal.SIGINT, None)
    assert supervisor._signals == 2


def test_with_its_parent_alive_a_second_sigterm_makes_the_shutdown_cold(supervisor):
    supervisor._on_signal(signal.SIGTERM, None)
    supervisor._on_signal(signal.SIGTERM, None)
    assert supervisor._signals == 2
