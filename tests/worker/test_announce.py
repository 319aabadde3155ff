"""worker.announce: the rate limits a worker announces read back as the limits it enforces."""

from __future__ import annotations

import json

from worker import keys
from worker.announce import announce_limits, announced_limits, limits_document, parsed, withdraw_limits
from worker.ratelimit import DEFAULT_IN_FLIGHT, RedisLimiter, parse_rates

TRIAL = '{"*": {"create": [6, 1], "in_flight": 5}, "default": {"daily_predictions": 8}}'


def test_a_document_answers_as_the_limits_it_was_made_from(fake_redis):
    """A limiter built on the announced document gives every account the rate, in-flight cap
    and daily cap the worker's own limiter does, defaults included."""
    rates = parse_rates('{"*": {"create": [6, 1], "in_flight": 5, "daily_predictions": 50}, '
                        '"default": {"daily_predictions": 8}, "work": {"other": 120, "daily_predictions": null}}')  # fmt: skip
    worker = RedisLimiter(fake_redis, rates)
    reader = RedisLimiter(fake_redis, parsed(json.loads(json.dumps(limits_document(rates)))))
    for account in ("default", "work", "other-account"):
        for bucket in ("create", "other"):
            assert reader.rate(account, bucket) == worker.rate(account, bucket)
        assert reader.in_flight_cap(account) == worker.in_flight_cap(account)
        assert reader.daily_predictions_cap(account) == worker.daily_predictions_cap(account)
    assert reader.daily_predictions_cap("work") is None and reader.daily_predictions_cap("default") == 8


def test_the_document_writes_the_defaults_out_under_star():
    """With no LUAQ_RATE_LIMITS the document still says what is enforced: Replicate's limits, no daily cap."""
    assert limits_document({}) == {"*": {"create": [600.0, 20], "other": [3000.0, 100],
                                         "in_flight": DEFAULT_IN_FLIGHT, "daily_predictions": None}}  # fmt: skip
    assert limits_document(parse_rates(TRIAL)) == {
        "*": {"create": [6.0, 1], "other": [3000.0, 100], "in_flight": 5, "daily_predictions": None},
        "default": {"daily_predictions": 8},
    }


def test_announcements_are_read_per_worker_until_withdrawn(fake_redis):
    """Each supervisor's announcement is its own key with an expiry; withdrawing removes it."""
    announce_limits(fake_redis, "luaq-1@a", parse_rates(TRIAL), ttl_seconds=20)
    announce_limits(fake_redis, "luaq-2@b", {}, ttl_seconds=20)
    found = announced_limits(fake_redis)
    assert set(found) == {"luaq-1@a", "luaq-2@b"}
    assert found["luaq-1@a"]["default"] == {"daily_predictions": 8}
    assert 0 < fake_redis.pttl(keys.limits("luaq-1@a")) <= 20_000
    withdraw_limits(fake_redis, "luaq-2@b")
    assert set(announced_limits(fake_redis)) == {"luaq-1@a"}


def test_an_announcement_that_does_not_parse_is_left_out(fake_redis):
    """Limits written by some other luaq that this one cannot read are skipped, not fatal."""
    fake_redis.set(keys.limits("luaq-3@c"), '{"*": {"create": "fast"}}')
    fake_redis.set(keys.limits("luaq-4@d"), "not json")
    fake_redis.set(keys.limits("luaq-5@e"), '{"*": {"create": null}}')
    announce_limits(fake_redis, "luaq-1@a", {}, ttl_seconds=20)
    assert set(announced_limits(fake_redis)) == {"luaq-1@a"}
