"""The attack corpus in-process (``run_script``): each attack has the outcome it states, and a
fresh job run after it behaves normally."""

from __future__ import annotations

import time

import pytest

import api_client
from api_client.simulator import Simulator, SimulatorTransport
from sandbox import Limits, run_script
from tests.security.corpus import CANARY, CLASSES, Attack, check, check_canary, load_attacks

ATTACKS = load_attacks()


def replicate() -> api_client.ReplicateProvider:
    return api_client.ReplicateProvider(
        api_client.simulated_accounts(["default"]), transport=SimulatorTransport(Simulator())
    )


def run_attack(attack: Attack) -> dict:
    providers = [replicate()] if "replicate" in attack.needs else []
    limits = Limits.from_request(attack.limits)
    return run_script(attack.source, providers=providers, limits=limits, allow_writes=attack.allow_writes).to_dict()


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_attack_in_process_then_a_normal_job(attack: Attack):
    """The attack ends as the corpus states, within its wall clock, and leaves nothing behind."""
    wall = attack.limits.get("wall_clock_seconds", Limits.DEFAULT.wall_clock_seconds)
    started = time.monotonic()
    envelope = run_attack(attack)
    elapsed = time.monotonic() - started
    assert check(envelope, attack) == [], envelope
    assert elapsed <= wall + 2, f"took {elapsed:.1f} s with a wall clock of {wall} s"
    canary = run_script(CANARY, providers=[replicate()]).to_dict()
    assert check_canary(canary) == [], canary


def test_the_corpus_covers_every_class():
    """At least 45 attacks, and every class has some."""
    assert len(ATTACKS) >= 45
    counts = {klass: sum(attack.klass == klass for attack in ATTACKS) for klass in CLASSES}
    assert all(counts.values()), counts


def test_every_attack_states_its_wall_clock():
    """Runners elsewhere (luaq run, a worker) wait for the wall clock: each attack sets one."""
    assert [attack.name for attack in ATTACKS if "wall_clock_seconds" not in attack.limits] == []


def test_canary_passes_on_its_own():
    """The canary itself is a normal job."""
    assert check_canary(run_script(CANARY).to_dict()) == []
