"""The shared limits on a real Redis: many clients, threads racing, and two clients whose
local clocks disagree by a minute still sharing one limit (decisions use the server's TIME)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from api_client import CapExceeded
from worker.ratelimit import Rate, RateLimitExceeded, RedisLimiter

pytestmark = pytest.mark.redis

A_MINUTE = 60.0


@pytest.fixture
def connections(real_settings) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    """Two separate connections, as two worker hosts would have."""
    first = redis.Redis.from_url(real_settings.redis_url, decode_responses=True)
    second = redis.Redis.from_url(real_settings.redis_url, decode_responses=True)
    yield first, second
    first.close()
    second.close()


def skewed_pair(connections, rates) -> tuple[RedisLimiter, RedisLimiter]:
    """Two limiters, the second one's local clock a minute ahead of the first's."""
    first, second = connections
    return (
        RedisLimiter(first, rates, clock=time.monotonic),
        RedisLimiter(second, rates, clock=lambda: time.monotonic() + A_MINUTE),
    )


def test_clients_a_minute_apart_share_one_burst_and_agree_on_the_wait(connections):
    """A burst of 5 is 5 between both clients, and both are told the same wait for the next token."""
    ahead, behind = skewed_pair(connections, {"acct": {"create": Rate(60, 5)}})
    taken = [ahead.try_acquire("acct", "create") for _ in range(3)]
    taken += [behind.try_acquire("acct", "create") for _ in range(2)]
    assert taken == [0.0] * 5
    wait_ahead, wait_behind = ahead.try_acquire("acct", "create"), behind.try_acquire("acct", "create")
    assert 0.8 < wait_ahead <= 1.0 and abs(wait_ahead - wait_behind) < 0.05


def test_a_skewed_clock_only_moves_its_own_deadline(connections):
    """The clock a minute ahead neither lets its client past the limit nor ends its wait early:
    it waits for the next token like the other client."""
    ahead, behind = skewed_pair(connections, {"acct": {"create": Rate(600, 1)}})
    assert behind.acquire("acct", "create", timeout=5) == 0.0
    started = time.monotonic()
    waited = ahead.acquire("acct", "create", timeout=5)
    assert waited > 0.05 and 0.05 < time.monotonic() - started < 1.0
    behind.throttled("acct", "create", 30)  # a 429 seen by one client blocks the other, skew or not
    started = time.monotonic()
    with pytest.raises(RateLimitExceeded):
        ahead.acquire("acct", "create", timeout=5)
    assert time.monotonic() - started < 1.0  # refused at once, not slept to its deadline


def test_in_flight_leases_expire_on_the_servers_clock_not_a_clients(connections):
    """A client whose clock is a minute ahead does not take the other client's live leases for
    expired: the cap holds until they are released."""
    ahead, behind = skewed_pair(connections, {"acct": {"in_flight": 2}})
    with (
        behind.in_flight("acct", timeout=None),
        behind.in_flight("acct", timeout=None),
        pytest.raises(RateLimitExceeded),
        ahead.in_flight("acct", timeout=0.2),
    ):
        pass
    with ahead.in_flight("acct", timeout=0.2) as waited:
        assert waited == 0.0


def test_in_flight_cap_holds_under_racing_threads(real_settings):
    """Twelve threads on their own connections never have more than the cap of 3 in flight."""
    in_flight, most, done = [0], [0], []
    lock = threading.Lock()

    def worker() -> None:
        limiter = RedisLimiter(redis.Redis.from_url(real_settings.redis_url), {"acct": {"in_flight": 3}})
        for _ in range(5):
            with limiter.in_flight("acct", timeout=30):
                with lock:
                    in_flight[0] += 1
                    most[0] = max(most[0], in_flight[0])
                time.sleep(0.01)
                with lock:
                    in_flight[0] -= 1
        done.append(True)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(done) == 12
    assert most[0] == 3


def test_the_rate_holds_under_racing_threads(real_settings):
    """Eight threads taking tokens as fast as they can for 1.5 s get the burst plus the rate, no more."""
    granted: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 1.5

    def worker() -> None:
        limiter = RedisLimiter(redis.Redis.from_url(real_settings.redis_url), {"acct": {"create": Rate(600, 5)}})
        while True:
            limiter.acquire("acct", "create", timeout=5)
            now = time.monotonic()
            if now > stop:
                return
            with lock:
                granted.append(now)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert 5 + 15 * 0.85 <= len(granted) <= 5 + 15 + 1


def test_the_daily_cap_is_shared_by_clients_a_minute_apart(connections):
    """Both clients count against one daily counter, kept by the server's day."""
    ahead, behind = skewed_pair(connections, {"acct": {"daily_predictions": 3}})
    ahead.spend("acct", "create_prediction")
    behind.spend("acct", "create_prediction")
    ahead.spend("acct", "create_prediction")
    for limiter in (ahead, behind):
        with pytest.raises(CapExceeded):
            limiter.spend("acct", "create_prediction")
    assert ahead.daily_predictions("acct") == behind.daily_predictions("acct") == 3
