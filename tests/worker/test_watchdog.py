"""The watchdog: one per worker process, watching every job the process runs."""

import threading

from worker.watchdog import EXIT_STATUS, Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stuck_job_is_recorded_and_the_process_drains_before_it_ends():
    """A job past its wall clock plus the margin gets on_stuck at once and the process is
    drained (on_drain: no new jobs); the other jobs go on to their ends, and only then does
    the process exit with EXIT_STATUS."""
    clock, events = Clock(), []
    dog = Watchdog(margin=2, exit=lambda status: events.append(("exit", status)), clock=clock, tick=3600,
                   on_drain=lambda: events.append(("drain",)))  # fmt: skip
    with dog.watch("stuck", 1, 1, lambda: events.append(("stuck", "stuck"))):
        with dog.watch("fine", 1, 60, lambda: events.append(("stuck", "fine"))):
            clock.now += 2.9
            dog.check()
            assert events == []
            clock.now += 0.2
            dog.check()
            dog.check()  # once only
            assert events == [("stuck", "stuck"), ("drain",)] and dog.draining
        dog.check()  # "fine" has ended: only the stuck job is left
        assert events[-1] == ("exit", EXIT_STATUS)
        dog.check()
    assert events == [("stuck", "stuck"), ("drain",), ("exit", EXIT_STATUS)]


def test_a_job_stuck_while_the_process_drains_is_recorded_too():
    clock, events = Clock(), []
    dog = Watchdog(margin=2, exit=lambda status: events.append("exit"), clock=clock, tick=3600,
                   on_drain=lambda: events.append("drain"))  # fmt: skip
    with dog.watch("a", 1, 1, lambda: events.append("a")), dog.watch("b", 1, 5, lambda: events.append("b")):
        clock.now += 3.1
        dog.check()
        assert events == ["a", "drain"]
        clock.now += 4
        dog.check()
        assert events == ["a", "drain", "b", "exit"]


def test_jobs_that_end_in_time_are_left_alone_and_forgotten():
    clock, events = Clock(), []
    dog = Watchdog(margin=2, exit=lambda status: events.append(status), clock=clock, tick=3600)
    with dog.watch("a", 1, 1, lambda: events.append("stuck")):
        assert dog.running == 1
    clock.now += 100
    dog.check()
    assert events == [] and dog.running == 0


def test_heartbeat_beats_on_every_tick_from_its_own_thread():
    beats = threading.Semaphore(0)
    dog = Watchdog(heartbeat=beats.release, tick=0.01)
    dog.start()
    for _ in range(3):
        assert beats.acquire(timeout=5)


class RenewingStore:
    class settings:
        lease_seconds = 3.0

    def __init__(self, gone: list[str]) -> None:
        self.gone = gone
        self.calls: list[tuple[str, dict]] = []

    def renew(self, worker: str, held: dict) -> list[str]:
        self.calls.append((worker, dict(held)))
        return self.gone

    cancelled: set[str] = set()

    def cancel_requests(self, job_ids: list[str]) -> set[str]:
        return self.cancelled & set(job_ids)


def test_leases_are_renewed_every_third_of_a_lease_and_takeovers_are_flagged():
    clock, store = Clock(), RenewingStore(gone=["b"])
    dog = Watchdog(store, "w:1", clock=clock, tick=3600, exit=lambda status: None)
    with dog.watch("a", 1, 60, lambda: None) as a, dog.watch("b", 2, 60, lambda: None) as b:
        clock.now += 0.5
        dog.check()
        assert store.calls == []
        clock.now += 0.6
        dog.check()
        assert store.calls == [("w:1", {"a": 1, "b": 2})]
        assert b.taken_over.is_set() and not a.taken_over.is_set()
        assert b.cancel.is_set() and b.cancel_reason == "taken_over"  # its run stops: it can no longer finish


def test_a_cancelled_job_has_its_cancel_event_set_on_the_next_tick():
    """Every tick asks the store which running jobs were cancelled and stops their runs."""
    clock, store = Clock(), RenewingStore(gone=[])
    store.cancelled = {"a"}
    dog = Watchdog(store, "w:1", clock=clock, tick=3600, exit=lambda status: None)
    with dog.watch("a", 1, 60, lambda: None) as a, dog.watch("b", 1, 60, lambda: None) as b:
        dog.check()
        assert a.cancel.is_set() and a.cancel_reason == "cancelled"
        assert not b.cancel.is_set()
