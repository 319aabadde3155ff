"""The attack corpus through `luaq run`: each attack has the outcome it must have."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.conftest import LUAQ
from tests.security.corpus import Attack, check, load_attacks

ATTACKS = load_attacks()


def luaq_run(attack: Attack, tmp_path) -> dict:
    command = [*LUAQ, "run", "--json", "--limits", json.dumps(attack.limits), "-"]
    if "replicate" in attack.needs:
        command.append("--simulate")
    if attack.allow_writes:
        command.append("--force")
    wall = float(attack.limits.get("wall_clock_seconds", 300))
    done = subprocess.run(command, input=attack.source, capture_output=True, text=True, timeout=wall + 60,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})  # fmt: skip
    assert done.stdout.strip(), f"no envelope; stderr: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_via_luaq_run(attack: Attack, tmp_path):
    """`luaq run` ends the attack with the outcome the corpus states."""
    envelope = luaq_run(attack, tmp_path)
    assert check(envelope, attack) == [], envelope
