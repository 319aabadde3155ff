"""Fixtures for conformance tests: Lua scripts run in the sandbox against the simulator,
everything on one manual clock (clock -> simulator -> provider -> lua)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from api_client import ReplicateProvider, simulated_accounts
from api_client.simulator import ManualClock, Simulator, SimulatorTransport
from sandbox import Envelope, run_script


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> Simulator:
    return Simulator(clock=clock, sleep=clock.sleep)


@pytest.fixture
def provider(sim: Simulator, clock: ManualClock):
    accounts = simulated_accounts(["default", "work"])
    with ReplicateProvider(accounts, transport=SimulatorTransport(sim), sleep=clock.sleep, clock=clock) as provider:
        yield provider


@pytest.fixture
def lua(provider: ReplicateProvider, clock: ManualClock) -> Callable[..., Envelope]:
    """Run a Lua script with writes allowed, on the manual clock."""

    def run(code: str, *, allow_writes: bool = True) -> Envelope:
        return run_script(code, providers=[provider], allow_writes=allow_writes, clock=clock, sleep=clock.sleep)

    return run
