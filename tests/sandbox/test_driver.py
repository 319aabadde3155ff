"""Driving a run step by step: the request is performed apart from resuming the script."""

from __future__ import annotations

import asyncio

import pytest

from sandbox import run_script
from sandbox._bridge import CallResult, ProviderCall, Sleep, Slept
from sandbox._driver import perform
from sandbox._runtime import Finished, Pending, ScriptRun
from sandbox.testing import FakeClock


def test_a_run_stops_at_each_request_until_it_is_resumed(provider, clock):
    """start/resume hand back each pending request; performing it is the caller's job."""
    run = ScriptRun(
        "sleep(2) local a = app.integrations.replicate.get_account() return a.username",
        providers=[provider],
        clock=clock,
    )
    step = run.start()
    assert isinstance(step, Pending)
    assert step.request == Sleep(2.0)
    step = run.resume(Slept())
    assert isinstance(step, Pending)
    request = step.request
    assert isinstance(request, ProviderCall)
    assert (request.function, request.account, request.args) == (
        "get_authenticated_account",
        "default",
        {},
    )
    assert provider.calls == []
    step = run.resume(CallResult(clock(), clock(), outcome={"username": "bob"}))
    assert isinstance(step, Finished)
    assert step.envelope.result == ["bob"]


def test_refused_requests_are_answered_without_the_driver(provider, clock):
    """A denied write is answered inside the run: the driver only sees the next request."""
    run = ScriptRun(
        "pcall(app.integrations.replicate.create_prediction, {}) sleep(1)",
        providers=[provider],
        clock=clock,
    )
    step = run.start()
    assert isinstance(step, Pending) and step.request == Sleep(1.0)


def test_an_async_driver_can_interleave_many_runs(provider):
    """Runs driven from one asyncio loop wait concurrently (the perform step is separable)."""
    clock = FakeClock()

    async def perform_async(request):
        if isinstance(request, Sleep):
            await asyncio.sleep(0)
            return Slept()
        return await asyncio.to_thread(perform, request, clock=clock)

    async def drive_async(source: str):
        run = ScriptRun(source, providers=[provider], clock=clock)
        step = run.start()
        while isinstance(step, Pending):
            step = run.resume(await perform_async(step.request))
        return step.envelope

    async def main():
        sources = [
            f"local r = {{}} for i = 1, 3 do sleep(1) r[i] = {n} end "
            "return r, app.integrations.replicate.get_account().username"
            for n in range(20)
        ]
        return await asyncio.gather(*(drive_async(s) for s in sources))

    envelopes = asyncio.run(main())
    assert [e.result for e in envelopes] == [[[n, n, n], "alice"] for n in range(20)]
    assert len(provider.calls) == 20


def test_resume_without_a_pending_request_is_a_programming_error(provider, clock):
    """resume() is only valid while a request is pending."""
    run = ScriptRun("return 1", providers=[provider], clock=clock)
    assert isinstance(run.start(), Finished)
    with pytest.raises(RuntimeError):
        run.resume(Slept())


def test_on_output_exceptions_reach_the_caller(provider, clock):
    """An exception raised by on_output stops the run and propagates from run_script."""

    class Cancelled(BaseException):
        pass

    def on_output(line: str) -> None:
        raise Cancelled(line)

    with pytest.raises(Cancelled, match="first"):
        run_script(
            'pcall(print, "first") while true do end',
            providers=[provider],
            on_output=on_output,
            clock=clock,
            sleep=clock.sleep,
        )


def test_on_call_exceptions_reach_the_caller(provider, clock):
    """An exception raised by on_call propagates from run_script."""

    def on_call(entry: dict) -> None:
        raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        run_script(
            "app.integrations.replicate.get_account()",
            providers=[provider],
            on_call=on_call,
            clock=clock,
            sleep=clock.sleep,
        )


def test_invalid_job_args_fail_the_run_without_raising(clock):
    """Args that cannot become Lua end in a failed envelope, not an exception."""
    deep: dict = {}
    node = deep
    for _ in range(300):
        node["x"] = {}
        node = node["x"]
    envelope = run_script("return 1", args=deep, clock=clock, sleep=clock.sleep)
    assert envelope.status == "failed"
    assert envelope.error.type == "validation"


def test_clock_exceptions_reach_the_caller(provider):
    """An exception from the injected clock (read by the ticks) propagates from run_script."""

    class Broken(Exception):
        pass

    readings = iter(range(5))

    def clock() -> float:
        try:
            return float(next(readings))
        except StopIteration:
            raise Broken("clock stopped") from None

    with pytest.raises(Broken):
        run_script("while true do end", providers=[provider], clock=clock, sleep=lambda s: None)


class _BlockingProvider:
    """A provider whose one call blocks until released."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()

    def call(self, function, account, args, *, timeout=None):
        self.release.wait(10)
        return "done"


def _call_request(provider) -> ProviderCall:
    return ProviderCall(provider=provider, function="f", account="default", args={}, timeout=10.0, spec=None)


def test_a_cancellation_wakes_a_waiting_call_at_once_without_polling():
    """With a Cancellation, the driver waits on one event that the call's end or the
    cancel sets: a cancel ends the wait at once, a finished call hands back its outcome."""
    import threading
    import time

    from sandbox import Cancellation
    from sandbox._driver import perform_cancellable

    blocking = _BlockingProvider()
    cancel = Cancellation()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    assert perform_cancellable(_call_request(blocking), cancel) is None
    assert time.monotonic() - started < 1.0
    blocking.release.set()

    finished = _BlockingProvider()
    finished.release.set()
    outcome = perform_cancellable(_call_request(finished), Cancellation())
    assert isinstance(outcome, CallResult) and outcome.outcome == "done"


class _ThreadRecorder:
    """A provider that notes which thread ran each call, blocking while ``hold`` is set."""

    def __init__(self) -> None:
        import threading

        self.threads: list[int] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()

    def call(self, function, account, args, *, timeout=None):
        import threading

        self.threads.append(threading.get_ident())
        if self.hold.is_set():
            self.held.set()
            self.release.wait(10)
        return "done"


def test_calls_reuse_idle_threads_and_a_busy_one_gets_company(monkeypatch):
    """One call after another runs on one thread; a call made while another is still out
    (given up on by a cancel) gets a thread of its own."""
    import time

    from sandbox import Cancellation, _driver
    from sandbox._driver import perform_cancellable

    monkeypatch.setattr(_driver, "_CALLERS", _driver._CallThreads())  # no idle threads of other tests
    recorder = _ThreadRecorder()
    for _ in range(5):
        assert perform_cancellable(_call_request(recorder), Cancellation()).outcome == "done"
        time.sleep(0.01)  # the thread goes back to waiting for work after handing its outcome over
    assert len(set(recorder.threads)) == 1

    recorder.hold.set()
    cancel = Cancellation()
    cancel.set()
    assert perform_cancellable(_call_request(recorder), cancel) is None
    assert recorder.held.wait(5)  # that call is still out, holding its thread
    recorder.hold.clear()
    assert perform_cancellable(_call_request(recorder), Cancellation()).outcome == "done"
    recorder.release.set()
    assert len(set(recorder.threads[-2:])) == 2


def test_a_call_that_outlives_its_time_is_given_up_on_and_the_run_ends_at_its_wall_clock():
    """A call stuck in the network past the run's wall clock no longer holds the run: the
    driver gives up on it (an upstream trickling bytes never trips httpx's timeouts)."""
    import threading
    import time

    from sandbox import Cancellation, Limits
    from sandbox._driver import CallOverran, perform_cancellable
    from sandbox.testing import StubFunction, StubProvider

    blocking = _BlockingProvider()
    request = ProviderCall(provider=blocking, function="f", account="default", args={}, timeout=0.2, spec=None)
    started = time.monotonic()
    outcome = perform_cancellable(request, Cancellation())
    assert isinstance(outcome, CallResult) and isinstance(outcome.error, CallOverran)
    assert 0.2 <= time.monotonic() - started < 1.0
    blocking.release.set()

    release = threading.Event()
    provider = StubProvider(StubFunction(("get_account",), result=lambda args, account: (release.wait(10), {})[1]))
    started = time.monotonic()
    envelope = run_script("local ok = pcall(app.integrations.replicate.get_account, {}) return ok",
                          providers=[provider], limits=Limits(wall_clock_seconds=0.5), cancel=Cancellation())  # fmt: skip
    release.set()
    result = envelope.to_dict()
    assert result["status"] == "limit_exceeded" and result["error"]["limit"] == "wall_clock"
    assert time.monotonic() - started < 1.5
    assert "abandoned" in result["integration_calls"][0]["error"]
