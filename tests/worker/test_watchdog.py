"""The watchdog: ends the process when a run outlives its wall clock plus the margin."""

import threading

from worker.watchdog import EXIT_STATUS, Watchdog


def test_expired_run_records_and_exits():
    """A run past its limit gets on_expire called, then the exit with EXIT_STATUS."""
    events = []
    exited = threading.Event()

    def fake_exit(status):
        events.append(("exit", status))
        exited.set()

    with Watchdog(0.01, lambda: events.append(("expire",)), margin=0.01, exit=fake_exit):
        assert exited.wait(5)
    assert events == [("expire",), ("exit", EXIT_STATUS)]


def test_run_that_ends_in_time_is_left_alone():
    """A run that finishes before the limit triggers nothing."""
    events = []
    with Watchdog(5, lambda: events.append("expire"), exit=lambda status: events.append(status)):
        pass
    assert events == []
