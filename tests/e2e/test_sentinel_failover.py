"""Redis Sentinel: workers, the job store and the submitter on a `redis+sentinel://` URL ride out a failover.

The test starts a primary, a replica and one Sentinel (ports 6440-6460), runs jobs on two
workers, kills the primary with SIGKILL while jobs run, and checks that every job still
reaches a final state with the right result once the Sentinel has promoted the replica.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis

from tests.conftest import wait_until
from tests.e2e.conftest import Workers
from worker.client import LuaqClient
from worker.local_redis import find_server_binary

PORTS = range(6440, 6461)
MASTER = "luaq"
JOB = """
sleep(0.3)
return job.args.n * 2
"""


def _free_ports(count: int) -> list[int]:
    ports = []
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    pytest.skip(f"fewer than {count} free ports in {PORTS.start}-{PORTS.stop - 1}")


def _ping(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.3, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@dataclass
class Topology:
    primary: subprocess.Popen
    replica: subprocess.Popen
    sentinel: subprocess.Popen
    ports: tuple[int, int, int]  # primary, replica, sentinel

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.ports[2]}/{MASTER}/0"

    def sentinel_client(self) -> redis.Redis:
        return redis.Redis(port=self.ports[2], decode_responses=True, socket_timeout=1)

    def master_port(self) -> int:
        return int(self.sentinel_client().sentinel_get_master_addr_by_name(MASTER)[1])


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    binary = str(find_server_binary())
    primary_port, replica_port, sentinel_port = _free_ports(3)
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]
    processes = []

    def start(args: list[str], name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen([binary, *args], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        processes.append(process)
        return process

    try:
        primary = start(["--port", str(primary_port), *common], "primary")
        wait_until(lambda: _ping(primary_port), timeout=10, message="the primary")
        replica = start(["--port", str(replica_port), *common, "--replicaof", "127.0.0.1", str(primary_port)],
                        "replica")  # fmt: skip
        replica_client = redis.Redis(port=replica_port, decode_responses=True)
        wait_until(lambda: _ping(replica_port) and replica_client.info("replication").get("master_link_status") == "up",
                   timeout=15, message="the replica in sync")  # fmt: skip
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 4000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        sentinel = start([str(conf), "--sentinel"], "sentinel")
        topo = Topology(primary, replica, sentinel, (primary_port, replica_port, sentinel_port))
        wait_until(lambda: _ping(sentinel_port) and topo.sentinel_client().sentinel_slaves(MASTER),
                   timeout=20, message="the Sentinel to know the replica")  # fmt: skip
        yield topo
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_no_job_is_lost_when_the_primary_dies_mid_run(topology, settings, tmp_path):
    """SIGKILL the primary while jobs run: the Sentinel promotes the replica and every job still finishes."""
    sentinel_settings = replace(settings, redis_url=topology.url)
    workers = Workers(sentinel_settings, tmp_path)
    # A job cut off by the failover comes back after the visibility timeout: keep it short here.
    workers.start(2, 2, env={"LUAQ_VISIBILITY_TIMEOUT": "8", "LUAQ_MAX_WALL_CLOCK_SECONDS": "3"})
    client = LuaqClient.from_settings(sentinel_settings)
    try:
        ids = [client.submit({"script": JOB, "args": {"n": n}}).job_id for n in range(40)]
        client.store.redis.execute_command("WAIT", 1, 2000)  # the queue is on the replica too
        # Kill the primary once jobs are running and some have finished.
        wait_until(lambda: sum(client.get(i).is_final for i in ids) >= 6, timeout=60, message="jobs running")
        os.kill(topology.primary.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        topology.primary.wait(10)

        wait_until(lambda: topology.master_port() == topology.ports[1], timeout=30,
                   message="the Sentinel to promote the replica")  # fmt: skip
        failover_seconds = time.monotonic() - killed_at

        seen: list[str] = []

        def all_final() -> bool:
            try:
                seen[:] = [client.get(i).status.value for i in ids]
            except redis.RedisError as exc:
                seen[:] = [repr(exc)]
                return False
            return all(status not in ("queued", "running") for status in seen)

        try:
            wait_until(all_final, timeout=60, interval=0.2, message="every job to reach a final state")
        except BaseException:
            print("STATUSES", seen, "\nLOGS", workers.logs()[-8000:])
            raise
        records = [client.get(i) for i in ids]
    finally:
        client.close()
        workers.stop()
    statuses = [r.status.value for r in records]
    assert statuses == ["succeeded"] * 40, (statuses, workers.logs()[-4000:])
    assert [r.envelope["result"] for r in records] == [[n * 2] for n in range(40)]
    print(f"failover took {failover_seconds:.1f} s; attempts: {sorted(r.attempt for r in records)}")
