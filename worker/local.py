"""Local mode: ``luaq up`` starts Redis, a worker and the simulator on this machine.

Without ``LUAQ_REDIS_URL`` it starts an embedded server (see :mod:`worker.local_redis`)
with its data under ``$LUAQ_HOME/data`` and writes ``$LUAQ_HOME/local.json`` so that
``luaq submit``/``watch``/``result`` in other terminals find it. The simulator runs in
this process, served over HTTP on a free port, so every worker process shares its state.

Stopping. The worker (``luaq worker``: a supervisor and its worker processes) runs in a
session of its own, so Ctrl-C in the terminal reaches ``luaq up`` alone, which decides:

- the first SIGINT or SIGTERM is a warm shutdown: the supervisor gets SIGTERM, takes no
  new job and lets the running ones finish, however long that takes;
- another one stops at once: SIGKILL to the worker's whole process group. The jobs cut
  off keep their messages unacknowledged and their leases run out, so the next
  ``luaq up`` runs them again as a new attempt (or ends them ``lost`` if they had made
  write calls; see :mod:`worker.runner`).

Either way ``luaq up`` returns only once every process of the worker has gone, then stops
the simulator and the server. The worker's stdout (where Celery prints its banner and its
shutdown notices) is discarded: what shows is luaq's own lines, its worker's warnings
(JSON, on stderr) and, with SCRIPT, the job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .local_redis import EmbeddedRedis, die_with_parent, start_embedded_redis
from .settings import Settings, local_state_path, process_argv, read_local_state

EXIT_INTERRUPTED = 130
LEFTOVER_GRACE_SECONDS = 5.0  # a worker left by an earlier luaq up gets this long to exit on SIGTERM
KILL_WAIT_SECONDS = 10.0  # how long a SIGKILLed process may take to be gone
POLL_SECONDS = 0.05
PROC = Path("/proc")  # Linux; elsewhere only the pids themselves can be checked


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
    if not _reap_leftovers(local_state_path(settings.home)):
        return 2
    has_token = bool(settings.environ.get("REPLICATE_API_TOKEN"))
    if not simulate and not has_token:
        click.echo("luaq: no REPLICATE_API_TOKEN set: using the offline Replicate simulator", err=True)
        simulate = True

    redis_server: EmbeddedRedis | None = None
    simulator_server = None
    worker: LocalWorker | None = None
    interrupts = Interrupts()
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
        interrupts.install()  # from here on, Ctrl-C stops the worker as the module docstring says
        worker = LocalWorker.start(command, env)
        _write_state(state_path, {
            "pid": os.getpid(), "redis_url": settings.redis_url, "simulate": simulate, "worker_pid": worker.pid,
            "redis_pid": redis_server.process.pid if redis_server else None,
        })  # fmt: skip
        if script is not None:
            try:
                with interrupts.raising():  # Ctrl-C cuts the wait for the job short
                    return _run_once(replace(settings, simulate=simulate), script, as_json, force)
            except KeyboardInterrupt:
                click.echo("luaq: interrupted before the job finished", err=True)
                return EXIT_INTERRUPTED
        click.echo("luaq: up. Submit from another terminal, e.g. "
                   "`luaq submit --wait --eval 'return 1 + 1'`. Ctrl-C stops.", err=True)  # fmt: skip
        if not worker.wait_for(interrupts):
            click.echo(
                f"luaq: the worker exited unexpectedly (status {worker.process.returncode}); stopping",
                err=True,
            )
            return 1
        return 0
    finally:
        if worker is not None:
            worker.stop(interrupts)
        if _state_is_ours(state_path):
            state_path.unlink(missing_ok=True)
        if simulator_server is not None:
            simulator_server.shutdown()
            simulator_server.server_close()
        if redis_server is not None:
            redis_server.stop()
        interrupts.restore()


class Interrupts:
    """SIGINT and SIGTERM, counted rather than raised while installed, so that a second
    Ctrl-C can never land in the middle of shutting down; :meth:`raising` makes the next
    one raise ``KeyboardInterrupt`` (to cut a blocking call short) for a ``with`` block."""

    def __init__(self) -> None:
        self.count = 0
        self._arrived = threading.Event()
        self._raise = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        if self.count:  # one came already
            raise KeyboardInterrupt
        self._raise = True
        try:
            yield
        finally:
            self._raise = False

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, less when a signal arrives."""
        self._arrived.wait(timeout)
        self._arrived.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.count += 1
        self._arrived.set()
        if self._raise:
            self._raise = False
            raise KeyboardInterrupt


class LocalWorker:
    """The ``luaq worker`` that ``luaq up`` runs, in a session (and process group) of its
    own: the terminal's Ctrl-C does not reach it, and killing its group ends the supervisor
    and every worker process it started."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    @classmethod
    def start(cls, command: list[str], env: dict[str, str]) -> LocalWorker:
        # Its logs go to stderr (stdout is for the result of SCRIPT); its stdout holds only
        # Celery's banner and shutdown notices.
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=sys.stderr, start_new_session=True, preexec_fn=die_with_parent)  # fmt: skip
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for(self, interrupts: Interrupts) -> bool:
        """Wait for SIGINT/SIGTERM (True; one that came during start-up counts) or for the
        worker to exit on its own (False)."""
        while self.process.poll() is None and not interrupts.count:
            interrupts.wait(0.5)
        return bool(interrupts.count)

    def stop(self, interrupts: Interrupts) -> None:
        """Warm shutdown, waiting as long as running jobs take; a signal meanwhile makes it
        a kill. Returns once every process of the worker has gone."""
        seen = interrupts.count
        if self.process.poll() is None:
            if seen:  # an interrupt asked for this stop; otherwise SCRIPT is done, and so is its job
                click.echo("luaq: stopping: running jobs finish first (Ctrl-C again to stop at once)", err=True)
            self.process.send_signal(signal.SIGTERM)
            while self.process.poll() is None and interrupts.count == seen:
                interrupts.wait(0.5)
            if self.process.poll() is None:
                click.echo("luaq: stopping at once: the jobs cut off run again on the next `luaq up`", err=True)
        # After a warm shutdown nothing is left; after a kill, or a supervisor that died on
        # its own, its worker processes may be: they go too.
        if not kill_group(self.pid):
            click.echo(f"luaq: worker processes of group {self.pid} did not exit after SIGKILL", err=True)
        self.process.wait()


def kill_group(pgid: int, timeout: float = KILL_WAIT_SECONDS) -> bool:
    """SIGKILL every process of group ``pgid``; True once none is left (zombies count as gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return _gone(lambda: group_members(pgid), timeout)


def _gone(alive: Callable[[], object], timeout: float) -> bool:
    """Poll until ``alive()`` is falsy: True, or False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of group ``pgid``, from ``/proc``; elsewhere, [pgid]
    while the group exists."""
    if not (PROC / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _write_state(path: Path, state: dict[str, object]) -> None:
    """Replace the state file whole: a reader (``luaq submit`` in another terminal) sees the
    old file or the new one, never a half-written one (it would take local mode for down)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(state))
    os.replace(partial, path)


def _reap_leftovers(path: Path) -> bool:
    """After a ``luaq up`` that was killed outright, stop the worker and server it left (two
    servers must never share one data directory): SIGTERM, then SIGKILL after
    ``LEFTOVER_GRACE_SECONDS`` (to the worker's whole process group), and wait until each
    has gone. False when one would not go."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return True
    for key in ("worker_pid", "redis_pid"):
        pid = state.get(key)
        if not (isinstance(pid, int) and pid > 0 and _is_ours(pid)):
            continue
        what = key.split("_")[0]
        if not _end_process(pid):
            click.echo(f"luaq: {what} {pid} left by an earlier luaq up is still running after SIGKILL; "
                       "stop it, then start luaq up again", err=True)  # fmt: skip
            return False
        click.echo(f"luaq: stopped {what} {pid} left by an earlier luaq up", err=True)
    path.unlink(missing_ok=True)
    return True


def _end_process(pid: int) -> bool:
    """SIGTERM ``pid``; if it has not gone after ``LEFTOVER_GRACE_SECONDS``, SIGKILL it. A
    process leading its own group (luaq up starts its worker and server so) takes its
    group with it. True once they have all gone."""
    try:
        leads_group = os.getpgid(pid) == pid
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    _gone(lambda: _alive(pid), LEFTOVER_GRACE_SECONDS)
    if leads_group:
        return kill_group(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return _gone(lambda: _alive(pid), KILL_WAIT_SECONDS)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    if not (PROC / "self" / "stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in ("Z", "X")


def _is_ours(pid: int) -> bool:
    """Whether ``pid`` still runs a luaq worker or server (pids get reused)."""
    argv = process_argv(pid)
    return argv is not None and any(
        name in arg for arg in argv for name in (b"worker.cli", b"valkey-server", b"redis-server")
    )


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
