"""worker.status, from Redis alone (fakeredis): whose limits it shows, and each account's
in-flight requests and daily predictions under them. tests/e2e/test_status.py runs
`luaq status` against real workers."""

from __future__ import annotations

from dataclasses import replace

from worker import keys
from worker.announce import announce_limits
from worker.ratelimit import parse_rates
from worker.status import collect, render

TRIAL = '{"*": {"create": [6, 1], "in_flight": 5}, "default": {"daily_predictions": 8}}'


def server_ms(client) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_without_any_announcement_the_callers_own_limits_stand_in_labelled(fake_redis, settings):
    """No worker announced: this shell's LUAQ_RATE_LIMITS are shown, and said to be this shell's."""
    fake_redis.set(keys.rate("default", "create"), 0)
    mine = replace(settings, rate_limits=parse_rates('{"*": {"create": [60, 5]}}'))
    status = collect(fake_redis, None, mine)
    assert status["limits"]["source"] == "environment" and status["limits"]["workers"] == []
    assert status["accounts"]["default"]["buckets"]["create"]["per_minute"] == 60
    assert "no worker announced its limits: showing this shell's LUAQ_RATE_LIMITS" in render(status)
    status = collect(fake_redis, None, settings)
    assert status["limits"]["source"] == "defaults"
    assert status["accounts"]["default"]["buckets"]["create"]["per_minute"] == 600
    assert "showing luaq's defaults" in render(status)


def test_the_workers_announced_limits_win_over_the_callers(fake_redis, settings):
    """The trial: a worker enforcing 6/min, 5 in flight and 8 predictions a day is shown so,
    whatever the shell running status has set."""
    announce_limits(fake_redis, "luaq-1@host", parse_rates(TRIAL), ttl_seconds=20)
    fake_redis.hset(keys.ACCOUNTS, "default", server_ms(fake_redis) + 60_000)
    mine = replace(settings, rate_limits=parse_rates('{"*": {"create": [6000, 50]}}'))
    status = collect(fake_redis, None, mine)
    assert status["limits"]["source"] == "workers" and status["limits"]["workers"] == ["luaq-1@host"]
    default = status["accounts"]["default"]  # announced by the worker: shown before any call
    assert (default["buckets"]["create"]["per_minute"], default["buckets"]["create"]["burst"]) == (6, 1)
    assert default["buckets"]["other"]["per_minute"] == 3000
    assert default["in_flight"] == {"now": 0, "cap": 5}
    assert default["daily_predictions"] == {"today": 0, "cap": 8}
    text = render(status)
    assert "LIMITS  announced by 1 worker (luaq-1@host)" in text
    row = next(line for line in text.splitlines() if line.startswith("default "))
    assert "6/min, 0/1" in row and "0/5" in row and row.endswith("0/8")


def test_in_flight_now_counts_live_leases_and_today_counts_todays_predictions(fake_redis, settings):
    """In flight: leases not yet expired (a crashed worker's expired lease is not counted).
    Today: the daily counter when it is today's (UTC, server clock), else 0; no cap, no count."""
    announce_limits(fake_redis, "luaq-1@host", parse_rates(TRIAL), ttl_seconds=20)
    now = server_ms(fake_redis)
    fake_redis.zadd(keys.in_flight("default"), {"a": now + 60_000, "b": now + 60_000, "crashed": now - 1_000})
    fake_redis.hset(keys.daily_spend("default"), mapping={"day": now // 86_400_000, "predictions": 3})
    fake_redis.zadd(keys.in_flight("work"), {"c": now + 60_000})
    fake_redis.hset(keys.daily_spend("work"), mapping={"day": now // 86_400_000, "predictions": 2})
    fake_redis.hset(keys.daily_spend("yesterday"), mapping={"day": now // 86_400_000 - 1, "predictions": 7})
    status = collect(fake_redis, None, settings)
    accounts = status["accounts"]
    assert accounts["default"]["in_flight"] == {"now": 2, "cap": 5}
    assert accounts["default"]["daily_predictions"] == {"today": 3, "cap": 8}
    assert accounts["work"]["in_flight"] == {"now": 1, "cap": 5}
    assert accounts["work"]["daily_predictions"] is None  # no cap for "work": the count is not shown
    assert accounts["yesterday"]["in_flight"]["now"] == 0
    row = next(line for line in render(status).splitlines() if line.startswith("work "))
    assert row.endswith("1/5        no cap")


def test_workers_that_disagree_are_named(fake_redis, settings):
    """Two workers announce one set of limits and a third another: the majority's are shown,
    and the odd one out is named with its limits."""
    announce_limits(fake_redis, "luaq-1@a", parse_rates(TRIAL), ttl_seconds=20)
    announce_limits(fake_redis, "luaq-2@b", parse_rates(TRIAL), ttl_seconds=20)
    announce_limits(fake_redis, "luaq-3@c", {}, ttl_seconds=20)
    fake_redis.set(keys.rate("default", "create"), 0)
    status = collect(fake_redis, None, settings)
    limits = status["limits"]
    assert limits["workers"] == ["luaq-1@a", "luaq-2@b"]
    [other] = limits["disagreeing"]
    assert other["workers"] == ["luaq-3@c"] and other["rate_limits"]["*"]["create"] == [600.0, 20]
    assert status["accounts"]["default"]["buckets"]["create"]["per_minute"] == 6
    assert "announced by 2 workers (luaq-1@a, luaq-2@b); other limits from 1 worker (luaq-3@c): " in render(status)
