"""The shared rate limiter: GCRA on the Redis server's clock."""

import threading
import time

import pytest
import structlog

from api_client import CapExceeded
from worker.ratelimit import DEFAULT_IN_FLIGHT, Rate, RateLimitExceeded, RedisLimiter, parse_rates


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


def test_a_wait_is_reported_and_logged(fake_redis):
    """When acquire has to sleep, it returns the seconds slept and logs ratelimit.waited."""
    slept = []
    limiter = RedisLimiter(fake_redis, {"a": {"create": Rate(600, 1)}}, sleep=lambda s: (slept.append(s), time.sleep(s)),
                           jitter=0)  # fmt: skip
    limiter.acquire("a", "create", timeout=None)
    with structlog.testing.capture_logs() as logs:
        waited = limiter.acquire("a", "create", timeout=None)
    assert waited == pytest.approx(sum(slept)) and 0.05 < waited <= 0.2
    assert [entry["event"] for entry in logs] == ["ratelimit.waited"]
    assert logs[0]["account"] == "a" and logs[0]["wait_ms"] > 50


def test_a_429_is_logged_with_the_account(fake_redis):
    """throttled logs ratelimit.throttled with the account, bucket and retry_after."""
    with structlog.testing.capture_logs() as logs:
        RedisLimiter(fake_redis).throttled("a", "other", 3.0)
    assert logs == [{"event": "ratelimit.throttled", "log_level": "warning", "account": "a", "bucket": "other",
                     "retry_after": 3.0, "blocked_s": 3.0}]  # fmt: skip


# In-flight cap -----------------------------------------------------------------------------


def test_in_flight_slots_are_capped_and_freed(fake_redis):
    """At most in_flight requests of an account hold a slot; leaving the block frees one."""
    limiter = RedisLimiter(fake_redis, {"a": {"in_flight": 2}})
    with limiter.in_flight("a", timeout=None) as first_wait, limiter.in_flight("a", timeout=None):
        assert first_wait == 0.0
        assert fake_redis.zcard("luaq:inflight:a") == 2
        with limiter.in_flight("b", timeout=None):  # another account has slots of its own
            pass
    assert fake_redis.zcard("luaq:inflight:a") == 0
    with limiter.in_flight("a", timeout=None):
        assert fake_redis.zcard("luaq:inflight:a") == 1


def test_a_full_account_waits_for_a_slot_and_gives_up_at_the_deadline(fake_redis):
    """With every slot taken, in_flight polls until its timeout, then fails with rate_limited."""
    fake = FakeTime()
    limiter = RedisLimiter(fake_redis, {"a": {"in_flight": 1}}, sleep=fake.sleep, clock=fake.clock)
    with (
        limiter.in_flight("a", timeout=None),
        structlog.testing.capture_logs() as logs,
        pytest.raises(RateLimitExceeded) as caught,
        limiter.in_flight("a", timeout=0.5),
    ):
        pass
    assert caught.value.error_type == "rate_limited"
    assert 0.4 < sum(fake.slept) <= 0.5  # it waited as long as it could, not longer
    assert all(pause <= 0.06 for pause in fake.slept)  # polling, not sleeping to the lease's end
    assert [entry["event"] for entry in logs] == ["ratelimit.in_flight_refused"]


def test_a_waiting_request_gets_the_slot_a_finished_one_frees(fake_redis):
    """A request waiting for a slot takes it as soon as another request leaves its block."""
    limiter = RedisLimiter(fake_redis, {"a": {"in_flight": 1}})
    holder = limiter.in_flight("a", timeout=None)
    holder.__enter__()
    freed = threading.Timer(0.15, holder.__exit__, args=(None, None, None))
    freed.start()
    with limiter.in_flight("a", timeout=5) as waited:
        assert 0.1 < waited < 1.0
    freed.join()


def test_a_crashed_workers_lease_expires(fake_redis):
    """A lease whose holder died (never released) stops counting once it expires."""
    limiter = RedisLimiter(fake_redis, {"a": {"in_flight": 1}})
    server_ms = fake_redis.time()[0] * 1000
    fake_redis.zadd("luaq:inflight:a", {"lease-of-a-dead-worker": server_ms - 1})
    with limiter.in_flight("a", timeout=0) as waited:
        assert waited == 0.0
    assert fake_redis.zscore("luaq:inflight:a", "lease-of-a-dead-worker") is None


def test_the_in_flight_cap_defaults_to_100_and_reads_the_star_entry(fake_redis):
    """Without a setting an account may have 100 requests in flight; "*" sets every account's."""
    assert RedisLimiter(fake_redis).in_flight_cap("a") == DEFAULT_IN_FLIGHT == 100
    limiter = RedisLimiter(fake_redis, {"*": {"in_flight": 7}, "b": {"in_flight": 3}})
    assert (limiter.in_flight_cap("a"), limiter.in_flight_cap("b")) == (7, 3)


# Daily prediction cap ----------------------------------------------------------------------


def test_the_daily_cap_refuses_creations_past_it(fake_redis):
    """An account with daily_predictions = 2 may create two today; the third is refused as a cap."""
    limiter = RedisLimiter(fake_redis, {"a": {"daily_predictions": 2}})
    limiter.spend("a", "create_prediction")
    limiter.spend("a", "create_prediction")
    with structlog.testing.capture_logs() as logs, pytest.raises(CapExceeded) as caught:
        limiter.spend("a", "create_training")
    assert caught.value.error_type == "limit_exceeded"
    assert caught.value.limit == "daily_predictions"
    assert "00:00 UTC" in str(caught.value)
    assert limiter.daily_predictions("a") == 2  # the refused one is not counted
    assert logs[0]["event"] == "ratelimit.cap_reached" and logs[0]["account"] == "a"
    limiter.spend("b", "create_prediction")  # no cap for b: nothing counted, nothing refused
    assert not fake_redis.exists("luaq:spend:b:daily")


def test_the_daily_count_starts_again_on_a_new_utc_day(fake_redis):
    """Yesterday's count (by the server's clock) does not hold back today's creations."""
    limiter = RedisLimiter(fake_redis, {"*": {"daily_predictions": 1}})
    yesterday = fake_redis.time()[0] // 86400 - 1
    fake_redis.hset("luaq:spend:a:daily", mapping={"day": yesterday, "predictions": 1})
    assert limiter.daily_predictions("a") == 0
    limiter.spend("a", "create_prediction")
    assert limiter.daily_predictions("a") == 1
    with pytest.raises(CapExceeded):
        limiter.spend("a", "create_prediction")


def test_account_settings_from_settings_text():
    """LUAQ_RATE_LIMITS also sets in_flight and daily_predictions (null lifts a "*" cap)."""
    rates = parse_rates('{"*": {"daily_predictions": 500}, "work": {"in_flight": 8, "daily_predictions": null}}')
    assert rates["*"]["daily_predictions"] == 500
    assert rates["work"] == {"in_flight": 8, "daily_predictions": None}
    for bad in ('{"a": {"in_flight": 0}}', '{"a": {"in_flight": 1.5}}', '{"a": {"daily_predictions": "x"}}'):
        with pytest.raises(ValueError, match="whole number"):
            parse_rates(bad)
