"""Liveness and readiness of a ``luaq worker``, and the HTTP endpoint that serves them.

A worker process can be up and still do nothing: its Celery consumer's event loop can be
stuck, or the consumer can have stopped consuming its queues (after a broker reconnect
that did not resubscribe, or a ``cancel_consumer``) while the process still answers
``ping``. So liveness is not "the process is up" but "the consumer makes progress":

- each worker process adds a consumer bootstep, :func:`consumer_beat_step`, which puts a
  timer on the consumer's own event loop (Celery's ``consumer.timer``, run by the loop that
  polls the broker). Every :data:`BEAT_SECONDS`, when the consumer consumes from at least
  one queue, the timer writes the time into a ``multiprocessing.Value`` that the
  supervisor shares with that process. A stuck loop stops the timer; a consumer consuming
  nothing stops writing. The bootstep starts again with the consumer after a reconnect,
  so the timer follows the live connection;
- the supervisor (:mod:`worker.supervisor`) reads those values. :func:`assess` turns them
  into the two answers.

**Liveness** (``/healthz``; ``luaq health --live``) fails when any worker process's
consumer has not beaten for ``LUAQ_LIVENESS_TIMEOUT`` seconds (default 30; a process
starting up gets that or :data:`STARTUP_SECONDS`, whichever is longer, to begin), when a process's watchdog heartbeat stopped, or when
the supervisor's own loop stopped. It does **not** fail while Redis is unreachable (no
consumer can consume then, and restarting the worker would not help: readiness says it)
nor while the worker shuts down (consumers stop on purpose).

**Readiness** (``/readyz``; ``luaq health --ready``) needs Redis to answer a PING and at
least one worker process consuming; it fails during shutdown.

Both answer ``200`` or ``503`` with a JSON body that names each process and why. The
supervisor serves them, and ``/metrics``, on ``LUAQ_METRICS_PORT`` (:class:`HealthServer`).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized
from typing import Any, Protocol

import structlog

log = structlog.get_logger("luaq.health")

BEAT_SECONDS = 1.0
DEFAULT_LIVENESS_TIMEOUT = 30.0
STARTUP_SECONDS = 60.0  # a new process has at least this long to begin consuming
REDIS_TIMEOUT_SECONDS = 1.0


# -- inside a worker process --------------------------------------------------------------


def consumer_beat_step(beat: Synchronized, *, interval: float = BEAT_SECONDS,
                       clock: Callable[[], float] = time.monotonic) -> type:  # fmt: skip
    """A Celery consumer bootstep that writes ``clock()`` into ``beat`` every ``interval``
    seconds from the consumer's event loop, while the consumer consumes some queue.
    Install with ``app.steps["consumer"].add(step)``."""
    from celery import bootsteps

    class ConsumerBeat(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, c: Any, **kwargs: Any) -> None:
            self.entry: Any = None
            super().__init__(c, **kwargs)

        def start(self, c: Any) -> None:
            self._tick(c)
            self.entry = c.timer.call_repeatedly(interval, self._tick, (c,))

        def stop(self, c: Any) -> None:
            if self.entry is not None:
                c.timer.cancel(self.entry)
                self.entry = None

        shutdown = stop

        def _tick(self, c: Any) -> None:
            if consuming(c):
                beat.value = clock()

    return ConsumerBeat


def consuming(consumer: Any) -> bool:
    """Whether a Celery consumer consumes from at least one task queue now."""
    tasks = getattr(consumer, "task_consumer", None)
    if tasks is None:
        return False
    return any(tasks.consuming_from(queue) for queue in tasks.queues)


# -- in the supervisor --------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessView:
    """What the supervisor knows of one worker process, at one moment (monotonic times;
    ``consumer_beat`` is 0 until the consumer first consumed)."""

    name: str
    pid: int | None
    started: float
    heartbeat: float | None  # the watchdog's; None where there is none (prefork)
    consumer_beat: float
    draining: bool = False


@dataclass
class Verdict:
    ok: bool
    reason: str
    processes: list[dict[str, Any]] = field(default_factory=list)
    redis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "failing", "reason": self.reason, "redis": self.redis,
                "processes": self.processes}  # fmt: skip


def process_state(view: ProcessView, now: float, timeout: float) -> tuple[str, float | None]:
    """``consuming``, ``starting``, ``draining``, ``stalled`` (consumer silent past
    ``timeout``) or ``hung`` (watchdog silent past ``timeout``); and the seconds since the
    consumer's last beat."""
    silent = None if view.consumer_beat <= 0 else round(now - view.consumer_beat, 1)
    if view.draining:
        return "draining", silent
    if view.heartbeat is not None and now - view.heartbeat > timeout and now - view.started > timeout:
        return "hung", silent
    if view.consumer_beat <= 0:
        return ("starting" if now - view.started <= max(timeout, STARTUP_SECONDS) else "stalled"), silent
    return ("consuming" if now - view.consumer_beat <= timeout else "stalled"), silent


def assess(views: Sequence[ProcessView], *, now: float, timeout: float, supervisor_beat: float,
           stopping: bool, redis_ok: Callable[[], bool | str]) -> tuple[Verdict, Verdict]:  # fmt: skip
    """(liveness, readiness). ``redis_ok`` returns True, or a string saying why not; it is
    called only when needed."""
    processes = []
    states = []
    for view in views:
        state, silent = process_state(view, now, timeout)
        states.append(state)
        processes.append({"name": view.name, "pid": view.pid, "state": state, "consumer_silent_seconds": silent})
    redis_state: bool | str | None = None

    def redis() -> bool | str:
        nonlocal redis_state
        if redis_state is None:
            redis_state = redis_ok()
        return redis_state

    def described() -> str:
        return "ok" if redis() is True else f"unreachable: {redis()}"

    if stopping:
        live = Verdict(True, "shutting down", processes)
        ready = Verdict(False, "shutting down", processes)
        return live, ready
    bad = [p for p in processes if p["state"] in ("stalled", "hung")]
    if now - supervisor_beat > timeout:
        live = Verdict(False, f"the supervisor's loop has not run for {now - supervisor_beat:.0f} s", processes)
    elif not views:
        live = Verdict(False, "no worker process", processes)
    elif bad and redis() is not True:
        live = Verdict(True, "consumers wait for Redis (unreachable): a restart would not help", processes,
                       described())  # fmt: skip
    elif bad:
        names = ", ".join(f"{p['name']} ({p['state']})" for p in bad)
        live = Verdict(False, f"not consuming for over {timeout:g} s: {names}", processes, described())
    else:
        live = Verdict(True, "every worker process consumes", processes)
    if redis() is not True:
        ready = Verdict(False, f"Redis {described()}", processes, described())
    elif "consuming" not in states:
        ready = Verdict(False, f"no worker process consumes: {_named_states(processes)}", processes, described())
    else:
        ready = Verdict(True, f"{states.count('consuming')} of {len(states)} worker processes consume", processes,
                        described())  # fmt: skip
    if live.redis is None and redis_state is not None:
        live.redis = described()
    return live, ready


def _named_states(processes: Sequence[dict[str, Any]]) -> str:
    """``w0 (starting), w1 (stalled)``, or ``none running``."""
    return ", ".join(f"{p['name']} ({p['state']})" for p in processes) or "none running"


def redis_pinger(redis_client: Any) -> Callable[[], bool | str]:
    """A ``redis_ok`` for :func:`assess` (use a client with short timeouts, no retries)."""

    def ping() -> bool | str:
        try:
            return True if redis_client.ping() else "no answer"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    return ping


# -- the endpoint ---------------------------------------------------------------------------


class Supervised(Protocol):
    """What :class:`Endpoint` reads from the supervisor (:class:`worker.supervisor.Supervisor`)."""

    @property
    def stopping(self) -> bool: ...

    @property
    def loop_beat(self) -> float: ...

    def health_views(self) -> list[ProcessView]: ...


class Endpoint:
    """The supervisor's side of metrics and health: the metrics directory its processes
    write to, and :class:`HealthServer` serving ``/metrics``, ``/healthz``, ``/readyz``."""

    def __init__(self, directory: Any, server: HealthServer) -> None:
        self.directory = directory
        self.server = server

    @classmethod
    def start(cls, settings: Any, queues: Sequence[str], supervisor: Supervised) -> Endpoint | None:
        """Make the metrics directory (processes started afterwards inherit it) and serve
        on ``settings.metrics_port``; None when that is 0. Raises OSError when the port is
        taken."""
        if not settings.metrics_port:
            return None
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from . import metrics
        from .redis_urls import redis_client

        # Short timeouts and no retries: a probe must answer within its own timeout.
        probe_redis = redis_client(settings.redis_url, master_name=settings.redis_sentinel_master,
                                   retry=Retry(NoBackoff(), 0), socket_timeout=REDIS_TIMEOUT_SECONDS,
                                   socket_connect_timeout=REDIS_TIMEOUT_SECONDS)  # fmt: skip
        depth = metrics.QueueDepthCollector(probe_redis, queues)
        ping = redis_pinger(probe_redis)

        def check() -> tuple[Verdict, Verdict]:
            return assess(supervisor.health_views(), now=time.monotonic(), timeout=settings.liveness_timeout_seconds,
                          supervisor_beat=supervisor.loop_beat, stopping=supervisor.stopping, redis_ok=ping)  # fmt: skip

        directory = metrics.MultiprocessDir.create()
        try:
            server = HealthServer(settings.metrics_port, check, lambda accept: metrics.exposition([depth], accept))
        except OSError:
            directory.remove()
            raise
        return cls(directory, server.start())

    def process_gone(self, pid: int) -> None:
        self.directory.mark_process_dead(pid)

    def stop(self) -> None:
        self.server.stop()
        self.directory.remove()


class HealthServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` over HTTP, in a thread.

    ``check`` returns (liveness, readiness); ``metrics`` returns the ``/metrics`` body and
    content type for an ``Accept`` header."""

    def __init__(self, port: int, check: Callable[[], tuple[Verdict, Verdict]],
                 metrics: Callable[[str | None], tuple[bytes, str]], host: str = "") -> None:  # fmt: skip
        handler = _handler(check, metrics)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="luaq-health", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(check: Callable[[], tuple[Verdict, Verdict]],
             metrics: Callable[[str | None], tuple[bytes, str]]) -> type[BaseHTTPRequestHandler]:  # fmt: skip
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path == "/metrics":
                    body, content_type = metrics(self.headers.get("Accept"))
                    self._send(200, body, content_type)
                elif path in ("/healthz", "/livez", "/readyz"):
                    live, ready = check()
                    verdict = ready if path == "/readyz" else live
                    self._send(200 if verdict.ok else 503, json.dumps(verdict.to_dict()).encode() + b"\n",
                               "application/json")  # fmt: skip
                else:
                    self._send(404, b"not found: try /metrics, /healthz, /readyz\n", "text/plain")
            except Exception as exc:
                log.exception("health.request_failed", path=path)
                self._send(500, f"{type(exc).__name__}\n".encode(), "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no access log
            return

    return Handler


def probe(port: int, path: str, *, host: str = "127.0.0.1", timeout: float = 5.0) -> tuple[bool, dict[str, Any]]:
    """GET ``path`` from a worker's health endpoint: (answered 200, the JSON body)."""
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, _json(response.read())
    except urllib.error.HTTPError as exc:
        return False, _json(exc.read())
    except (OSError, ValueError) as exc:
        return False, {"status": "unreachable", "reason": f"{url}: {getattr(exc, 'reason', exc)}"}


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {"status": "unknown", "reason": raw.decode(errors="replace")[:200]}
    return value if isinstance(value, dict) else {"status": "unknown", "reason": str(value)}
