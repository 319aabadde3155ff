"""Fixtures for api_client tests, building on each other:
clock -> simulator -> transport -> accounts -> client / provider."""

from __future__ import annotations

import pytest

from api_client import ReplicateClient, ReplicateProvider, RetryPolicy, load_catalog, simulated_accounts
from api_client.simulator import ManualClock, Simulator, SimulatorTransport

START = 1_700_000_000.0
FakeClock = ManualClock  # a clock that only moves when something sleeps on it (or a test advances it)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def simulator(clock: FakeClock) -> Simulator:
    return Simulator(clock=clock, sleep=clock.sleep)


@pytest.fixture
def transport(simulator: Simulator) -> SimulatorTransport:
    return SimulatorTransport(simulator)


@pytest.fixture
def accounts():
    return simulated_accounts(["work"])


@pytest.fixture
def retry(clock: FakeClock) -> RetryPolicy:
    """The default policy, sleeping on the fake clock (no jitter, so waits are exact)."""
    return RetryPolicy(sleep=clock.sleep, clock=clock, random=lambda: 0.0)


@pytest.fixture
def client(accounts, transport, retry):
    with ReplicateClient(accounts["default"], transport=transport, retry=retry) as client:
        yield client


@pytest.fixture
def provider(accounts, transport, clock):
    with ReplicateProvider(accounts, transport=transport, sleep=clock.sleep, clock=clock) as provider:
        yield provider


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()
