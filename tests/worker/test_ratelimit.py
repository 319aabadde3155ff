"""The shared rate limiter: GCRA on the Redis server's clock."""

import pytest

from worker.ratelimit import Rate, RateLimitExceeded, RedisLimiter, parse_rates


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_burst_then_steady_rate(fake_redis):
    """A bucket allows its burst at once, then asks to wait one interval per request."""
    limiter = RedisLimiter(fake_redis, {"a": {"create": Rate(600, 3)}})
    assert [limiter.try_acquire("a", "create") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.try_acquire("a", "create")
    assert 0.05 < wait <= 0.1  # 600/min: one request every 100 ms


def test_accounts_and_buckets_are_separate(fake_redis):
    """One account's exhausted bucket does not slow another account or bucket."""
    limiter = RedisLimiter(fake_redis, {"*": {"create": Rate(60, 1)}})
    assert limiter.try_acquire("a", "create") == 0.0
    assert limiter.try_acquire("a", "create") > 0
    assert limiter.try_acquire("b", "create") == 0.0
    assert limiter.try_acquire("a", "other") == 0.0


def test_wait_beyond_the_deadline_fails_at_once(fake_redis):
    """acquire raises rate_limited straight away when the wait would outlast the timeout."""
    fake = FakeTime()
    limiter = RedisLimiter(fake_redis, {"a": {"create": Rate(1, 1)}}, sleep=fake.sleep, clock=fake.clock)
    limiter.acquire("a", "create", timeout=5)
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.acquire("a", "create", timeout=5)
    assert caught.value.error_type == "rate_limited"
    assert fake.slept == []


def test_throttled_blocks_every_client_of_the_account(fake_redis):
    """A 429 reported by one client blocks that account's bucket for all clients, not others."""
    first = RedisLimiter(fake_redis)
    second = RedisLimiter(fake_redis)
    first.throttled("a", "create", 2.0)
    assert 1.5 < second.try_acquire("a", "create") <= 2.0
    assert second.try_acquire("b", "create") == 0.0


def test_rates_from_settings_text():
    """LUAQ_RATE_LIMITS gives per-account rates; bad values are refused."""
    rates = parse_rates('{"work": {"create": [6, 1], "other": 120}}')
    assert rates["work"]["create"] == Rate(6, 1)
    assert rates["work"]["other"].per_minute == 120
    with pytest.raises(ValueError):
        parse_rates('{"work": {"bogus": 1}}')
