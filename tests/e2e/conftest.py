"""Real worker processes (`luaq worker`) on a real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import REPO, real_redis_url
from worker.client import LuaqClient
from worker.settings import Settings

LUAQ = [sys.executable, "-m", "worker.cli"]


def luaq_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUAQ_", "REPLICATE_"))}
    env.update(LUAQ_REDIS_URL=settings.redis_url or "", LUAQ_HOME=str(settings.home),
               LUAQ_SIMULATOR_DELAY=str(settings.simulator_prediction_seconds),
               PYTHONPATH=str(REPO), LUAQ_METRICS_PORT="0")  # fmt: skip
    env.update(extra)
    return env


@pytest.fixture
def e2e_settings(settings: Settings, redis_server_url: str) -> Iterator[Settings]:
    """Settings on database 12 of the real server, flushed before and after."""
    yield replace(settings, redis_url=real_redis_url(redis_server_url, 12))
    real_redis_url(redis_server_url, 12)


class Workers:
    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, count: int = 2, concurrency: int = 2, *extra: str, env: dict[str, str] | None = None) -> None:
        """``count`` ``luaq worker`` commands, each one process (unless ``extra`` says
        otherwise) running ``concurrency`` jobs at once."""
        if "--processes" not in extra and "--pool" not in extra:
            extra = ("--processes", "1", *extra)
        for _ in range(count):
            log = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
            process = subprocess.Popen(
                [*LUAQ, "worker", "--simulate", "--concurrency", str(concurrency), "--loglevel", "INFO", *extra],
                env=luaq_env(self.settings, **(env or {})), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            self.processes.append(process)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def workers(e2e_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(e2e_settings, tmp_path)
    yield pool
    pool.stop()


@pytest.fixture
def client(e2e_settings: Settings) -> Iterator[LuaqClient]:
    client = LuaqClient.from_settings(e2e_settings)
    yield client
    client.close()
