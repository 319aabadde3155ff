"""``luaq worker``: a supervisor and the worker processes it keeps running.

Why this shape (measured in ``ops/bench/throughput.py``; see the README's design section):
a luaq job spends nearly all its time waiting — on a prediction, a rate-limit token,
``sleep`` — so one process per job (Celery's prefork pool) leaves a host with a handful
of waiting scripts. Each worker process here is a Celery worker with the **threads**
pool, running up to ``LUAQ_WORKER_CONCURRENCY`` jobs at once; lupa releases the GIL while
Lua runs, so scripts compute in parallel and the operating system schedules them
preemptively (a compute-heavy script cannot hold the others back for longer than one GIL
switch interval, 5 ms, when they need Python), and a waiting script is a blocked thread
that costs no CPU. ``LUAQ_WORKER_PROCESSES`` processes (one per CPU) share the host's
Python-side work.

What the threads pool lacks — Celery's time limits, and a way to stop one job without
stopping its process — the watchdog and this supervisor provide:

- each process's watchdog (:mod:`worker.watchdog`) ends a job stuck in a C call by
  recording its outcome and draining the process (it says so in shared memory, and the
  supervisor starts a replacement at once); the process exits once its other jobs are
  done, and the supervisor then ends the leases of any jobs it still held and queues each
  of them again (a new attempt elsewhere);
- a process whose heartbeat stops (a C call holding the GIL) is killed and handled the
  same way, its jobs past their wall clock recorded as stuck;
- a process that grew past ``LUAQ_WORKER_MAX_MEMORY_MB`` is drained (warm shutdown: it
  finishes its jobs, takes no new ones) while a replacement starts;
- every few seconds, running jobs whose lease ran out anywhere (a whole host lost) are
  claimed and queued again (:meth:`worker.store.JobStore.claim_orphans`), and this
  worker announces the accounts it can run jobs for, so that submitters reject a job
  naming an account no worker knows (:meth:`worker.store.JobStore.announce_accounts`),
  and the rate limits it enforces, which ``luaq status`` shows (:mod:`worker.announce`).

Its Redis client retries a dropped connection for about 30 s, and a round that fails
anyway is logged and tried again: a Redis restart never ends the supervisor, and the
Celery workers reconnect by themselves (kombu >= 5.4).

SIGTERM or SIGINT: warm shutdown (each process stops taking jobs and finishes the ones it
runs); a second signal: cold shutdown (the threads pool's processes are killed, since
Celery cannot stop a thread; their jobs are queued again from their leases, and Celery's
``task_acks_late`` keeps their messages). Once its parent has gone, further SIGTERMs do
not count (SIGINT still does): ``luaq up`` starts its worker with SIGTERM as the
parent-death signal, and Linux sends that again each time the orphan is handed to
another thread of its dying parent, so a killed ``luaq up`` sends several within a few
milliseconds — which made its worker's shutdown cold, its jobs killed.

On ``LUAQ_METRICS_PORT`` the supervisor serves ``/metrics`` (every process's metrics,
added up: :mod:`worker.metrics`), ``/healthz`` and ``/readyz`` (:mod:`worker.health`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import structlog

from . import announce, health
from . import metrics as luaq_metrics
from .job import JobRequest, JobStatus, stuck_envelope
from .settings import Settings
from .store import JobStore, now_ms
from .watchdog import MARGIN_SECONDS

log = structlog.get_logger("luaq.supervisor")

HEARTBEAT_TIMEOUT_SECONDS = 15.0
REAP_INTERVAL_SECONDS = 5.0
ACCOUNTS_TTL_SECONDS = 60.0
LIMITS_TTL_SECONDS = 20.0  # a stopped worker's limits leave `luaq status` soon (a clean stop withdraws them)
POLL_SECONDS = 0.2


@dataclass
class Child:
    index: int
    hostname: str
    process: Any  # multiprocessing.Process
    heartbeat: Synchronized
    started: float = field(default_factory=time.monotonic)
    draining: bool = False
    consumer_beat: Synchronized | None = None  # see worker.health
    drain_flag: Synchronized | None = None  # set by the process when a stuck job drains it

    @property
    def node(self) -> str:
        """The worker name its jobs record (``worker`` in the job record)."""
        return f"{self.hostname}:{self.process.pid}"


def child_main(settings: Settings, hostname: str, queues: Sequence[str], loglevel: str, heartbeat: Synchronized,
               consumer_beat: Synchronized | None = None, supervisor_pid: int | None = None,
               draining: Synchronized | None = None) -> None:  # fmt: skip
    """One worker process: a Celery worker with the threads pool."""
    from .app import create_app
    from .local_redis import die_with_parent
    from .logs import configure_logging
    from .tasks import set_process_hooks

    # A supervisor killed outright (SIGKILL) leaves no worker process behind: each gets
    # SIGTERM, Celery's warm shutdown, and finishes the jobs it runs.
    die_with_parent()
    if supervisor_pid is not None and os.getppid() != supervisor_pid:
        return

    configure_logging(json=True, level=loglevel)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; it sends SIGTERM

    def beat() -> None:
        heartbeat.value = time.monotonic()

    def drain() -> None:
        # A job is stuck in C: take no more jobs (Celery's warm shutdown; the watchdog
        # ends the process once the other jobs are done) and have a replacement started.
        if draining is not None:
            draining.value = 1
        os.kill(os.getpid(), signal.SIGTERM)

    set_process_hooks(beat, drain)
    beat()
    argv = [
        "worker", f"--loglevel={loglevel}", f"--pool={settings.worker_pool}",
        f"--concurrency={settings.worker_concurrency if settings.worker_pool == 'threads' else settings.worker_processes}",
        f"--hostname={hostname}", "-Q", ",".join(queues), "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if settings.worker_pool == "prefork":
        # Python-side memory is not under Lua's limit: replace a pool process that grew.
        argv.append(f"--max-memory-per-child={settings.worker_max_memory_mb * 1024}")
    app = create_app(settings)
    if consumer_beat is not None:
        app.steps["consumer"].add(health.consumer_beat_step(consumer_beat))
    app.worker_main(argv=argv)


class Supervisor:
    def __init__(self, settings: Settings, queues: Sequence[str], loglevel: str = "INFO", *,
                 store: JobStore | None = None, app: Any = None) -> None:  # fmt: skip
        self.settings = settings
        self.queues = tuple(queues)
        self.loglevel = loglevel
        self.store = store or JobStore.from_settings(settings, ride_out_restarts=True)
        if app is None:
            from .app import create_app

            app = create_app(settings)
        self.app = app
        self.children: list[Child] = []
        self._context = multiprocessing.get_context("spawn")
        self._signals = 0
        self._parent = os.getppid()
        self._next_reap = 0.0
        # Under prefork, Celery runs the processes: one child, Celery's pool master.
        self._count = settings.worker_processes if settings.worker_pool == "threads" else 1
        self._host = socket.gethostname()
        self.name = f"luaq-{os.getpid()}@{self._host}"  # its worker processes are luaq-{pid}-{index}@{host}
        self._loop_beat = time.monotonic()
        self._endpoint: health.Endpoint | None = None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:  # before the processes start: they inherit its metrics directory
            self._endpoint = health.Endpoint.start(self.settings, self.queues, self)
        except OSError as exc:
            log.error("supervisor.endpoint_failed", port=self.settings.metrics_port, error=str(exc),
                      hint="set LUAQ_METRICS_PORT to a free port, or 0 to turn the endpoint off")  # fmt: skip
            return 2
        log.info("supervisor.started", processes=self._count, pool=self.settings.worker_pool,
                 concurrency=self.settings.worker_concurrency, queues=list(self.queues),
                 metrics_port=self.settings.metrics_port or None)  # fmt: skip
        try:
            for index in range(self._count):
                self.children.append(self._spawn(index))
            while self.children:
                time.sleep(POLL_SECONDS)
                self.check()
        finally:
            if self._endpoint is not None:
                self._endpoint.stop()
            try:
                announce.withdraw_limits(self.store.redis, self.name)
            except Exception:
                log.exception("supervisor.withdraw_failed")
        log.info("supervisor.stopped")
        return 0

    @property
    def loop_beat(self) -> float:
        """When this supervisor's loop last ran (``time.monotonic``)."""
        return self._loop_beat

    def health_views(self) -> list[health.ProcessView]:
        """Each worker process as :func:`worker.health.assess` sees it."""
        threads = self.settings.worker_pool == "threads"
        views = []
        for child in list(self.children):
            beat = child.consumer_beat.value if child.consumer_beat is not None else 0.0
            views.append(health.ProcessView(name=child.hostname, pid=child.process.pid, started=child.started,
                                            heartbeat=child.heartbeat.value if threads else None,
                                            consumer_beat=beat, draining=child.draining))  # fmt: skip
        return views

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGTERM and self._signals and os.getppid() != self._parent:
            return  # the parent-death signal again (see the module's docstring)
        self._signals += 1
        # Warm shutdown first; a second signal makes the shutdown cold. Celery's cold
        # shutdown cannot stop a threads-pool job (it fails on TaskPool.kill_job): the
        # processes are killed instead, and their jobs queued again from their leases.
        cold = signal.SIGKILL if self.settings.worker_pool == "threads" else signal.SIGQUIT
        forward = signal.SIGTERM if self._signals == 1 else cold
        log.info("supervisor.stopping", signal=signal.Signals(signum).name, cold=self._signals > 1)
        for child in self.children:
            if child.process.is_alive():
                os.kill(child.process.pid, forward)

    @property
    def stopping(self) -> bool:
        return self._signals > 0

    def _spawn(self, index: int) -> Child:
        hostname = f"luaq-{os.getpid()}-{index}@{self._host}"
        heartbeat = self._context.Value("d", time.monotonic(), lock=False)
        consumer_beat = self._context.Value("d", 0.0, lock=False)
        drain_flag = self._context.Value("b", 0, lock=False)
        process = self._context.Process(
            target=child_main,
            args=(self.settings, hostname, self.queues, self.loglevel, heartbeat, consumer_beat, os.getpid(),
                  drain_flag),
            name=f"luaq-worker-{index}", daemon=False,
        )  # fmt: skip
        process.start()
        log.info("supervisor.process_started", index=index, pid=process.pid, hostname=hostname)
        return Child(index, hostname, process, heartbeat, consumer_beat=consumer_beat, drain_flag=drain_flag)

    def check(self) -> None:
        """One round: replace dead, hung or bloated processes, queue orphaned jobs again."""
        now = self._loop_beat = time.monotonic()
        for child in list(self.children):
            if not child.process.is_alive():
                self._handle_exit(child, killed_for_hang=False)
            elif self._hung(child, now):
                log.error("supervisor.process_hung", pid=child.process.pid,
                          silent_seconds=round(now - child.heartbeat.value, 1))  # fmt: skip
                child.process.kill()
                child.process.join(5)
                self._handle_exit(child, killed_for_hang=True)
            elif not child.draining and child.drain_flag is not None and child.drain_flag.value:
                log.warning("supervisor.process_draining", pid=child.process.pid, reason="a job is stuck in a C call")
                child.draining = True
                if not self.stopping:
                    self.children.append(self._spawn(child.index))
            elif not child.draining and not self.stopping and self._too_big(child):
                log.warning("supervisor.process_draining", pid=child.process.pid,
                            limit_mb=self.settings.worker_max_memory_mb)  # fmt: skip
                child.draining = True
                os.kill(child.process.pid, signal.SIGTERM)
                self.children.append(self._spawn(child.index))
        if now >= self._next_reap:
            self._next_reap = now + REAP_INTERVAL_SECONDS
            try:
                self.store.announce_accounts(self.account_names(), ttl_seconds=ACCOUNTS_TTL_SECONDS)
                announce.announce_limits(self.store.redis, self.name, self.settings.rate_limits,
                                         ttl_seconds=LIMITS_TTL_SECONDS)  # fmt: skip
                self.requeue_orphans()
            except Exception:
                log.exception("supervisor.reap_failed")

    def account_names(self) -> list[str]:
        """The accounts this worker's jobs may name (simulated jobs can always use ``default``)."""
        from .providers import configured_accounts

        names = set(configured_accounts(self.settings))
        if self.settings.simulate:
            names.add("default")
        return sorted(names)

    def _hung(self, child: Child, now: float) -> bool:
        if self.settings.worker_pool != "threads" or now - child.started < HEARTBEAT_TIMEOUT_SECONDS:
            return False
        return now - child.heartbeat.value > HEARTBEAT_TIMEOUT_SECONDS

    def _too_big(self, child: Child) -> bool:
        if self.settings.worker_pool != "threads":
            return False  # Celery's --max-memory-per-child does it for prefork
        return rss_mb(child.process.pid) > self.settings.worker_max_memory_mb

    def _handle_exit(self, child: Child, *, killed_for_hang: bool) -> None:
        self.children.remove(child)
        code = child.process.exitcode
        report = log.info if code == 0 else log.error
        report("supervisor.process_exited", pid=child.process.pid, exitcode=code)
        if self._endpoint is not None:
            self._endpoint.process_gone(child.process.pid)
        try:
            self.recover(child.node, killed_for_hang=killed_for_hang)
        except Exception:
            log.exception("supervisor.recover_failed", node=child.node)
        if not self.stopping and not child.draining:
            self.children.append(self._spawn(child.index))

    def recover(self, node: str, *, killed_for_hang: bool = False) -> list[str]:
        """Queue again the jobs the dead worker process ``node`` was running. When it was
        killed for hanging, those past their wall clock are recorded as stuck instead."""
        if killed_for_hang:
            for job_id in sorted(self.store.redis.smembers(f"luaq:node:{node}")):
                self._finish_if_stuck(job_id, node)
        job_ids = self.store.expire_leases(node)
        if job_ids:
            log.warning("supervisor.jobs_orphaned", node=node, jobs=len(job_ids))
        return self.requeue_orphans()

    def _finish_if_stuck(self, job_id: str, node: str) -> None:
        record = self.store.get(job_id)
        if record is None or record.is_final or record.started_at is None:
            return
        wall = JobRequest.from_stored(record.request).limits_for(self.settings).wall_clock_seconds
        if now_ms() - record.started_at > (wall + MARGIN_SECONDS) * 1000:
            envelope = stuck_envelope(job_id, wall, [], {"worker": node, "attempt": record.attempt},
                                      ended="its worker process was replaced")  # fmt: skip
            if self.store.finish(job_id, JobStatus.LIMIT_EXCEEDED.value, envelope, record.attempt):
                luaq_metrics.record_job(envelope)

    def requeue_orphans(self) -> list[str]:
        """Queue again every running job whose worker is gone; returns their ids."""
        from .client import publish

        requeued = []
        for job_id in self.store.claim_orphans():
            record = self.store.get(job_id)
            if record is None or record.is_final:
                continue
            publish(self.app, self.settings, JobRequest.from_stored(record.request))
            self.store.add_event(job_id, "requeued", {"reason": "its worker process is gone"}, record.attempt)
            log.warning("job.requeued", job_id=job_id, attempt=record.attempt)
            requeued.append(job_id)
        return requeued


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
