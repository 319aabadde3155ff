"""The attack corpus through a real worker: each attack has its outcome, and after each one
the same worker runs a normal job correctly."""

from __future__ import annotations

import pytest

from tests.security.corpus import CANARY, Attack, check, check_canary, load_attacks

ATTACKS = load_attacks()


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_via_worker_then_a_normal_job(attack: Attack, security_client):
    """A worker ends the attack with the outcome the corpus states, then runs a normal job correctly."""
    wall = float(attack.limits.get("wall_clock_seconds", 300))
    submission = {"script": attack.source, "limits": attack.limits, "simulate": "replicate" in attack.needs,
                  "allow_writes": attack.allow_writes}  # fmt: skip
    envelope = security_client.wait(security_client.submit(submission).job_id, timeout=wall + 60)
    assert check(envelope, attack) == [], envelope
    canary = security_client.wait(security_client.submit({"script": CANARY}).job_id, timeout=60)
    assert check_canary(canary) == []
    assert canary["meta"]["worker"] == envelope["meta"].get("worker", canary["meta"]["worker"])


def test_the_whole_corpus_at_once_beside_normal_jobs(security_client):
    """Every attack submitted at once to the one worker process, each followed by a normal
    job: all share the process at the same time, and every outcome is still the stated one
    (not its time: sixteen attacks at once share this machine's two cores)."""
    submitted = []
    for attack in ATTACKS:
        submission = {"script": attack.source, "limits": attack.limits, "simulate": "replicate" in attack.needs,
                      "allow_writes": attack.allow_writes}  # fmt: skip
        submitted.append((attack, security_client.submit(submission).job_id,
                          security_client.submit({"script": CANARY}).job_id))  # fmt: skip
    longest = max(float(a.limits.get("wall_clock_seconds", 300)) for a in ATTACKS)
    for attack, attack_id, canary_id in submitted:
        envelope = security_client.wait(attack_id, timeout=longest + 120)
        assert check(envelope, attack, timing=False) == [], (attack.name, envelope)
        assert check_canary(security_client.wait(canary_id, timeout=120)) == [], attack.name
