"""Shared fixtures, built on each other: settings -> redis (fake or real) -> store -> client.

Real-Redis tests use the server on 127.0.0.1:6379 when one answers there (CI machines have
one), each test file family in a database number of its own that the test flushes; when
none answers, one embedded server is started for the whole session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import fakeredis
import pytest
import redis
import structlog

from worker.settings import Settings
from worker.store import JobStore

REPO = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> object:  # fmt: skip
    """Poll ``condition`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """CLI tests configure logging; every test starts from structlog's defaults."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for tests: no real tokens, a home of its own, a fast simulator."""
    return Settings(home=tmp_path / "luaq-home", simulator_prediction_seconds=0.2, environ={})


@pytest.fixture
def fake_redis() -> redis.Redis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def store(fake_redis: redis.Redis, settings: Settings) -> JobStore:
    return JobStore(fake_redis, settings)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no database number) of a real Redis server for this test session."""
    url = os.environ.get("LUAQ_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    if _answers(url):
        yield url.rstrip("/")
        return
    from worker.local_redis import start_embedded_redis

    server = start_embedded_redis(tmp_path_factory.mktemp("redis"), persist=False)
    try:
        yield f"redis://127.0.0.1:{server.port}"
    finally:
        server.stop()


OUR_KEYS = ("luaq", "_kombu.", "unacked")


def real_redis_url(base: str, db: int) -> str:
    """Flush database ``db`` for a test, refusing when it holds keys that aren't luaq's or
    Celery's (someone's own data on a shared server)."""
    client = redis.Redis.from_url(f"{base}/{db}", decode_responses=True)
    try:
        keys = list(client.scan_iter(count=1000))
        queues = {key.split(".", 2)[-1] for key in keys if key.startswith("_kombu.binding.")}
        foreign = [k for k in keys if not k.startswith(OUR_KEYS) and k.split("\x06")[0] not in queues]
        if foreign:
            pytest.fail(
                f"Redis database {db} at {base} holds keys that aren't luaq's ({foreign[:3]}...): "
                "point LUAQ_TEST_REDIS_URL at a server the tests may use"
            )
        client.flushdb()
    finally:
        client.close()
    return f"{base}/{db}"


@pytest.fixture
def real_settings(settings: Settings, redis_server_url: str) -> Iterator[Settings]:
    """Settings pointing at database 11 of the real server, flushed before and after."""
    url = real_redis_url(redis_server_url, 11)
    yield replace(settings, redis_url=url)
    real_redis_url(redis_server_url, 11)
