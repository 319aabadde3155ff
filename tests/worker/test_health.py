"""worker.health: when a worker counts as live and ready, and the endpoint that says so."""

from __future__ import annotations

import json
import multiprocessing
import urllib.request
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from worker.cli import cli
from worker.health import (
    STARTUP_SECONDS,
    HealthServer,
    ProcessView,
    Verdict,
    assess,
    consumer_beat_step,
    consuming,
    probe,
)
from worker.settings import Settings, SettingsError

NOW = 1000.0
TIMEOUT = 10.0


def view(name: str = "w0", *, beat: float = NOW - 1, started: float = NOW - 100, heartbeat: float | None = NOW,
         draining: bool = False) -> ProcessView:  # fmt: skip
    return ProcessView(name=name, pid=1, started=started, heartbeat=heartbeat, consumer_beat=beat, draining=draining)


def judge(views, *, redis=True, stopping=False, supervisor_beat=NOW):
    asked = []

    def redis_ok():
        asked.append(1)
        return redis

    live, ready = assess(views, now=NOW, timeout=TIMEOUT, supervisor_beat=supervisor_beat, stopping=stopping,
                         redis_ok=redis_ok)  # fmt: skip
    return live, ready, len(asked)


def test_every_process_consuming_is_live_and_ready():
    """Consumers that beat recently, Redis answering: live and ready."""
    live, ready, _ = judge([view("w0"), view("w1")])
    assert live.ok and ready.ok
    assert [p["state"] for p in live.processes] == ["consuming", "consuming"]
    assert ready.reason == "2 of 2 worker processes consume"


def test_one_stalled_consumer_fails_liveness_but_not_readiness():
    """A process whose consumer has been silent past the timeout fails liveness, named; the others keep it ready."""
    live, ready, _ = judge([view("w0"), view("w1", beat=NOW - TIMEOUT - 1)])
    assert not live.ok
    assert "w1 (stalled)" in live.reason
    assert ready.ok


def test_a_stopped_watchdog_fails_liveness():
    """A process whose watchdog heartbeat stopped (GIL held) is hung, even if its consumer beat is recent."""
    live, _, _ = judge([view("w0", heartbeat=NOW - TIMEOUT - 1)])
    assert not live.ok and "hung" in live.reason


def test_a_starting_process_gets_the_timeout_to_begin_consuming():
    """A new process that has not consumed yet is starting (live) for the startup grace, then stalled."""
    live, ready, _ = judge([view("w0", beat=0.0, started=NOW - STARTUP_SECONDS + 1)])
    assert live.ok and not ready.ok
    assert ready.reason == "no worker process consumes: w0 (starting)"
    live, _, _ = judge([view("w0", beat=0.0, started=NOW - STARTUP_SECONDS - 1, heartbeat=NOW)])
    assert not live.ok


def test_readiness_names_the_state_of_each_process_when_none_consumes():
    """With every consumer stalled (say, cancelled) and none starting, readiness says so plainly, naming each."""
    _, ready, _ = judge([view("w0", beat=NOW - TIMEOUT - 1), view("w1", beat=NOW - TIMEOUT - 5)])
    assert not ready.ok
    assert ready.reason == "no worker process consumes: w0 (stalled), w1 (stalled)"
    assert "yet" not in ready.reason


def test_silent_consumers_while_redis_is_down_stay_live_but_not_ready():
    """When Redis is unreachable, no consumer can consume: a restart would not help, so only readiness fails."""
    live, ready, _ = judge([view("w0", beat=NOW - 60)], redis="ConnectionError: refused")
    assert live.ok and "Redis" in live.reason
    assert not ready.ok and "ConnectionError" in ready.reason


def test_shutdown_is_live_and_not_ready():
    """During a warm shutdown consumers stop on purpose: live, not ready, and Redis is not asked."""
    live, ready, asked = judge([view("w0", beat=NOW - 60)], stopping=True)
    assert live.ok and not ready.ok and asked == 0


def test_a_draining_process_does_not_count():
    """A process drained for memory stops consuming on purpose; its replacement is what counts."""
    live, ready, _ = judge([view("w0", beat=NOW - 60, draining=True), view("w1")])
    assert live.ok and ready.ok


def test_a_stuck_supervisor_or_no_process_fails_liveness():
    assert not judge([view()], supervisor_beat=NOW - TIMEOUT - 1)[0].ok
    assert not judge([])[0].ok


def test_consuming_means_the_task_consumer_consumes_some_queue():
    """A consumer with no task consumer, or whose queues were all cancelled, is not consuming."""

    class TaskConsumer:
        def __init__(self, active):
            self.queues = ["luaq", "other"]
            self.active = active

        def consuming_from(self, queue):
            return queue in self.active

    assert not consuming(SimpleNamespace(task_consumer=None))
    assert not consuming(SimpleNamespace(task_consumer=TaskConsumer(set())))
    assert consuming(SimpleNamespace(task_consumer=TaskConsumer({"other"})))


def test_consumer_beat_step_beats_from_the_consumer_timer_while_consuming():
    """The bootstep registers a repeating timer; each tick writes the clock only while the consumer consumes."""

    class Timer:
        def __init__(self):
            self.entries = []

        def call_repeatedly(self, interval, fun, args):
            self.entries.append((interval, fun, args))
            return len(self.entries)

        def cancel(self, entry):
            self.entries[entry - 1] = None

    class TaskConsumer:
        queues = ["luaq"]
        active = True

        def consuming_from(self, queue):
            return self.active

    beat = multiprocessing.get_context("spawn").Value("d", 0.0, lock=False)
    clock = iter([5.0, 6.0, 7.0]).__next__
    step_class = consumer_beat_step(beat, interval=0.5, clock=clock)
    consumer = SimpleNamespace(timer=Timer(), task_consumer=TaskConsumer())
    step = step_class(consumer)
    step.start(consumer)
    assert beat.value == 5.0  # a first beat at once
    interval, tick, args = consumer.timer.entries[0]
    assert interval == 0.5
    tick(*args)
    assert beat.value == 6.0
    consumer.task_consumer.active = False
    tick(*args)
    assert beat.value == 6.0
    step.stop(consumer)
    assert consumer.timer.entries == [None]


@pytest.fixture
def endpoint():
    state = {"live": Verdict(True, "fine"), "ready": Verdict(False, "Redis unreachable: x")}
    server = HealthServer(0, lambda: (state["live"], state["ready"]),
                          lambda accept: (b"luaq_jobs_running 0.0\n", "text/plain; version=0.0.4"),
                          host="127.0.0.1").start()  # fmt: skip
    yield server, state
    server.stop()


def test_the_endpoint_answers_200_or_503_with_json(endpoint):
    """/healthz and /readyz answer 200 when their verdict is ok, 503 when not, with the reason."""
    server, _ = endpoint
    ok, body = probe(server.port, "/healthz")
    assert ok and body["status"] == "ok" and body["reason"] == "fine"
    ok, body = probe(server.port, "/readyz")
    assert not ok and body["status"] == "failing" and "Redis" in body["reason"]
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as response:
        assert response.read() == b"luaq_jobs_running 0.0\n"
        assert response.headers["Content-Type"].startswith("text/plain")
    ok, body = probe(server.port, "/nope")
    assert not ok


def test_probe_of_a_port_nobody_serves_fails():
    ok, body = probe(1, "/healthz", timeout=1)
    assert not ok and body["status"] == "unreachable"


def test_luaq_health_exits_0_when_live_and_1_when_not(endpoint, monkeypatch):
    """`luaq health --live` passes on a live worker; `luaq health` (both) fails when it is not ready."""
    server, state = endpoint
    monkeypatch.setenv("LUAQ_METRICS_PORT", str(server.port))
    runner = CliRunner()
    result = runner.invoke(cli, ["health", "--live"])
    assert result.exit_code == 0, result.output
    assert "live: ok: fine" in result.output
    result = runner.invoke(cli, ["health"])
    assert result.exit_code == 1
    assert "ready: FAILING" in result.output
    result = runner.invoke(cli, ["health", "--ready", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["ready"]["status"] == "failing"
    state["live"] = Verdict(False, "not consuming")
    assert runner.invoke(cli, ["health", "--live", "--port", str(server.port)]).exit_code == 1


def test_luaq_health_live_and_ready_together_checks_both(endpoint, monkeypatch):
    """`luaq health --live --ready` asks both endpoints and fails when either fails, in either order."""
    server, state = endpoint
    monkeypatch.setenv("LUAQ_METRICS_PORT", str(server.port))
    runner = CliRunner()
    for flags in (["--live", "--ready"], ["--ready", "--live"]):
        result = runner.invoke(cli, ["health", *flags])
        assert result.exit_code == 1
        assert "live: ok: fine" in result.output and "ready: FAILING" in result.output
    state["ready"] = Verdict(True, "1 of 1 worker processes consume")
    state["live"] = Verdict(False, "not consuming")
    result = runner.invoke(cli, ["health", "--live", "--ready", "--json"])
    assert result.exit_code == 1
    assert {name: body["status"] for name, body in json.loads(result.output).items()} == {
        "live": "failing", "ready": "ok"}  # fmt: skip


def test_luaq_health_with_the_endpoint_off_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("LUAQ_METRICS_PORT", "0")
    result = CliRunner().invoke(cli, ["health"])
    assert result.exit_code == 2 and "LUAQ_METRICS_PORT=0" in result.output


def test_metrics_port_setting():
    """LUAQ_METRICS_PORT defaults to 9808, 0 turns the endpoint off, anything else is refused."""
    assert Settings.from_env({}).metrics_port == 9808
    assert Settings.from_env({"LUAQ_METRICS_PORT": "0"}).metrics_port == 0
    assert Settings.from_env({"LUAQ_LIVENESS_TIMEOUT": "2.5"}).liveness_timeout_seconds == 2.5
    for bad in ("http", "70000", "-1"):
        with pytest.raises(SettingsError, match="LUAQ_METRICS_PORT"):
            Settings.from_env({"LUAQ_METRICS_PORT": bad})
