"""Turns at the CPU (worker.cpu): at most N jobs of a process work at once, in order."""

from __future__ import annotations

import threading

from tests.conftest import wait_until
from worker.cpu import CpuSlots


def test_one_slot_lets_one_job_work_at_a_time_and_hands_it_over_in_order():
    slots = CpuSlots(1)
    first = slots.turn()
    order, working, most = [], [0], [0]
    lock = threading.Lock()

    def job(name: str) -> None:
        with slots.turn().held():
            with lock:
                working[0] += 1
                most[0] = max(most[0], working[0])
                order.append(name)
            with lock:
                working[0] -= 1

    with first.held():
        threads = []
        for name in "abc":
            thread = threading.Thread(target=job, args=(name,))
            thread.start()
            threads.append(thread)
            queued = len(threads)
            wait_until(lambda: slots.waiting == queued, message=f"{name} waiting")  # noqa: B023
    for thread in threads:
        thread.join(5)
    assert order == ["a", "b", "c"] and most[0] == 1
    assert slots.waiting == 0 and slots._free == 1


def test_a_job_that_needs_no_turn_gives_it_up_and_takes_it_back_after():
    slots = CpuSlots(1)
    mine, other = slots.turn(), slots.turn()
    got = threading.Event()
    with mine.held():
        assert slots._free == 0
        thread = threading.Thread(target=lambda: (other._take(), got.set(), other._give_up()))
        thread.start()
        wait_until(lambda: slots.waiting == 1)
        assert not got.is_set()
        with mine.released():  # a call out, a sleep, its Lua: the other job works meanwhile
            assert got.wait(5)
        thread.join(5)
        assert mine._holding  # back in its turn
    assert slots._free == 1 and slots.waiting == 0


def test_the_turn_of_a_stuck_job_is_revoked_and_the_others_go_on():
    slots = CpuSlots(1)
    stuck, other = slots.turn(), slots.turn()
    stuck._take()  # it never gives its turn up again
    worked = threading.Event()
    thread = threading.Thread(target=lambda: (other._take(), worked.set(), other._give_up()))
    thread.start()
    wait_until(lambda: slots.waiting == 1)
    stuck.revoke()
    assert worked.wait(5)
    thread.join(5)
    stuck._give_up()  # it came back after all: no second release
    with stuck.released():
        pass  # and it no longer takes turns
    assert slots._free == 1 and slots.waiting == 0


def test_no_limit_when_the_count_is_zero():
    slots = CpuSlots(0)
    turns = [slots.turn() for _ in range(5)]
    for turn in turns:
        turn._take()
    assert slots.waiting == 0


def test_lua_that_computes_long_while_others_wait_goes_on_without_the_turn():
    """Within a stretch of Lua, slice() keeps the turn while nobody waits or the stretch
    is short; past STEP_ASIDE_SECONDS with someone waiting it gives the turn up, and the
    job takes it back when the stretch ends."""
    from worker.cpu import STEP_ASIDE_SECONDS, Turn

    now = [0.0]
    slots = CpuSlots(1)
    mine, other = Turn(slots, clock=lambda: now[0]), slots.turn()
    got = threading.Event()
    with mine.held():
        with mine.computing():
            now[0] += 10 * STEP_ASIDE_SECONDS
            mine.slice()  # nobody waits: it keeps its turn
            assert mine._holding
            thread = threading.Thread(target=lambda: (other._take(), got.set(), other._give_up()))
            thread.start()
            wait_until(lambda: slots.waiting == 1)
            mine.slice()  # someone waits and the stretch is long: step aside
            assert got.wait(5)
            thread.join(5)
            assert not mine._holding
        assert mine._holding  # the stretch is over: back in its turn for its Python work
        with mine.computing():
            thread = threading.Thread(target=lambda: (other._take(), other._give_up()))
            thread.start()
            wait_until(lambda: slots.waiting == 1)
            mine.slice()  # a fresh, short stretch keeps the turn even though someone waits
            assert mine._holding
    thread.join(5)
    assert slots._free == 1 and slots.waiting == 0


def test_blocking_waits_give_the_current_turn_up():
    """Code that knows nothing of turns (httpx, the limiter's sleeps) waits inside
    blocking(): the turn of the thread's work is free meanwhile, and taken back after."""
    from worker.cpu import blocking, sleep, working

    slots = CpuSlots(1)
    with working(slots.turn()):
        assert slots._free == 0
        with blocking():
            assert slots._free == 1
        sleep(0)
        assert slots._free == 0
    with blocking():  # no turn: nothing to give up
        pass
    assert slots._free == 1


def test_http_exchanges_of_a_jobs_client_wait_without_the_turn():
    """The worker's HTTP client gives the turn up while it waits for the answer and for
    each piece of the body, and has it back for the Python work in between."""
    import httpx

    from worker.cpu import working
    from worker.providers import thread_http_client

    slots = CpuSlots(1)
    seen = []

    def body():
        for piece in (b"ab", b"cd"):
            seen.append(("body", slots._free))
            yield piece

    def handler(request):
        seen.append(("answer", slots._free))
        return httpx.Response(200, content=body())

    transport = httpx.MockTransport(handler)
    with working(slots.turn()):
        response = thread_http_client(transport).get("http://replicate.invalid/v1/account")
        assert response.content == b"abcd"
        assert slots._free == 0
    assert seen == [("answer", 1), ("body", 1), ("body", 1)]


def test_each_call_works_in_a_turn_of_its_own_and_revoke_frees_the_ones_still_out():
    from worker.cpu import TakingTurns

    slots = CpuSlots(1)
    release, inside = threading.Event(), threading.Event()

    class Provider:
        name = "stub"

        def call(self, function, account, args, *, timeout=None):
            inside.set()
            assert slots._free == 0  # the call works in its own turn
            release.wait(5)
            return "done"

    calls = TakingTurns(Provider(), slots)
    result = []
    thread = threading.Thread(target=lambda: result.append(calls.call("f", "default", {})))
    thread.start()
    assert inside.wait(5)
    calls.revoke()  # the run gave the call up: its turn goes back at once
    assert slots._free == 1
    release.set()
    thread.join(5)
    assert result == ["done"] and slots._free == 1
