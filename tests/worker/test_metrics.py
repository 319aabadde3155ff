"""worker.metrics: what one finished job, a rate-limit wait or a call in flight adds up to."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from worker import metrics as luaq_metrics
from worker.job import JobRequest
from worker.metrics import MeteredLimiter, Metrics, MultiprocessDir, QueueDepthCollector, WaitTrackingProvider
from worker.runner import WorkerDeps, run_job


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def sink(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def envelope(status: str = "succeeded", **extra: object) -> dict:
    base = {"job_id": "j1", "status": status, "execution_time_ms": 1500.0, "instructions": 1234,
            "integration_calls": [], "error": None, "meta": {"queued_ms": 250}}  # fmt: skip
    return {**base, **extra}


def test_a_finished_job_counts_by_status_duration_wait_and_instructions(sink, registry):
    """One envelope adds one to its status, observes its run time and queue wait, and adds its instructions."""
    sink.job_finished(envelope())
    sink.job_finished(envelope("failed", instructions=6, execution_time_ms=20.0))
    assert value(registry, "luaq_jobs_total", status="succeeded") == 1
    assert value(registry, "luaq_jobs_total", status="failed") == 1
    assert value(registry, "luaq_job_duration_seconds_count") == 2
    assert value(registry, "luaq_job_duration_seconds_sum") == pytest.approx(1.52)
    assert value(registry, "luaq_job_duration_seconds_bucket", le="1.0") == 1
    assert value(registry, "luaq_queue_wait_seconds_count") == 2
    assert value(registry, "luaq_queue_wait_seconds_sum") == pytest.approx(0.5)
    assert value(registry, "luaq_instructions_total") == 1240


def test_integration_calls_count_by_operation_account_and_status(sink, registry):
    """Each integration_calls entry is one call, labelled by operation, account and status."""
    calls = [
        {"operation": "replicate.get_authenticated_account", "account": "default", "status": "ok"},
        {"operation": "replicate.get_authenticated_account", "account": "default", "status": "ok"},
        {"operation": "replicate.create_prediction", "account": "work", "status": "error"},
    ]
    sink.job_finished(envelope(integration_calls=calls))
    assert value(registry, "luaq_integration_calls_total", operation="replicate.get_authenticated_account",
                 account="default", status="ok") == 2  # fmt: skip
    assert value(registry, "luaq_integration_calls_total", operation="replicate.create_prediction",
                 account="work", status="error") == 1  # fmt: skip


def test_a_job_stopped_by_a_limit_counts_that_limit(sink, registry):
    """limit_exceeded jobs count in luaq_limit_hits_total under error.limit; other failures do not."""
    sink.job_finished(envelope("limit_exceeded", error={"type": "limit_exceeded", "limit": "instructions"}))
    sink.job_finished(envelope("limit_exceeded", error={"type": "limit_exceeded", "limit": "wall_clock"}))
    sink.job_finished(envelope("limit_exceeded", error=None))
    sink.job_finished(envelope("failed", error={"type": "runtime", "limit": None}))
    assert value(registry, "luaq_limit_hits_total", limit="instructions") == 1
    assert value(registry, "luaq_limit_hits_total", limit="wall_clock") == 1
    assert value(registry, "luaq_limit_hits_total", limit="unknown") == 1
    assert value(registry, "luaq_jobs_total", status="limit_exceeded") == 3


def test_odd_envelopes_are_counted_without_failing(sink, registry):
    """Missing or malformed fields count as zero; a job without queued_ms has no queue-wait sample."""
    sink.job_finished({"status": "lost", "execution_time_ms": None, "instructions": True, "meta": None,
                       "integration_calls": ["not a dict"]})  # fmt: skip
    assert value(registry, "luaq_jobs_total", status="lost") == 1
    assert value(registry, "luaq_queue_wait_seconds_count") == 0
    assert value(registry, "luaq_instructions_total") == 0


def test_running_and_waiting_gauges_follow_their_blocks(sink, registry):
    """luaq_jobs_running and luaq_jobs_waiting are one higher inside their blocks, even when they raise."""
    with sink.job_running():
        assert value(registry, "luaq_jobs_running") == 1
        with pytest.raises(RuntimeError), sink.call_waiting():
            assert value(registry, "luaq_jobs_waiting") == 1
            raise RuntimeError
    assert value(registry, "luaq_jobs_running") == 0
    assert value(registry, "luaq_jobs_waiting") == 0


class FakeLimiter:
    def __init__(self, waits: list[float | Exception]) -> None:
        self.waits = waits
        self.throttles: list[tuple] = []

    def acquire(self, account, bucket, *, timeout):
        wait = self.waits.pop(0)
        if isinstance(wait, Exception):
            raise wait
        return wait

    def throttled(self, account, bucket, retry_after):
        self.throttles.append((account, bucket, retry_after))

    def spend(self, account, operation):
        return f"spent {operation}"


def test_metered_limiter_counts_waits_refusals_and_429s(sink, registry):
    """A wait or a refusal counts per account and bucket, a 429 per account; the limiter still decides."""
    inner = FakeLimiter([0.0, 0.4, RuntimeError("would outlast the job")])
    limiter = MeteredLimiter(inner, lambda: sink)
    assert limiter.acquire("default", "other", timeout=5) == 0.0
    assert limiter.acquire("default", "other", timeout=5) == 0.4
    with pytest.raises(RuntimeError):
        limiter.acquire("work", "create", timeout=5)
    limiter.throttled("work", "create", 3.0)
    assert value(registry, "luaq_rate_limit_waits_total", account="default", bucket="other") == 1
    assert value(registry, "luaq_rate_limit_waits_total", account="work", bucket="create") == 1
    assert value(registry, "luaq_rate_limit_429_total", account="work") == 1
    assert inner.throttles == [("work", "create", 3.0)]
    assert limiter.spend("default", "create_prediction") == "spent create_prediction"  # forwarded


def test_a_provider_call_in_flight_counts_as_waiting(sink, registry):
    """While a provider call is out, its job counts in luaq_jobs_waiting; the provider is otherwise unchanged."""
    from sandbox.testing import StubFunction, StubProvider

    seen = []
    stub = StubProvider(StubFunction("echo", result=lambda args, account: seen.append(
        value(registry, "luaq_jobs_waiting")) or args))  # fmt: skip
    provider = WaitTrackingProvider(stub, lambda: sink)
    assert provider.name == stub.name
    assert [f.name for f in provider.functions()] == [f.name for f in stub.functions()]
    assert provider.accounts() == stub.accounts()
    provider.call("echo", "default", {"x": 1})
    assert seen == [1.0]
    assert value(registry, "luaq_jobs_waiting") == 0


def test_queue_depth_is_waiting_plus_reserved_per_queue(fake_redis):
    """luaq_queue_depth adds every priority list of a queue and its unacknowledged messages."""
    fake_redis.rpush("luaq", "a", "b")
    fake_redis.rpush("luaq\x06\x163", "c")
    fake_redis.hset("unacked", "tag1", '[{"body": "x"}, "", "luaq"]')
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(fake_redis, ["luaq", "other"]))
    assert registry.get_sample_value("luaq_queue_depth", {"queue": "luaq"}) == 4
    assert registry.get_sample_value("luaq_queue_depth", {"queue": "other"}) == 0


def test_queue_depth_is_left_out_when_redis_fails():
    """A scrape while Redis is down has no luaq_queue_depth rather than a wrong one."""

    class Down:
        def pipeline(self, **_):
            raise ConnectionError("down")

    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(Down(), ["luaq"]))
    assert registry.get_sample_value("luaq_queue_depth", {"queue": "luaq"}) is None


def test_run_job_records_the_finished_job_once(store, settings):
    """run_job counts a job when its outcome becomes final, and not again for a duplicate delivery."""
    request = JobRequest.from_dict({"script": "error('boom')"}, settings)
    store.create(request)
    before = REGISTRY.get_sample_value("luaq_jobs_total", {"status": "failed"}) or 0
    deps = WorkerDeps(settings=settings, store=store, worker_name="w1")
    run_job(request.job_id, deps)
    run_job(request.job_id, deps)
    assert REGISTRY.get_sample_value("luaq_jobs_total", {"status": "failed"}) == before + 1
    assert REGISTRY.get_sample_value("luaq_jobs_running") == 0


def _record_in_child(status: str, queue: multiprocessing.Queue) -> None:
    from worker import metrics

    metrics.record_job({"status": status, "execution_time_ms": 10, "instructions": 5, "meta": {"queued_ms": 1}})
    metrics.metrics().running.inc()  # left "running" when the process ends
    queue.put(os.getpid())


def test_processes_add_up_and_a_dead_process_keeps_its_counts_but_not_its_gauges():
    """In multiprocess mode the scrape adds every process's files; mark_process_dead drops only gauges."""
    directory = MultiprocessDir.create()
    try:
        context = multiprocessing.get_context("spawn")  # a fresh import sees PROMETHEUS_MULTIPROC_DIR
        queue = context.Queue()
        pids = []
        for status in ("succeeded", "succeeded", "failed"):
            process = context.Process(target=_record_in_child, args=(status, queue))
            process.start()
            process.join(60)
            pids.append(queue.get(timeout=5))
        text = luaq_metrics.exposition()[0].decode()
        assert 'luaq_jobs_total{status="succeeded"} 2.0' in text
        assert 'luaq_jobs_total{status="failed"} 1.0' in text
        assert "luaq_instructions_total 15.0" in text
        assert "luaq_jobs_running 3.0" in text
        for pid in pids:
            directory.mark_process_dead(pid)
        text = luaq_metrics.exposition()[0].decode()
        assert 'luaq_jobs_total{status="succeeded"} 2.0' in text
        assert "luaq_jobs_running 3.0" not in text
    finally:
        directory.remove()
    assert not directory.path.exists()
    assert luaq_metrics.MULTIPROC_ENV not in os.environ


def test_metrics_is_one_instance_per_process():
    """Every thread of a process records into the same metric objects."""
    found = []
    threads = [threading.Thread(target=lambda: found.append(luaq_metrics.metrics())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(item is found[0] for item in found)
