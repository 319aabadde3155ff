"""Prometheus metrics of a ``luaq worker`` (prometheus-client, multiprocess mode).

``luaq worker`` is a supervisor and several worker processes (:mod:`worker.supervisor`).
Each worker process records into files under ``PROMETHEUS_MULTIPROC_DIR``, a fresh
directory the supervisor makes before it starts them and removes when it stops
(:class:`MultiprocessDir`); the supervisor serves ``/metrics`` (:mod:`worker.health`),
adding the files of every process up, those of processes that are gone included (their
counters stay counted; their gauges are dropped by :func:`mark_process_dead`).

prometheus-client decides between in-memory values and those files when it is first
imported, so this module imports it only when a metric is first needed: by then a worker
process has the variable its supervisor set. Tests build :class:`Metrics` on a registry of
their own.

Where each figure is recorded:

| metric | recorded |
|---|---|
| ``luaq_jobs_total{status}`` | once per job, by the attempt whose outcome became the job's final state (:func:`record_job`, called by :func:`worker.runner.run_job`) |
| ``luaq_job_duration_seconds`` | same; the envelope's ``execution_time_ms`` |
| ``luaq_queue_wait_seconds`` | same; ``meta.queued_ms`` (submission to the start of the attempt) |
| ``luaq_instructions_total`` | same; the envelope's ``instructions`` |
| ``luaq_integration_calls_total{operation,account,status}`` | same; one per ``integration_calls`` entry (``status``: ``ok`` or ``error``) |
| ``luaq_limit_hits_total{limit}`` | same, for ``limit_exceeded`` jobs; ``error.limit`` |
| ``luaq_jobs_running`` | while :func:`worker.runner.run_job` runs a script |
| ``luaq_jobs_waiting`` | running jobs whose script is suspended in an integration call now (an HTTP request, a rate-limit wait, ``replicate.wait`` polling); ``sleep`` is not counted (:class:`WaitTrackingProvider`) |
| ``luaq_rate_limit_waits_total{account,bucket}`` | each time the shared rate limiter held a request back: it waited for a token, or refused because the wait would outlast the job (:class:`MeteredLimiter`) |
| ``luaq_rate_limit_429_total{account}`` | each 429 answer from Replicate (:class:`MeteredLimiter`) |
| ``luaq_queue_depth{queue}`` | at scrape time, by the supervisor: waiting + reserved jobs of each queue it consumes, read from Redis (:class:`QueueDepthCollector`) |

Every label value comes from a bounded set (statuses, limits, the catalog's operations,
configured accounts and buckets), never from a script.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("luaq.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. A job runs from milliseconds (pure Lua) to an hour (the maximum wall clock).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
QUEUE_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class Metrics:
    """The metric objects of one process, registered on ``registry`` (prometheus-client's
    default registry when None)."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = REGISTRY if registry is None else registry
        self.jobs = Counter("luaq_jobs", "Jobs finished, by final status.", ["status"], registry=registry)
        self.duration = Histogram("luaq_job_duration_seconds", "Run time of a job (its execution_time_ms).",
                                  buckets=DURATION_BUCKETS, registry=registry)  # fmt: skip
        self.queue_wait = Histogram("luaq_queue_wait_seconds", "Time from submission to the start of the job.",
                                    buckets=QUEUE_WAIT_BUCKETS, registry=registry)  # fmt: skip
        self.running = Gauge("luaq_jobs_running", "Jobs running now.", multiprocess_mode="livesum",
                             registry=registry)  # fmt: skip
        self.waiting = Gauge("luaq_jobs_waiting", "Running jobs suspended in an integration call now.",
                             multiprocess_mode="livesum", registry=registry)  # fmt: skip
        self.instructions = Counter("luaq_instructions", "Lua instructions executed by finished jobs.",
                                    registry=registry)  # fmt: skip
        self.calls = Counter("luaq_integration_calls", "Integration calls of finished jobs.",
                             ["operation", "account", "status"], registry=registry)  # fmt: skip
        self.rate_waits = Counter("luaq_rate_limit_waits", "Requests held back by an account's shared rate limit.",
                                  ["account", "bucket"], registry=registry)  # fmt: skip
        self.rate_429 = Counter("luaq_rate_limit_429", "429 answers from Replicate.", ["account"], registry=registry)
        self.limit_hits = Counter("luaq_limit_hits", "Jobs stopped by a limit.", ["limit"], registry=registry)

    def job_finished(self, envelope: Mapping[str, Any]) -> None:
        """Count one job's final envelope."""
        status = str(envelope.get("status") or "unknown")
        self.jobs.labels(status=status).inc()
        self.duration.observe(max(0.0, _number(envelope.get("execution_time_ms")) / 1000))
        meta = envelope.get("meta") or {}
        if isinstance(meta, Mapping) and meta.get("queued_ms") is not None:
            self.queue_wait.observe(max(0.0, _number(meta.get("queued_ms")) / 1000))
        instructions = _number(envelope.get("instructions"))
        if instructions > 0:
            self.instructions.inc(instructions)
        for call in envelope.get("integration_calls") or ():
            if isinstance(call, Mapping):
                self.calls.labels(operation=str(call.get("operation") or "unknown"),
                                  account=str(call.get("account") or "default"),
                                  status=str(call.get("status") or "unknown")).inc()  # fmt: skip
        if status == "limit_exceeded":
            error = envelope.get("error") or {}
            limit = error.get("limit") if isinstance(error, Mapping) else None
            self.limit_hits.labels(limit=limit if isinstance(limit, str) and limit else "unknown").inc()

    @contextlib.contextmanager
    def job_running(self) -> Iterator[None]:
        self.running.inc()
        try:
            yield
        finally:
            self.running.dec()

    @contextlib.contextmanager
    def call_waiting(self) -> Iterator[None]:
        self.waiting.inc()
        try:
            yield
        finally:
            self.waiting.dec()


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


_metrics: Metrics | None = None
_lock = threading.Lock()


def metrics() -> Metrics:
    """This process's metrics, made on first use (see the module's docstring)."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


def record_job(envelope: Mapping[str, Any]) -> None:
    """Count a job's final envelope; a metrics failure never fails the job."""
    try:
        metrics().job_finished(envelope)
    except Exception:
        log.exception("metrics.record_failed", job_id=envelope.get("job_id"))


@contextlib.contextmanager
def job_running() -> Iterator[None]:
    """``luaq_jobs_running`` is one higher while the block runs."""
    with metrics().job_running():
        yield


# -- wrappers that count without touching api_client or the sandbox ---------------------------


class MeteredLimiter:
    """A rate limiter (``api_client.Limiter``, with ``throttled``/``in_flight``/``spend``
    when the wrapped one has them) that counts waits, refusals and 429s."""

    def __init__(self, limiter: Any, sink: Callable[[], Metrics] = metrics) -> None:
        self._limiter = limiter
        self._sink = sink

    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> float | None:
        try:
            waited = self._limiter.acquire(account, bucket, timeout=timeout)
        except Exception:
            self._count_wait(account, bucket)  # refused: the wait would not fit
            raise
        if waited:
            self._count_wait(account, bucket)
        return waited

    def throttled(self, account: str, bucket: str, retry_after: float | None) -> None:
        with contextlib.suppress(Exception):
            self._sink().rate_429.labels(account=account).inc()
        hook = getattr(self._limiter, "throttled", None)
        if callable(hook):
            hook(account, bucket, retry_after)

    def _count_wait(self, account: str, bucket: str) -> None:
        with contextlib.suppress(Exception):
            self._sink().rate_waits.labels(account=account, bucket=bucket).inc()

    def __getattr__(self, name: str) -> Any:  # in_flight, spend, rate, ...
        return getattr(self._limiter, name)


class WaitTrackingProvider:
    """A sandbox provider whose calls count in ``luaq_jobs_waiting`` while they are out."""

    def __init__(self, provider: Any, sink: Callable[[], Metrics] = metrics) -> None:
        self._provider = provider
        self._sink = sink

    @property
    def name(self) -> str:
        return self._provider.name

    def functions(self) -> Sequence[Any]:
        return self._provider.functions()

    def accounts(self) -> Sequence[str]:
        return self._provider.accounts()

    def overview_doc(self) -> str:
        return self._provider.overview_doc()

    def call(self, function: str, account: str, args: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        with self._sink().call_waiting():
            return self._provider.call(function, account, args, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)


def tracking_waits(factory: Callable[..., Sequence[Any]]) -> Callable[..., list[Any]]:
    """A provider factory whose providers are :class:`WaitTrackingProvider`\\ s."""

    def build(*args: Any, **kwargs: Any) -> list[Any]:
        return [WaitTrackingProvider(provider) for provider in factory(*args, **kwargs)]

    return build


# -- the supervisor's side: the directory, the scrape ----------------------------------------


class MultiprocessDir:
    """The directory every process of one ``luaq worker`` writes its metrics to: made
    fresh by :meth:`create` (which sets ``PROMETHEUS_MULTIPROC_DIR`` for the processes
    started afterwards), removed by :meth:`remove`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls) -> MultiprocessDir:
        path = Path(tempfile.mkdtemp(prefix="luaq-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
        return cls(path)

    def mark_process_dead(self, pid: int) -> None:
        """Drop the gauges of a process that is gone (its counters stay counted)."""
        from prometheus_client import multiprocess

        try:
            multiprocess.mark_process_dead(pid, str(self.path))
        except OSError:
            log.warning("metrics.mark_dead_failed", pid=pid)

    def remove(self) -> None:
        if os.environ.get(MULTIPROC_ENV) == str(self.path):
            del os.environ[MULTIPROC_ENV]
        shutil.rmtree(self.path, ignore_errors=True)


class QueueDepthCollector:
    """``luaq_queue_depth{queue}``: waiting + reserved jobs per queue, read from Redis at
    scrape time (a pipeline of LLENs and one scan of kombu's ``unacked`` hash: the same
    figures as ``luaq status``). Nothing is reported when Redis does not answer."""

    def __init__(self, redis_client: Any, queues: Iterable[str]) -> None:
        self._redis = redis_client
        self._queues = tuple(queues)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from .status import queue_depths

        try:
            depths = queue_depths(self._redis, self._queues)
        except Exception as exc:
            log.warning("metrics.queue_depth_failed", error=f"{type(exc).__name__}: {exc}")
            return
        family = GaugeMetricFamily("luaq_queue_depth", "Jobs waiting or reserved (taken, not acknowledged) per queue.",
                                   labels=["queue"])  # fmt: skip
        for queue, depth in depths.items():
            family.add_metric([queue], depth["total"])
        yield family


def exposition(extra: Iterable[Any] = (), accept: str | None = None) -> tuple[bytes, str]:
    """The body and content type of ``/metrics``: every process's files (multiprocess
    mode; this process's own registry otherwise) plus the ``extra`` collectors."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
    from prometheus_client.exposition import choose_encoder

    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Delegate(REGISTRY))
    for collector in extra:
        registry.register(collector)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class _Delegate:
    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        return iter(self._registry.collect())
