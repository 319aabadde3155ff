"""One real worker process for the whole security corpus, on database 13 of the real Redis.
It runs many jobs at once (the threads pool), as in production: attacks run beside each
other and beside normal jobs in one process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import real_redis_url
from tests.e2e.conftest import Workers
from worker.client import LuaqClient
from worker.settings import Settings


@pytest.fixture(scope="module")
def security_settings(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("security-home")
    settings = Settings(
        home=home, simulator_prediction_seconds=0.2, environ={}, redis_url=real_redis_url(redis_server_url, 13)
    )
    yield settings
    real_redis_url(redis_server_url, 13)


@pytest.fixture(scope="module")
def security_worker(security_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    pool = Workers(security_settings, Path(tmp_path_factory.mktemp("security-logs")))
    pool.start(count=1, concurrency=16)
    yield pool
    pool.stop()


@pytest.fixture(scope="module")
def security_client(security_settings: Settings, security_worker: Workers) -> Iterator[LuaqClient]:
    client = LuaqClient.from_settings(replace(security_settings))
    yield client
    client.close()
