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
the real code. With ``greenlet`` installed (``pip install -e ".[bench]"``) two more drivers
run the real code on one loop, the way SQLAlchemy runs its sync core on asyncio:

- **greenlet loop**: each job's whole :func:`~worker.runner.run_job` in a greenlet of its
  own on the loop's thread; its HTTP goes through httpx's async transport (the sync
  client's transport hands each request to the loop and switches to it until the answer
  is in) and its sleeps are the loop's; Redis calls and Lua run in place, on the loop;
- **greenlet loop, Lua in threads**: the same, but each Lua slice (``ScriptRun.start`` /
  ``resume``) runs in a pool of four threads, so that a script stuck in a C call would
  hold one of them rather than the loop.

Both drop the driver's call thread and its cancel wait (a sketch: the point is the CPU).
All drivers print CPU per job for the whole process and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import json
import sys
import threading
import time
from collections.abc import Callable
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


def _await_on_loop(awaitable: Any) -> Any:
    """From a job's greenlet: wait for ``awaitable`` on the loop (the parent greenlet)."""
    import greenlet

    return greenlet.getcurrent().parent.switch(awaitable)


async def _in_greenlet(fn: Any) -> Any:
    """Run ``fn`` in a greenlet, awaiting each awaitable it hands over (SQLAlchemy's
    ``greenlet_spawn``)."""
    import greenlet

    job = greenlet.greenlet(fn)
    handed = job.switch()
    while not job.dead:
        try:
            value = await handed
        except BaseException as exc:  # handed back into the greenlet
            handed = job.throw(exc)
        else:
            handed = job.switch(value)
    return handed


class _LoopTransport(httpx.BaseTransport):
    """A sync httpx transport whose requests are made by httpx's async one, on the loop."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(verify=TLS)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def exchange() -> tuple[int, httpx.Headers, bytes, dict[str, Any]]:
            response = await self._inner.handle_async_request(request)
            try:
                body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            finally:
                await response.aclose()
            return response.status_code, response.headers, body, dict(response.extensions)

        status, headers, body, extensions = _await_on_loop(exchange())
        return httpx.Response(status, headers=headers, content=body, extensions=extensions)


def run_greenlets(deps: WorkerDeps, job_ids: list[str], lua_threads: int = 0) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import sandbox._driver as driver
    import worker.providers as providers
    from api_client._client import new_http_client

    lua_pool = ThreadPoolExecutor(lua_threads, thread_name_prefix="probe-lua") if lua_threads else None

    def loop_sleep(seconds: float) -> None:
        _await_on_loop(asyncio.sleep(seconds))

    def lua_step(fn: Any, *args: Any) -> Any:
        if lua_pool is None:
            return fn(*args)
        return _await_on_loop(asyncio.get_running_loop().run_in_executor(lua_pool, fn, *args))

    def drive(run: ScriptRun, *, clock: Any = time.monotonic, cancel: Any = None, **_: Any) -> Any:
        step = lua_step(run.start)
        while isinstance(step, Pending):
            step = lua_step(run.resume, driver.perform(step.request, clock=clock, sleep=loop_sleep))
        return step.envelope

    saved = driver.drive, providers.thread_http_client
    driver.drive = drive
    providers.thread_http_client = lambda transport=None: new_http_client(_LoopTransport(), max_connections=4,
                                                                          verify=TLS)  # fmt: skip
    try:

        async def main() -> list[str]:
            return await asyncio.gather(*(_in_greenlet(lambda j=job_id: run_job(j, deps)["status"])
                                          for job_id in job_ids))  # fmt: skip

        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = asyncio.run(main())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        driver.drive, providers.thread_http_client = saved
        if lua_pool is not None:
            lua_pool.shutdown()
    name = f"greenlet loop, Lua in {lua_threads} threads" if lua_threads else "greenlet loop"
    return _figures(name, job_ids, outcomes, wall, cpu)


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
        # The process's Redis pool is sized to its concurrency: here, every job at once.
        settings, store, deps = in_process_worker(args.redis_url, "probe", LUAQ_SIMULATOR_URL=simulator_url,
                                                  LUAQ_RATE_LIMITS=UNLIMITED,
                                                  LUAQ_WORKER_CONCURRENCY=str(args.jobs))  # fmt: skip
        drivers: list[Callable[[list[str]], dict[str, Any]]] = [
            functools.partial(run_threads, deps),
            functools.partial(run_loop, deps, simulator_url),
        ]
        if importlib.util.find_spec("greenlet") is not None:
            drivers += [functools.partial(run_greenlets, deps), functools.partial(run_greenlets, deps, lua_threads=4)]
        else:
            print("greenlet is not installed: the greenlet drivers are left out (pip install -e '.[bench]')")
        for run in drivers:
            run(store_jobs(store, settings, 20))  # warm up every path
        rows = []
        for _ in range(args.rounds):
            for run in drivers:
                row = run(store_jobs(store, settings, args.jobs))
                rows.append(row)
                print(f"{row['driver']}: {row['jobs']} jobs in {row['wall_seconds']} s, "
                      f"{row['cpu_ms_per_job']} ms of CPU per job, {row['statuses']}")  # fmt: skip
        threads = min(r["cpu_ms_per_job"] for r in rows if r["driver"] == "threads")
        ratios = {}
        for name in dict.fromkeys(r["driver"] for r in rows if r["driver"] != "threads"):
            ratios[name] = round(min(r["cpu_ms_per_job"] for r in rows if r["driver"] == name) / threads, 3)
            print(f"{name} / threads, CPU per job: {ratios[name]:.2f}")
        report = {"machine": machine(), "runs": rows, "cpu_ratio_to_threads": ratios}  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {args.out}")
    finally:
        simulator.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
