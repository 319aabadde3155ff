"""Throughput of the worker (issue 4). Not a test.

    .venv/bin/python ops/bench/throughput.py [--redis-url redis://127.0.0.1:6379/15]
        [--p4-jobs 1000] [--p4-concurrency 500] [--prefork-jobs 40] [--p1-jobs 2000]
        [--p6-samples 100] [--out ops/bench/throughput-report.json]

Everything runs side by side in one run on this machine (shared and noisy), against one
Redis database that is flushed first (it must hold nothing but luaq's and Celery's keys):

- **P4** — ``--p4-jobs`` jobs, each creating a prediction that the simulator (an HTTP
  server in its own process, rate limits raised so that nothing throttles) finishes after
  1 s and waiting for it (``replicate.run``; account limits and the agent's running quota
  lifted; submitted 100 at a time with ``LuaqClient.submit_many``), on one ``luaq worker`` (threads pool, one
  process per CPU, ``--p4-concurrency`` jobs per process): total wall time from the first
  submission to the last finished job, peak resident memory of the worker processes,
  memory per waiting job (peak minus idle, over the jobs waiting at once) and the workers'
  CPU time per job. The same with
  plain prefork at Celery's default concurrency (one process per CPU) and with prefork at
  ``--prefork-many`` processes, on ``--prefork-jobs`` jobs (1,000 would take ~500 s):
  jobs per second, and the time 1,000 jobs would take.
- **P1** — trivial jobs (``return 1``) per second through luaq, divided by a bare Celery
  no-op task with the same broker, pool, concurrency, processes and acknowledgement
  settings: each side's queue is filled first, then its workers start, and the rate is
  counted from the first job's start to the last one's end; each side's worker and Redis
  CPU per job, over the second half of its run, says where the difference goes.
- **P6** — from submission to the first log line on the job's results stream, with a warm
  worker: p50 and p99 over ``--p6-samples`` jobs submitted one at a time.

Prints the figures and writes them as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from worker.client import LuaqClient  # noqa: E402
from worker.runner import WorkerDeps  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store import JobStore  # noqa: E402

CPUS = os.cpu_count() or 1
UNLIMITED = json.dumps({"*": {"create": [1e7, 100_000], "other": [1e7, 100_000], "in_flight": 100_000}})
P4_SCRIPT = """
local prediction = app.integrations.replicate.run({ref = "black-forest-labs/flux-schnell",
                                                  input = {prompt = "bench " .. job.args.n}})
return prediction.status
"""
IN_PROCESS_REDIS_URL = "redis://127.0.0.1:6379/10"  # in-process benches: a database the tests (11-14) leave alone
SUBMIT_CHUNK = 100  # P4 submits with LuaqClient.submit_many, this many jobs a call
BARE_QUEUE = "bare"
BARE_COUNT = "bench:bare:count"
BARE_FIRST = "bench:bare:first"
BARE_LAST = "bench:bare:last"


# -- processes -------------------------------------------------------------------------------


def bench_environ(redis_url: str, **values: str) -> dict[str, str]:
    """This environment without luaq's and Replicate's settings, then luaq's for a bench:
    simulated jobs on ``redis_url``, and one agent (everything here is submitted by one)
    whose running quota is lifted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUAQ_", "REPLICATE_"))}
    env.update(LUAQ_REDIS_URL=redis_url, LUAQ_SIMULATE="1", LUAQ_AGENT_MAX_RUNNING="0", **values)
    return env


def in_process_worker(redis_url: str, name: str, **values: str) -> tuple[Settings, JobStore, WorkerDeps]:
    """What a worker process has, made in this one, on a flushed ``redis_url``: its settings,
    store and job dependencies, its watchdog renewing leases, its collector tuned."""
    from worker import tasks
    from worker.logs import configure_logging

    redis.Redis.from_url(redis_url).flushdb()
    settings = Settings.from_env(bench_environ(redis_url, **values))
    configure_logging(json=True, level="WARNING")
    store = JobStore.from_settings(settings)
    deps = tasks.worker_deps(settings, name, os.getpid())
    deps.watchdog.start()
    tasks.tune_garbage_collection()
    return settings, store, deps


def machine() -> dict[str, Any]:
    """What each report says of the host it was measured on."""
    return {"cpus": CPUS, "python": platform.python_version(), "platform": platform.platform()}


def add_redis_url_option(parser: argparse.ArgumentParser, default: str = IN_PROCESS_REDIS_URL) -> None:
    parser.add_argument("--redis-url", default=default,
                        help="a database of its own, flushed first (the test suite uses 11-14)")  # fmt: skip


def _serve_simulator(port: int, ready: Any) -> None:
    from api_client.simulator import RateLimits, Simulator, serve

    limits = RateLimits(create_per_minute=1e7, other_per_minute=1e7, create_burst=1e6, other_burst=1e6)
    server = serve(Simulator(prediction_seconds=1.0, public_base_url=None, rate_limits=limits), "127.0.0.1", port)
    ready.put(server.port)
    server.serve_forever()


def start_simulator() -> tuple[multiprocessing.Process, str]:
    """The simulator in a process of its own; its CPU time is part of each run's budget."""
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    process = context.Process(target=_serve_simulator, args=(0, ready), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{ready.get(timeout=30)}"


def bare_celery_app(url: str, concurrency: int) -> Any:
    """A bare Celery app with luaq's broker, pool and acknowledgement settings."""
    from celery import Celery

    app = Celery("bare", broker=url, set_as_current=False)
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                    task_ignore_result=True, task_serializer="json", accept_content=["json"],
                    broker_connection_retry_on_startup=True, worker_send_task_events=False,
                    task_default_queue=BARE_QUEUE, worker_hijack_root_logger=False)  # fmt: skip
    counter = redis.Redis.from_url(url)

    @app.task(name="bare.noop", ignore_result=True)
    def noop() -> None:
        now = time.time()
        with counter.pipeline(transaction=False) as pipe:
            pipe.set(BARE_FIRST, now, nx=True).set(BARE_LAST, now).incr(BARE_COUNT)
            pipe.execute()

    return app


def _bare_worker(url: str, concurrency: int, index: int) -> None:
    app = bare_celery_app(url, concurrency)
    app.worker_main(["worker", "--pool=threads", f"--concurrency={concurrency}", "-Q", BARE_QUEUE,
                     f"--hostname=bare-{os.getpid()}-{index}@%h", "--without-mingle", "--without-gossip",
                     "--loglevel=WARNING"])  # fmt: skip


class Workers:
    def __init__(self, processes: list[Any]) -> None:
        self.processes = processes

    def pids(self) -> list[int]:
        found = []
        for process in self.processes:
            found.append(process.pid)
            found += descendants(process.pid)
        return found

    def rss_mb(self) -> float:
        return sum(rss_mb(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        """User plus system CPU time the worker processes have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            waiter = process.wait if hasattr(process, "wait") else process.join
            try:
                waiter(30)
            except subprocess.TimeoutExpired:
                process.kill()
            if hasattr(process, "join") and process.is_alive():
                process.kill()


def start_luaq(env: dict[str, str], log_dir: Path, *args: str) -> Workers:
    log = open(log_dir / f"luaq-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--loglevel", "WARNING", *args],
                               env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    return Workers([process])


def start_bare(url: str, concurrency: int, processes: int) -> Workers:
    context = multiprocessing.get_context("spawn")
    started = [context.Process(target=_bare_worker, args=(url, concurrency, i)) for i in range(processes)]
    for process in started:
        process.start()
    return Workers(started)


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    children = [int(p) for p in out]
    return children + [g for c in children for g in descendants(c)]


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class PeakMemory:
    """Samples the workers' resident memory every 50 ms until stopped."""

    def __init__(self, workers: Workers) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._workers = workers
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._workers.rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


class HostCpu:
    """CPU seconds spent during a run by each process on the host that takes part in it:
    the workers, Redis, the simulator and this benchmark (the submitter). On a 2-CPU
    machine their sum over the run's wall time shows how close the run came to using
    both CPUs, i.e. whether it was bound by CPU or by waiting."""

    def __init__(self, workers: Workers, r: redis.Redis, simulator: Workers) -> None:
        self._sources = {"workers": workers.cpu_seconds, "redis": redis_cpu(r), "simulator": simulator.cpu_seconds,
                         "submitter": time.process_time}  # fmt: skip
        self._before = {name: read() for name, read in self._sources.items()}

    def spent(self) -> dict[str, float]:
        return {name: round(read() - self._before[name], 2) for name, read in self._sources.items()}


def redis_cpu(r: redis.Redis) -> Callable[[], float]:
    """Reads the CPU time the Redis server behind ``r`` has used (it runs on this host)."""
    return functools.partial(cpu_seconds, int(r.info("server")["process_id"]))


def job_timeline(r: redis.Redis, job_ids: list[str], since_ms: int) -> dict[str, list[float]]:
    """Percentiles (p50, p90, p99, max; seconds) of when the jobs were stored (from the
    first submission), how long each waited in the queue, ran, and when it finished."""
    rows = []
    with r.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(f"luaq:job:{job_id}", "created_at", "started_at", "finished_at")
        for created, started, finished in pipe.execute():
            if created and started and finished:
                rows.append((int(created), int(started), int(finished)))

    def spread(values: list[int]) -> list[float]:
        values.sort()
        return [round(values[min(len(values) - 1, int(len(values) * q))] / 1000, 2) for q in (0.5, 0.9, 0.99)] + [
            round(values[-1] / 1000, 2)
        ]

    return {"stored_at": spread([c - since_ms for c, _s, _f in rows]),
            "queued_for": spread([s - c for c, s, _f in rows]),
            "ran_for": spread([f - s for _c, s, f in rows]),
            "finished_at": spread([f - since_ms for _c, _s, f in rows])}  # fmt: skip


# -- measurements ----------------------------------------------------------------------------


def fresh(url: str) -> redis.Redis:
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    return r


def wait_finished(r: redis.Redis, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while r.xlen("luaq:finished") < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {r.xlen('luaq:finished')} of {count} jobs finished in {timeout} s")
        time.sleep(0.01)


def statuses(r: redis.Redis) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _id, fields in r.xrange("luaq:finished"):
        counts[fields["status"]] = counts.get(fields["status"], 0) + 1
    return counts


def warm_up(client: LuaqClient, jobs: int = 4) -> None:
    ids = [client.submit({"script": "return 0"}).job_id for _ in range(jobs)]
    for job_id in ids:
        client.wait(job_id, timeout=120)


def run_p4(url: str, env: dict[str, str], log_dir: Path, jobs: int, *worker_args: str,
           simulator: Workers) -> dict[str, Any]:  # fmt: skip
    r = fresh(url)
    settings = Settings.from_env(env)
    client = LuaqClient.from_settings(settings)
    workers = start_luaq(env, log_dir, *worker_args)
    try:
        warm_up(client)
        r.delete("luaq:finished")
        idle = workers.rss_mb()
        memory = PeakMemory(workers)
        host_cpu = HostCpu(workers, r, simulator)
        seconds, micros = r.time()
        started, started_ms = time.monotonic(), seconds * 1000 + micros // 1000
        ids = []
        for first in range(0, jobs, SUBMIT_CHUNK):
            ids += [s.job_id for s in client.submit_many({"script": P4_SCRIPT, "args": {"n": n}, "allow_writes": True}
                                                         for n in range(first, min(jobs, first + SUBMIT_CHUNK)))]  # fmt: skip
        submitted = time.monotonic() - started
        wait_finished(r, jobs, timeout=max(120, jobs * 2.0))
        total = time.monotonic() - started
        spent = host_cpu.spent()
        cpu = spent["workers"]
        peak = memory.stop()
        waiting = min(jobs, _concurrent_capacity(worker_args))
        return {"jobs": jobs, "worker": " ".join(worker_args), "total_seconds": round(total, 2),
                "submit_seconds": round(submitted, 2), "jobs_per_second": round(jobs / total, 1),
                "seconds_for_1000": round(1000 / (jobs / total), 1), "statuses": statuses(r),
                "idle_rss_mb": round(idle, 1), "peak_rss_mb": round(peak, 1),
                "mb_per_waiting_job": round((peak - idle) / waiting, 3), "waiting_at_once": waiting,
                "worker_cpu_ms_per_job": round(cpu / jobs * 1000, 2), "host_cpu_seconds": spent,
                "host_cpu_busy": round(sum(spent.values()) / (total * CPUS), 2),
                "timeline_seconds": job_timeline(r, ids, started_ms)}  # fmt: skip
    finally:
        workers.stop()
        client.close()


def _concurrent_capacity(worker_args: tuple[str, ...]) -> int:
    options = dict(zip(worker_args[::2], worker_args[1::2], strict=False))
    if options.get("--pool") == "prefork":
        return int(options.get("--concurrency", CPUS))
    return int(options.get("--processes", CPUS)) * int(options.get("--concurrency", 100))


def run_p1_luaq(url: str, env: dict[str, str], log_dir: Path, jobs: int, concurrency: int) -> dict[str, Any]:
    r = fresh(url)
    client = LuaqClient.from_settings(Settings.from_env(env))
    ids = [s.job_id for s in client.submit_many({"script": "return 1"} for _ in range(jobs))]
    workers = start_luaq(env, log_dir, "--pool", "threads", "--processes", str(CPUS), "--concurrency", str(concurrency))
    try:
        cost = cpu_per_message(workers, r, lambda: r.xlen("luaq:finished"), jobs)
        starts, ends = [], []
        with r.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(f"luaq:job:{job_id}", "started_at", "finished_at")
            for started_at, finished_at in pipe.execute():
                starts.append(int(started_at))
                ends.append(int(finished_at))
        seconds = (max(ends) - min(starts)) / 1000
        return {"jobs": jobs, "seconds": round(seconds, 3), "jobs_per_second": round(jobs / seconds, 1),
                "statuses": statuses(r), **cost}  # fmt: skip
    finally:
        workers.stop()
        client.close()


def run_p1_bare(url: str, jobs: int, concurrency: int) -> dict[str, Any]:
    r = fresh(url)
    app = bare_celery_app(url, concurrency)
    with app.producer_or_acquire() as producer:
        for _ in range(jobs):
            app.send_task("bare.noop", producer=producer, queue=BARE_QUEUE)
    workers = start_bare(url, concurrency, CPUS)
    try:
        cost = cpu_per_message(workers, r, lambda: int(r.get(BARE_COUNT) or 0), jobs)
        seconds = float(r.get(BARE_LAST)) - float(r.get(BARE_FIRST))
        return {"jobs": jobs, "seconds": round(seconds, 3), "jobs_per_second": round(jobs / seconds, 1), **cost}
    finally:
        workers.stop()


def cpu_per_message(workers: Workers, r: redis.Redis, done: Callable[[], int], total: int) -> dict[str, float]:
    """Wait until ``done()`` reaches ``total``; the workers' and Redis's CPU per job over
    the run's second half, when the workers are long started (their start-up costs
    seconds of CPU, which would swamp a run of a few seconds)."""
    redis_seconds = redis_cpu(r)
    deadline = time.monotonic() + 300
    marks: list[tuple[int, float, float]] = []
    while True:
        count = done()
        if not marks and count >= total // 2:
            marks.append((count, workers.cpu_seconds(), redis_seconds()))
        if count >= total:
            marks.append((count, workers.cpu_seconds(), redis_seconds()))
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count} of {total} jobs done in 300 s")
        time.sleep(0.005)
    (first, worker_before, redis_before), (last, worker_after, redis_after) = marks
    jobs = max(1, last - first)
    return {"worker_cpu_ms_per_job": round((worker_after - worker_before) / jobs * 1000, 3),
            "redis_cpu_ms_per_job": round((redis_after - redis_before) / jobs * 1000, 3)}  # fmt: skip


def run_p6(url: str, env: dict[str, str], log_dir: Path, samples: int) -> dict[str, Any]:
    r = fresh(url)
    client = LuaqClient.from_settings(Settings.from_env(env))
    workers = start_luaq(env, log_dir, "--pool", "threads", "--processes", str(CPUS))
    try:
        warm_up(client, 8)
        latencies = []
        for _ in range(samples):
            started = time.monotonic()
            job_id = client.submit({"script": 'print("first") return 1'}).job_id
            after = "0-0"
            while True:
                reply = r.xread({f"luaq:events:{job_id}": after}, block=5000) or []
                events = [(i, f) for _s, entries in reply for i, f in entries]
                if not events:
                    raise TimeoutError(f"no log line from {job_id}")
                if any(f.get("type") == "log" for _i, f in events):
                    break
                after = events[-1][0]
            latencies.append((time.monotonic() - started) * 1000)
            client.wait(job_id, timeout=30)
        latencies.sort()
        return {"samples": samples, "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
                "max_ms": round(latencies[-1], 2)}  # fmt: skip
    finally:
        workers.stop()
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_redis_url_option(parser, "redis://127.0.0.1:6379/15")
    parser.add_argument("--p4-jobs", type=int, default=1000)
    parser.add_argument("--p4-concurrency", type=int, default=500, help="jobs per worker process (threads pool)")
    parser.add_argument("--p4-processes", type=int, default=CPUS, help="worker processes (threads pool)")
    parser.add_argument("--prefork-jobs", type=int, default=40)
    parser.add_argument("--prefork-many", type=int, default=32, help="processes of the many-process prefork run")
    parser.add_argument("--p1-jobs", type=int, default=2000)
    parser.add_argument("--p1-concurrency", type=int, default=100)
    parser.add_argument("--p6-samples", type=int, default=100)
    parser.add_argument("--only", default="p4,p1,p6", help="which measurements, comma-separated (default: all)")
    parser.add_argument("--out", default=str(REPO / "ops" / "bench" / "throughput-report.json"))
    args = parser.parse_args(argv)
    only = set(args.only.split(","))

    simulator, simulator_url = start_simulator()
    args.simulator = Workers([simulator])
    log_dir = Path(tempfile.mkdtemp(prefix="luaq-throughput-"))
    env = bench_environ(args.redis_url, LUAQ_SIMULATOR_URL=simulator_url, LUAQ_RATE_LIMITS=UNLIMITED,
                        PYTHONPATH=str(REPO))  # fmt: skip
    report: dict[str, Any] = {"machine": machine(), "logs": str(log_dir)}
    try:
        if "p4" in only:
            measure_p4(args, env, log_dir, report)
        if "p1" in only:
            measure_p1(args, env, log_dir, report)
        if "p6" in only:
            p6 = run_p6(args.redis_url, env, log_dir, args.p6_samples)
            report["p6"] = p6
            print(f"P6: submission to first log line p50 {p6['p50_ms']} ms (goal <= 20), p99 {p6['p99_ms']} ms")
    finally:
        simulator.kill()
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.out}")
    return 0


def measure_p4(args: argparse.Namespace, env: dict[str, str], log_dir: Path, report: dict[str, Any]) -> None:
    threads_args = (
        "--pool",
        "threads",
        "--processes",
        str(args.p4_processes),
        "--concurrency",
        str(args.p4_concurrency),
    )
    p4 = run_p4(args.redis_url, env, log_dir, args.p4_jobs, *threads_args, simulator=args.simulator)
    print(f"P4 threads: {p4['jobs']} jobs in {p4['total_seconds']} s (goal <= 5 s), peak {p4['peak_rss_mb']} MB, "
          f"{p4['mb_per_waiting_job']} MB per waiting job, {p4['worker_cpu_ms_per_job']} ms of worker CPU per job, "
          f"{p4['statuses']}")  # fmt: skip
    timeline = p4["timeline_seconds"]
    print(f"   where the time went (p50/p90/p99/max s): stored {timeline['stored_at']}, queued "
          f"{timeline['queued_for']}, ran {timeline['ran_for']}, finished {timeline['finished_at']}; CPU seconds "
          f"{p4['host_cpu_seconds']}, host CPUs busy {p4['host_cpu_busy']:.0%}")  # fmt: skip
    if args.prefork_jobs == 0:
        report["p4"] = {"threads": p4}
        return
    prefork = run_p4(args.redis_url, env, log_dir, args.prefork_jobs, "--pool", "prefork", simulator=args.simulator)
    print(f"P4 prefork (default, {CPUS} processes): {prefork['jobs_per_second']} jobs/s -> "
          f"{prefork['seconds_for_1000']} s for 1000, peak {prefork['peak_rss_mb']} MB")  # fmt: skip
    many = run_p4(args.redis_url, env, log_dir, max(args.prefork_jobs, args.prefork_many * 4), "--pool", "prefork",
                  "--concurrency", str(args.prefork_many), simulator=args.simulator)  # fmt: skip
    print(f"P4 prefork ({args.prefork_many} processes): {many['jobs_per_second']} jobs/s -> "
          f"{many['seconds_for_1000']} s for 1000, peak {many['peak_rss_mb']} MB, "
          f"{many['mb_per_waiting_job']} MB per waiting job")  # fmt: skip
    report["p4"] = {"threads": p4, "prefork_default": prefork, "prefork_many": many,
                    "speedup_vs_prefork_default": round(p4["jobs_per_second"] / prefork["jobs_per_second"], 1)}  # fmt: skip


def measure_p1(args: argparse.Namespace, env: dict[str, str], log_dir: Path, report: dict[str, Any]) -> None:
    luaq_p1 = run_p1_luaq(args.redis_url, env, log_dir, args.p1_jobs, args.p1_concurrency)
    bare_p1 = run_p1_bare(args.redis_url, args.p1_jobs, args.p1_concurrency)
    ratio = luaq_p1["jobs_per_second"] / bare_p1["jobs_per_second"]
    report["p1"] = {"luaq": luaq_p1, "bare_celery": bare_p1, "ratio": round(ratio, 3),
                    "concurrency": args.p1_concurrency, "processes": CPUS}  # fmt: skip
    print(f"P1: luaq {luaq_p1['jobs_per_second']}/s, bare Celery {bare_p1['jobs_per_second']}/s, "
          f"ratio {ratio:.2f} (goal >= 0.9); CPU per job: luaq's workers {luaq_p1['worker_cpu_ms_per_job']} ms "
          f"(Redis {luaq_p1['redis_cpu_ms_per_job']}), bare Celery's {bare_p1['worker_cpu_ms_per_job']} ms "
          f"(Redis {bare_p1['redis_cpu_ms_per_job']})")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
