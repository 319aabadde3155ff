"""Which ``luaq up`` counts as running: read_local_state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_until
from worker.settings import local_state_path, read_local_state

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")


def _state(home: Path, pid: int) -> None:
    local_state_path(home).write_text(json.dumps({"pid": pid, "redis_url": "redis://127.0.0.1:1/0"}))


def _process(*argv: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", *argv])
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    # Until it has exec'd, the child still shows this process's command line.
    wait_until(lambda: argv[0].encode() in cmdline.read_bytes(), message="the child to exec")
    return process


def test_a_live_luaq_up_counts(tmp_path):
    process = _process("luaq", "up")  # its argv as `luaq up` has it
    try:
        _state(tmp_path, process.pid)
        assert read_local_state(tmp_path) == {"pid": process.pid, "redis_url": "redis://127.0.0.1:1/0"}
    finally:
        process.kill()
        process.wait()


def test_a_pid_that_went_to_another_program_does_not(tmp_path):
    """A luaq up killed outright leaves its state; its pid may since run something else,
    which must not make every later luaq up refuse to start ("already up")."""
    process = _process("something", "else")
    try:
        _state(tmp_path, process.pid)
        assert read_local_state(tmp_path) is None
    finally:
        process.kill()
        process.wait()


def test_a_dead_pid_does_not(tmp_path):
    process = _process("luaq", "up")
    process.kill()
    process.wait()
    _state(tmp_path, process.pid)
    assert read_local_state(tmp_path) is None


def test_a_reader_never_sees_a_half_written_state(tmp_path):
    """luaq up replaces its state file whole: `luaq submit` in another terminal, reading it
    meanwhile, would otherwise find it empty and take local mode for down."""
    import threading

    from worker.local import _write_state

    path = local_state_path(tmp_path)
    _write_state(path, {"pid": 0, "redis_url": "redis://127.0.0.1:1/0"})
    torn, done = [], threading.Event()

    def read() -> None:
        while not done.is_set():
            text = path.read_text()
            try:
                json.loads(text)
            except ValueError:
                torn.append(text)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(3000):
            _write_state(path, {"pid": n, "redis_url": "redis://127.0.0.1:1/0", "pad": "x" * 2000})
    finally:
        done.set()
        reader.join()
    assert torn == []
    assert [p.name for p in tmp_path.iterdir()] == ["local.json"]  # no partial file left behind
