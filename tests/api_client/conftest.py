"""Fixtures for api_client tests, building on each other:
clock -> simulator -> transport -> accounts -> client / provider."""

from __future__ import annotations

import pytest

from api_client import ReplicateClient, ReplicateProvider, load_catalog, simulated_accounts
from api_client.simulator import Simulator, SimulatorTransport

START = 1_700_000_000.0


class FakeClock:
    """A clock that only moves when something sleeps on it (or a test advances it)."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
def client(accounts, transport):
    with ReplicateClient(accounts["default"], transport=transport) as client:
        yield client


@pytest.fixture
def provider(accounts, transport):
    with ReplicateProvider(accounts, transport=transport) as provider:
        yield provider


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()
