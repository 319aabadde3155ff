"""Benchmark of the shared rate limiter (issue 6, done-when 1). Not a test.

    .venv/bin/python ops/bench/ratelimit.py --redis-url redis://127.0.0.1:6379/14 [--duration 130]
        [--workers 4] [--concurrency 4] [--per-minute 600] [--burst 20] [--out ops/bench/ratelimit-report.json]

Starts an HTTP simulator in this process (its own rate limits off, so luaq's limiter is what
binds; it records the time of every request it receives) and ``--workers`` ``luaq worker``
processes on the given Redis, all with one account configured at ``--per-minute`` creates a
minute with a burst of ``--burst`` (``LUAQ_RATE_LIMITS``). It then submits ``workers x
concurrency`` jobs that create predictions as fast as they can for ``--duration`` seconds,
and reports, from the simulator's own record:

- the most creates in any sliding 60 s window (must not exceed per-minute + burst);
- the achieved rate over the run, and the steady rate (the burst left out), each divided by
  the configured rate (goal >= 0.95);
- the fewest creates in any 60 s window lying wholly inside the run.

Prints the figures and writes them as JSON. The jobs use their own queue and account
(``bench``), so a Redis shared with other work is left alone apart from that account's keys.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from api_client.simulator import Simulator, serve  # noqa: E402
from worker.client import LuaqClient  # noqa: E402
from worker.settings import Settings  # noqa: E402

ACCOUNT = "bench"
WINDOW_SECONDS = 60.0

# Create predictions until the deadline (epoch seconds, job.args.until); return how many.
CREATE_LOOP = """
local created = 0
while os.time() < job.args["until"] do
  app.integrations.replicate.create_prediction({
    version = "replicate-version-id", input = { prompt = "bench " .. created },
  })
  created = created + 1
end
return created
"""


def max_in_window(times: list[float], window: float = WINDOW_SECONDS) -> int:
    """The most timestamps in any half-open window [t, t + window)."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
    return best


def min_in_full_window(times: list[float], window: float = WINDOW_SECONDS) -> int | None:
    """The fewest timestamps in a window [t, t + window) lying wholly inside the run
    (t from the first timestamp to the last minus the window, in 0.1 s steps)."""
    if not times or times[-1] - times[0] < window:
        return None
    fewest, start = len(times), times[0]
    while start + window <= times[-1]:
        fewest = min(fewest, bisect.bisect_left(times, start + window) - bisect.bisect_left(times, start))
        start += 0.1
    return fewest


def start_simulator() -> tuple[Simulator, Any]:
    sim = Simulator(prediction_seconds=0.5, public_base_url=None, rate_limits=None, record_requests=2_000_000)
    server = serve(sim, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, name="simulator", daemon=True).start()
    return sim, server


def start_workers(count: int, concurrency: int, env: dict[str, str], log_dir: Path) -> list[subprocess.Popen]:
    processes = []
    for number in range(count):
        log = open(log_dir / f"worker-{number}.log", "wb")  # noqa: SIM115 (the child keeps it)
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "worker.cli",
                    "worker",
                    "--simulate",
                    "--processes",
                    "1",
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    "WARNING",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return processes


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("LUAQ_REDIS_URL") or "redis://127.0.0.1:6379/14")
    parser.add_argument("--duration", type=float, default=130.0, help="seconds the jobs create for (default 130)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="jobs each worker runs at once")
    parser.add_argument("--per-minute", type=float, default=600.0, help="the account's configured create rate")
    parser.add_argument("--burst", type=int, default=20, help="the account's configured burst")
    parser.add_argument("--out", default=str(REPO / "ops" / "bench" / "ratelimit-report.json"))
    options = parser.parse_args(argv)

    connection = redis.Redis.from_url(options.redis_url)
    connection.ping()
    for key in connection.scan_iter(f"luaq:*:{ACCOUNT}*"):  # this account's buckets, leases, counters
        connection.delete(key)
    sim, server = start_simulator()
    queue = f"bench-ratelimit-{os.getpid()}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LUAQ_", "REPLICATE_"))}
    env.update(
        PYTHONPATH=str(REPO),
        LUAQ_REDIS_URL=options.redis_url,
        LUAQ_QUEUE=queue,
        LUAQ_SIMULATE="1",
        LUAQ_SIMULATOR_URL=server.base_url,
        LUAQ_RATE_LIMITS=json.dumps({ACCOUNT: {"create": [options.per_minute, options.burst]}}),
        REPLICATE_API_TOKEN_BENCH="r8_bench_never_sent",
        LUAQ_MAX_PREDICTIONS="1000000",
        LUAQ_MAX_WRITES="1000000",
        LUAQ_MAX_WALL_CLOCK_SECONDS=str(int(options.duration + 600)),
    )
    settings = Settings.from_env(env)
    client = LuaqClient.from_settings(settings)
    log_dir = Path(tempfile.mkdtemp(prefix="luaq-bench-ratelimit-"))
    processes = start_workers(options.workers, options.concurrency, env, log_dir)
    started = time.perf_counter()
    try:
        warm = [client.submit({"script": "return 1", "account": ACCOUNT}).job_id for _ in range(options.workers * 2)]
        for job_id in warm:
            client.wait(job_id, timeout=120)
        until = int(time.time() + options.duration)
        limits = {"wall_clock_seconds": options.duration + 120, "calls": 10_000}
        jobs = [
            client.submit(
                {
                    "script": CREATE_LOOP,
                    "account": ACCOUNT,
                    "allow_writes": True,
                    "args": {"until": until},
                    "limits": limits,
                }
            ).job_id
            for _ in range(options.workers * options.concurrency)
        ]
        envelopes = [client.wait(job_id, timeout=options.duration + 300) for job_id in jobs]
    finally:
        stop_workers(processes)
        client.close()
        server.shutdown()
        server.server_close()

    failed = [e for e in envelopes if e["status"] != "succeeded"]
    creates = sorted(r.time for r in sim.requests if r.route == "create_prediction" and r.user == f"luaq-sim-{ACCOUNT}")
    throttled = sum(r.status == 429 for r in sim.requests)
    span = creates[-1] - creates[0] if len(creates) > 1 else 0.0
    most = max_in_window(creates)
    fewest = min_in_full_window(creates)
    achieved_per_minute = len(creates) / span * 60 if span else 0.0
    steady_per_minute = (len(creates) - options.burst) / span * 60 if span else 0.0
    waits = [c.get("rate_limit_wait_ms", 0.0) for e in envelopes for c in e["integration_calls"]]
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "setup": {
            "workers": options.workers,
            "concurrency": options.concurrency,
            "jobs": len(envelopes),
            "duration_seconds": options.duration,
            "configured_per_minute": options.per_minute,
            "configured_burst": options.burst,
            "simulator_rate_limit": "off",
        },
        "creates": len(creates),
        "creates_returned_by_jobs": sum(e["result"][0] for e in envelopes if e["status"] == "succeeded"),
        "span_seconds": round(span, 3),
        "max_in_60s_window": most,
        "max_allowed_in_60s_window": int(options.per_minute + options.burst),
        "min_in_full_60s_window": fewest,
        "achieved_per_minute": round(achieved_per_minute, 1),
        "achieved_over_configured": round(achieved_per_minute / options.per_minute, 4),
        "steady_per_minute": round(steady_per_minute, 1),
        "steady_over_configured": round(steady_per_minute / options.per_minute, 4),
        "mean_rate_limit_wait_ms_per_create": round(sum(waits) / max(len(waits), 1), 1),
        "simulator_429s": throttled,
        "failed_jobs": [{"status": e["status"], "error": e["error"]} for e in failed],
        "goals": {"max_in_60s_window": f"<= {int(options.per_minute + options.burst)}", "ratio": ">= 0.95"},
        "seconds": round(time.perf_counter() - started, 1),
        "worker_logs": str(log_dir),
    }

    print(f"{len(envelopes)} jobs on {options.workers} workers x {options.concurrency}, "
          f"{len(creates)} creates in {span:.1f} s against {options.per_minute:g}/min (burst {options.burst})")  # fmt: skip
    print(f"max creates in any 60 s window: {most} (limit {int(options.per_minute + options.burst)}; "
          f"{most / (options.per_minute + options.burst):.3f} of it)")  # fmt: skip
    print(f"fewest creates in a full 60 s window inside the run: {fewest}")
    print(f"achieved {achieved_per_minute:.1f}/min = {report['achieved_over_configured']} of configured; "
          f"steady (burst left out) {steady_per_minute:.1f}/min = {report['steady_over_configured']} (goal >= 0.95)")  # fmt: skip
    print(f"simulator 429s: {throttled}; failed jobs: {len(failed)}; "
          f"mean limiter wait per create {report['mean_rate_limit_wait_ms_per_create']} ms")  # fmt: skip
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {options.out} ({report['seconds']} s)")
    ok = most <= options.per_minute + options.burst and report["steady_over_configured"] >= 0.95 and not failed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
