"""Local mode: ``luaq up`` starts Redis, a worker and the simulator on this machine.

Without ``LUAQ_REDIS_URL`` it starts an embedded server (see :mod:`worker.local_redis`)
with its data under ``$LUAQ_HOME/data`` and writes ``$LUAQ_HOME/local.json`` so that
``luaq submit``/``watch``/``result`` in other terminals find it. The simulator runs in
this process, served over HTTP on a free port, so every worker process shares its state.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .local_redis import EmbeddedRedis, die_with_parent, start_embedded_redis
from .settings import Settings, local_state_path, read_local_state


def run_simulator(host: str, port: int, delay: float) -> None:
    from api_client.simulator import Simulator, serve

    # public_base_url=None: the URLs in answers follow the Host header clients used.
    server = serve(Simulator(prediction_seconds=delay, public_base_url=None), host, port)
    click.echo(f"Replicate simulator on {server.base_url} (Ctrl-C to stop)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()


def _start_simulator(delay: float) -> tuple[Any, str]:
    from api_client.simulator import Simulator, serve

    server = serve(Simulator(prediction_seconds=delay, public_base_url=None), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, name="simulator", daemon=True).start()
    return server, server.base_url


def run_local_stack(settings: Settings, *, script: str | None, simulate: bool, concurrency: int | None,
                    as_json: bool, force: bool = False) -> int:  # fmt: skip
    """Start the stack; with ``script`` run it once and return its exit code."""
    running = read_local_state(settings.home)
    if running:
        click.echo(
            f"luaq: local mode is already up (pid {running['pid']}, {running['redis_url']})",
            err=True,
        )
        return 2
    _reap_leftovers(local_state_path(settings.home))
    has_token = bool(settings.environ.get("REPLICATE_API_TOKEN"))
    if not simulate and not has_token:
        click.echo("luaq: no REPLICATE_API_TOKEN set: using the offline Replicate simulator", err=True)
        simulate = True

    redis_server: EmbeddedRedis | None = None
    simulator_server = None
    worker: subprocess.Popen | None = None
    state_path = local_state_path(settings.home)
    try:
        if not settings.redis_url:
            redis_server = start_embedded_redis(settings.home / "data")
            settings = replace(settings, redis_url=redis_server.url)
            click.echo(f"luaq: embedded Redis ({redis_server.binary.name}) on {redis_server.url}", err=True)
        env = dict(settings.environ, LUAQ_REDIS_URL=settings.redis_url or "")
        env.setdefault("LUAQ_METRICS_PORT", "0")  # one worker on a laptop: no /metrics unless asked
        if simulate:
            simulator_server, simulator_url = _start_simulator(settings.simulator_prediction_seconds)
            env.update(LUAQ_SIMULATE="1", LUAQ_SIMULATOR_URL=simulator_url)
            click.echo(f"luaq: Replicate simulator on {simulator_url}", err=True)
        command = [sys.executable, "-m", "worker.cli", "worker", "--loglevel", "WARNING"]
        if concurrency:
            command += ["--concurrency", str(concurrency)]
        # The worker talks on stderr: stdout is for the result of SCRIPT.
        worker = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr,
                                  preexec_fn=die_with_parent)  # fmt: skip
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps({
            "pid": os.getpid(), "redis_url": settings.redis_url, "simulate": simulate, "worker_pid": worker.pid,
            "redis_pid": redis_server.process.pid if redis_server else None,
        }))  # fmt: skip
        if script is not None:
            return _run_once(replace(settings, simulate=simulate), script, as_json, force)
        click.echo("luaq: up. Submit from another terminal, e.g. "
                   "`luaq submit --wait --eval 'return 1 + 1'`. Ctrl-C stops.", err=True)  # fmt: skip
        if not _wait_for_interrupt(worker):
            click.echo(
                f"luaq: the worker exited unexpectedly (status {worker.returncode}); stopping",
                err=True,
            )
            return 1
        return 0
    finally:
        if worker is not None:
            _stop_worker(worker)
        if _state_is_ours(state_path):
            state_path.unlink(missing_ok=True)
        if simulator_server is not None:
            simulator_server.shutdown()
            simulator_server.server_close()
        if redis_server is not None:
            redis_server.stop()


def _reap_leftovers(path: Path) -> None:
    """After a ``luaq up`` that was killed outright, stop the server and worker it left
    (two servers must never share one data directory)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for key in ("worker_pid", "redis_pid"):
        pid = state.get(key)
        if isinstance(pid, int) and pid > 0 and _is_ours(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                click.echo(f"luaq: stopped {key.split('_')[0]} {pid} left by an earlier luaq up", err=True)
    path.unlink(missing_ok=True)


def _is_ours(pid: int) -> bool:
    """Whether ``pid`` still runs a luaq worker or server (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(name in cmdline for name in (b"worker.cli", b"valkey-server", b"redis-server"))


def _state_is_ours(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError):
        return False


def _run_once(settings: Settings, script: str, as_json: bool, force: bool) -> int:
    from .cli import finish
    from .client import LuaqClient

    client = LuaqClient.from_settings(settings)
    try:
        source = Path(script).read_text(encoding="utf-8")
        submitted = client.submit({"script": source, "file": Path(script).name,
                                   "simulate": settings.simulate, "allow_writes": force})  # fmt: skip
        try:
            finish(client, submitted.job_id, as_json=as_json, follow=not as_json, timeout=None)
        except SystemExit as done:
            return int(done.code or 0)
        return 0
    finally:
        client.close()


def _wait_for_interrupt(worker: subprocess.Popen) -> bool:
    """Wait for SIGINT/SIGTERM (True) or for the worker to die on its own (False)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set() and worker.poll() is None:
            stop.wait(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stop.is_set()


def _stop_worker(worker: subprocess.Popen, timeout: float = 30.0) -> None:
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown: running jobs finish
    try:
        worker.wait(timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
