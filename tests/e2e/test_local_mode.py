"""`luaq up`: local mode on a machine with no Redis installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, wait_until

QUICKSTART = REPO / "examples" / "quickstart.lua"


def bare_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds only a python (no redis-server, no valkey-server)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUAQ_", "REPLICATE_"))}
    env.update(PATH=str(bin_dir), LUAQ_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO),
               LUAQ_SIMULATOR_DELAY="0.3")  # fmt: skip
    assert shutil.which("redis-server", path=env["PATH"]) is None
    return env


def test_up_and_submit_work_without_any_redis_installed(tmp_path):
    """`luaq up --simulate` in one terminal and `luaq submit --wait` in another work with no redis on PATH."""
    env = bare_env(tmp_path)
    up = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--simulate"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    state = tmp_path / "home" / "local.json"
    try:
        wait_until(state.exists, timeout=30, message="luaq up to write its state")
        done = subprocess.run(
            [sys.executable, "-m", "worker.cli", "submit", "--wait", "--json", "--simulate", "--force",
             str(QUICKSTART)], env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        envelope = json.loads(done.stdout)
        assert envelope["success"] is True
        assert envelope["result"][0]["status"] == "succeeded"
    finally:
        os.killpg(up.pid, signal.SIGINT)
        _, stderr = up.communicate(timeout=60)
    assert up.returncode == 0, stderr
    assert "embedded Redis (valkey-server)" in stderr
    assert not state.exists()


def test_up_with_a_script_runs_it_once_and_exits(tmp_path):
    """`luaq up --simulate --force SCRIPT` runs the main job through the whole stack and exits with its status."""
    env = bare_env(tmp_path)
    done = subprocess.run([sys.executable, "-m", "worker.cli", "up", "--simulate", "--force", "--json",
                           str(QUICKSTART)], env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    envelope = json.loads(done.stdout)
    assert envelope["result"][0]["status"] == "succeeded"
    assert envelope["output"].startswith("account: ")


def test_submit_without_redis_or_up_says_how_to_fix_it(tmp_path):
    """With no LUAQ_REDIS_URL and no `luaq up` running, submit explains both ways out."""
    env = bare_env(tmp_path)
    done = subprocess.run([sys.executable, "-m", "worker.cli", "submit", "--eval", "return 1"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "LUAQ_REDIS_URL" in done.stderr and "luaq up" in done.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_killed_up_leaves_no_server_or_worker_behind(tmp_path):
    """When `luaq up` is killed outright, its embedded Redis and its worker end too."""
    env = bare_env(tmp_path)
    up = subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--simulate"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    state_path = tmp_path / "home" / "local.json"
    wait_until(state_path.exists, timeout=30, message="luaq up to write its state")
    state = json.loads(state_path.read_text())
    up.kill()
    up.wait()
    wait_until(lambda: not _alive(state["redis_pid"]) and not _alive(state["worker_pid"]), timeout=30,
               message="the orphaned server and worker to exit")  # fmt: skip
