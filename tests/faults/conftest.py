"""Fault injection against real Redis and real worker processes (`luaq worker`), with the
Replicate simulator served from this process so that its request log (``sim.requests``)
shows every prediction the workers created."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis

from api_client.simulator import Simulator, serve
from tests.conftest import real_redis_url, wait_until
from tests.e2e.conftest import Workers
from worker.client import LuaqClient
from worker.local_redis import find_server_binary
from worker.settings import Settings

pytestmark = pytest.mark.e2e

# Short leases: a lost worker's jobs are taken over within a couple of seconds.
FAULT_ENV = {"LUAQ_SIMULATE": "1", "LUAQ_LEASE_SECONDS": "2"}


@pytest.fixture
def shared_simulator() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(prediction_seconds=0.2, public_base_url=None)
    server = serve(sim, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield sim, server.base_url
    server.shutdown()
    server.server_close()


def creates_by_prompt(sim: Simulator) -> Counter[str]:
    """How many predictions the simulator created for each ``input.prompt``."""
    counts: Counter[str] = Counter()
    for request in list(sim.requests):
        if request.route in ("create_prediction", "create_model_prediction") and request.status == 201:
            counts[json.loads(request.body)["input"]["prompt"]] += 1
    return counts


@pytest.fixture
def fault_settings(settings: Settings, redis_server_url: str) -> Iterator[Settings]:
    """Settings on database 14 of the real server, flushed before and after."""
    yield replace(settings, redis_url=real_redis_url(redis_server_url, 14), lease_seconds=2.0)
    real_redis_url(redis_server_url, 14)


@pytest.fixture
def fault_workers(fault_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(fault_settings, tmp_path)
    yield pool
    pool.stop()


@pytest.fixture
def fault_client(fault_settings: Settings) -> Iterator[LuaqClient]:
    client = LuaqClient.from_settings(fault_settings)
    yield client
    client.close()


def wait_final(client: LuaqClient, job_ids: list[str], timeout: float = 60) -> dict[str, dict]:
    wait_until(lambda: all(client.get(j).is_final for j in job_ids), timeout=timeout, interval=0.05,
               message="every job to reach a final state")  # fmt: skip
    return {job_id: client.get(job_id).envelope or {} for job_id in job_ids}


@dataclass
class PrivateRedis:
    """A Redis server of this test's own (luaq's embedded one, or redis-server on PATH;
    append-only, so its data survives a restart)."""

    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(find_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client), timeout=10, message="the private Redis to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a clean shutdown: the AOF is complete
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _free_port(low: int = 6460, high: int = 6480) -> int:
    for port in range(low, high + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {low}-{high} for a private Redis")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(_free_port(), tmp_path / "redis-data")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a whole `luaq worker`: the supervisor and its worker processes."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def worker_pid(client: LuaqClient, job_id: str) -> int:
    """The pid of the worker process running ``job_id`` (its record's ``hostname:pid``)."""
    worker = client.store.redis.hget(f"luaq:job:{job_id}", "worker")
    return int(worker.rsplit(":", 1)[1])


def elapsed_since(started: float) -> float:
    return time.monotonic() - started
