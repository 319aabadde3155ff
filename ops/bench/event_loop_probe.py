"""How much CPU would P4's jobs cost on one asyncio event loop? A probe, not a test.

    .venv/bin/python ops/bench/event_loop_probe.py [--jobs 1000] [--redis-url redis://127.0.0.1:6379/10]
        [--out ops/bench/event-loop-probe-report.json]

Issue 4 asks for the OpenResty shape: every script a coroutine, every blocking call a
yield to an event loop. Before building it, this measures what it would save, side by
side in one run, on P4's job (``replicate.run`` of a prediction the simulator finishes
after 1 s):

- **threads**: ``--jobs`` jobs through :func:`worker.runner.run_job`, each on a thread of
  its own, as a threads-pool worker process runs them (no Celery: the jobs are stored and
  run directly);
- **event loop**: the same stored jobs in one thread: each job's :class:`ScriptRun` is
  driven by a coroutine on an asyncio loop, its Redis bookkeeping done in place (``BEGIN``,
  the rate token, the in-flight slot, the fenced journal entry and its outcome, the call
  event, ``FINISH``: the same scripts, synchronous, a fraction of a millisecond each) and
  its HTTP request made with ``httpx.AsyncClient`` while the loop runs the other jobs.

The event-loop side is a sketch of the call path, not the product's: it speaks to the
simulator's one route P4 uses and skips api_client's argument validation, retries and
error mapping. Its figure is therefore a floor for that design; the threads figure is
the real code. Both print CPU per job for the whole process and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops" / "bench"))

import httpx  # noqa: E402
from throughput import P4_SCRIPT, UNLIMITED, add_redis_url_option, in_process_worker, machine, start_simulator  # noqa: E402

from sandbox import CallOutcome  # noqa: E402
from sandbox._bridge import CallResult, ProviderCall  # noqa: E402
from sandbox._runtime import Pending, ScriptRun  # noqa: E402
from worker.job import JobRequest  # noqa: E402
from worker.runner import WorkerDeps, run_job  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store import JobStore, now_ms  # noqa: E402

MODEL_PATH = "/v1/models/black-forest-labs/flux-schnell/predictions"
TLS = httpx.create_ssl_context()


def store_jobs(store: JobStore, settings: Settings, count: int) -> list[str]:
    requests = [JobRequest.from_dict({"script": P4_SCRIPT, "args": {"n": n}, "allow_writes": True}, settings)
                for n in range(count)]  # fmt: skip
    store.create_many(requests)
    return [request.job_id for request in requests]


def run_threads(deps: WorkerDeps, job_ids: list[str]) -> dict[str, Any]:
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda j=job_id: outcomes.append(run_job(j, deps)["status"]))
               for job_id in job_ids]  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _figures("threads", job_ids, outcomes, time.perf_counter() - wall, time.process_time() - cpu)


class LoopJob:
    """One job driven on the loop: its Redis bookkeeping in place, its HTTP awaited."""

    def __init__(self, deps: WorkerDeps, http: httpx.AsyncClient, base_url: str, job_id: str) -> None:
        self.deps, self.http, self.base_url, self.job_id = deps, http, base_url, job_id

    async def run(self) -> str:
        store, settings = self.deps.store, self.deps.settings
        begun = store.begin(self.job_id, self.deps.worker_name)
        request = JobRequest.from_dict(begun.request, settings, delivered=True)
        providers = self.deps.provider_factory(settings, account=request.account, simulate=True,
                                               limiter=self.deps.limiter)  # fmt: skip

        def on_call(entry: dict[str, Any]) -> None:
            store.add_event(self.job_id, "call", entry, begun.attempt)

        run = ScriptRun(request.script, providers=providers, args=request.args, limits=request.limits_for(settings),
                        allow_writes=True, on_call=on_call, job_id=self.job_id)  # fmt: skip
        step = run.start()
        while isinstance(step, Pending):
            assert isinstance(step.request, ProviderCall)
            step = run.resume(await self.call(step.request, begun.attempt))
        envelope = step.envelope.to_dict()
        store.finish(self.job_id, envelope["status"], envelope, begun.attempt)
        return envelope["status"]

    async def call(self, call: ProviderCall, attempt: int) -> CallResult:
        store, limiter = self.deps.store, self.deps.limiter
        started = time.monotonic()
        limiter.acquire("default", "create", timeout=None)
        with limiter.in_flight("default", timeout=None):
            index = store.journal_append(self.job_id, {"operation": "run", "at": now_ms()}, attempt)
            response = await self.http.post(self.base_url + MODEL_PATH, json={"input": call.args["input"]},
                                            headers={"Prefer": "wait", "Authorization": "Bearer r8_sim_default"})  # fmt: skip
            prediction = response.json()
            store.journal_update(self.job_id, index, {"operation": "run", "prediction": prediction.get("id")})
        return CallResult(started, time.monotonic(), outcome=CallOutcome(prediction, response.status_code))


def run_loop(deps: WorkerDeps, base_url: str, job_ids: list[str]) -> dict[str, Any]:
    async def one(job_id: str) -> str:
        # A client per job: httpcore's pool looks at every connection it holds whenever a
        # request starts or ends, so one pool for hundreds of waiting requests costs O(n) each.
        async with httpx.AsyncClient(timeout=30, verify=TLS) as http:
            return await LoopJob(deps, http, base_url, job_id).run()

    async def main() -> list[str]:
        return await asyncio.gather(*(one(job_id) for job_id in job_ids))

    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = asyncio.run(main())
    return _figures("event loop", job_ids, outcomes, time.perf_counter() - wall, time.process_time() - cpu)


def _figures(name: str, job_ids: list[str], outcomes: list[str], wall: float, cpu: float) -> dict[str, Any]:
    statuses = {status: outcomes.count(status) for status in set(outcomes)}
    return {"driver": name, "jobs": len(job_ids), "wall_seconds": round(wall, 2),
            "cpu_ms_per_job": round(cpu / len(job_ids) * 1000, 2), "statuses": statuses}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_redis_url_option(parser)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="each driver this many times, alternating")
    parser.add_argument("--out", default=str(REPO / "ops" / "bench" / "event-loop-probe-report.json"))
    args = parser.parse_args(argv)
    simulator, simulator_url = start_simulator()
    try:
        settings, store, deps = in_process_worker(args.redis_url, "probe", LUAQ_SIMULATOR_URL=simulator_url,
                                                  LUAQ_RATE_LIMITS=UNLIMITED)  # fmt: skip
        run_threads(deps, store_jobs(store, settings, 20))  # warm up both paths
        run_loop(deps, simulator_url, store_jobs(store, settings, 20))
        rows = []
        for _ in range(args.rounds):
            for driver in (run_threads, run_loop):
                ids = store_jobs(store, settings, args.jobs)
                row = driver(deps, ids) if driver is run_threads else driver(deps, simulator_url, ids)
                rows.append(row)
                print(f"{row['driver']}: {row['jobs']} jobs in {row['wall_seconds']} s, "
                      f"{row['cpu_ms_per_job']} ms of CPU per job, {row['statuses']}")  # fmt: skip
        threads = [r["cpu_ms_per_job"] for r in rows if r["driver"] == "threads"]
        loop = [r["cpu_ms_per_job"] for r in rows if r["driver"] == "event loop"]
        ratio = min(loop) / min(threads)
        print(f"event loop / threads, CPU per job: {ratio:.2f}")
        report = {"machine": machine(), "runs": rows, "cpu_ratio": round(ratio, 3)}  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {args.out}")
    finally:
        simulator.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
