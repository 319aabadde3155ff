"""CPU per trivial job inside one worker process, by how many jobs run at once. Not a test.

    .venv/bin/python ops/bench/job_cpu.py [--redis-url redis://127.0.0.1:6379/10]
        [--jobs 3000] [--threads 1,4,16,100] [--out ops/bench/job-cpu-report.json]

Runs ``return 1`` jobs through :func:`worker.runner.run_job` in this process (no Celery:
the jobs are stored, never queued), the way a threads-pool worker runs them, and reports
the process's CPU per job:

- with 1 thread, then with each count in ``--threads`` running jobs at once;
- the same counts with a process-wide lock around each whole job (only one job of the
  process works at a time, so the others never compete for the GIL).

The ratio of each to the 1-thread figure is the price of running jobs side by side in
threads: lupa gives the GIL up and takes it back at every crossing between Python and
Lua, and each Redis round trip does too, so jobs running at once hand the GIL back and
forth through the kernel (``perf``: 37% of a busy worker's CPU in futex wake-ups and
context switches). Everything is measured side by side in one run and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops" / "bench"))

from throughput import add_redis_url_option, in_process_worker, machine  # noqa: E402

from worker.job import JobRequest  # noqa: E402
from worker.runner import WorkerDeps, run_job  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store import JobStore  # noqa: E402


def measure(store: JobStore, deps: WorkerDeps, settings: Settings, jobs: int, threads: int,
            serialized: bool) -> dict[str, Any]:  # fmt: skip
    requests = [JobRequest.from_dict({"script": "return 1"}, settings) for _ in range(jobs)]
    store.create_many(requests)
    lock = threading.Lock() if serialized else None
    failures: list[str] = []

    def work(share: list[JobRequest]) -> None:
        for request in share:
            with lock or nullcontext():
                envelope = run_job(request.job_id, deps)
            if envelope is None or envelope["status"] != "succeeded":
                failures.append(request.job_id)

    workers = [threading.Thread(target=work, args=(requests[i::threads],)) for i in range(threads)]
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if failures:
        raise RuntimeError(f"{len(failures)} jobs did not succeed, e.g. {failures[0]}")
    return {"threads": threads, "serialized": serialized, "jobs": jobs, "jobs_per_second": round(jobs / wall),
            "cpu_ms_per_job": round(cpu / jobs * 1000, 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_redis_url_option(parser)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--threads", default="1,4,16,100")
    parser.add_argument("--out", default=str(REPO / "ops" / "bench" / "job-cpu-report.json"))
    args = parser.parse_args(argv)
    settings, store, deps = in_process_worker(args.redis_url, "bench")
    measure(store, deps, settings, 200, 1, False)  # warm up

    counts = [int(n) for n in args.threads.split(",")]
    baseline = measure(store, deps, settings, args.jobs, 1, False)
    rows = [baseline]
    print(f"1 thread: {baseline['cpu_ms_per_job']} ms of CPU per job, {baseline['jobs_per_second']} jobs/s")
    for count in (n for n in counts if n > 1):
        side = [measure(store, deps, settings, args.jobs, count, serialized) for serialized in (False, True)]
        rows += side
        free, locked = side
        print(f"{count} threads: {free['cpu_ms_per_job']} ms per job "
              f"({free['cpu_ms_per_job'] / baseline['cpu_ms_per_job']:.2f}x one thread); one job at a time: "
              f"{locked['cpu_ms_per_job']} ms ({locked['cpu_ms_per_job'] / baseline['cpu_ms_per_job']:.2f}x)")  # fmt: skip
    report = {"machine": machine(), "runs": rows}  # fmt: skip
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
