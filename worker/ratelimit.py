"""Per-account rate limits shared by every worker: one atomic Redis script per decision.

Replicate limits each account: 600 prediction-creating requests a minute, 3000 for
everything else, with short bursts. Celery's ``rate_limit`` is per worker, so N workers
would send N times the rate; instead every client asks :class:`RedisLimiter` before each
request (``api_client``'s ``Limiter`` seam). The algorithm is GCRA: one number per
(account, bucket), the theoretical arrival time, kept on the Redis server's clock
(``TIME``), never a worker's, so hosts whose clocks disagree still share one limit.

A 429 from Replicate blocks the account's bucket for every worker until its
``retry_after`` (``throttled``). A wait that cannot finish within the caller's time left
(the job's wall clock) fails at once with ``RateLimitExceeded`` instead of sleeping to the
deadline.

Two more shared limits per account, each one atomic script on the server's clock:

- in flight (``in_flight``): at most ``in_flight`` requests out at once across all
  workers. Each request holds a lease (a member of a sorted set scored by its expiry);
  a crashed worker's lease expires after ``IN_FLIGHT_LEASE_SECONDS`` instead of holding
  its slot for ever;
- daily predictions (``spend``): an optional cap on the predictions and trainings the
  account creates per UTC day (a counter that starts again at 00:00 UTC); past it, a
  create call fails before it is sent with ``CapExceeded`` (``limit_exceeded``,
  ``error.limit`` = ``daily_predictions``).

Every wait, refusal, 429 and cap hit is logged (``ratelimit.*`` events, with the job's
``job_id``, ``account`` and ``agent_id`` bound by the runner).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import redis
import structlog

from api_client import CapExceeded, ReplicateError

from . import keys

log = structlog.get_logger("luaq.ratelimit")

GCRA_SCRIPT = """
-- KEYS[1] the bucket's theoretical arrival time (ms), KEYS[2] the bucket's blocked-until (ms)
-- ARGV[1] emission interval (ms between requests at the steady rate), ARGV[2] burst
-- Returns {1, 0} when the request may go now, else {0, milliseconds to wait}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = tonumber(redis.call('GET', KEYS[2]) or 0)
if blocked > now then return {0, blocked - now} end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local base = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local wait = base - now - interval * (burst - 1)
if wait > 0 then return {0, math.ceil(wait)} end
local tat = base + interval
redis.call('SET', KEYS[1], tat, 'PX', math.ceil(tat - now) + 1000)
return {1, 0}
"""

THROTTLE_SCRIPT = """
-- KEYS[1] the bucket's blocked-until (ms); ARGV[1] milliseconds to block from now
-- Keeps the later of the existing block and the new one; returns the block's end.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if current >= until_ms then return current end
redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
return until_ms
"""

IN_FLIGHT_SCRIPT = """
-- KEYS[1] the account's in-flight leases (sorted set: lease id -> expiry, ms)
-- ARGV[1] lease id, ARGV[2] the cap, ARGV[3] lease length (ms)
-- Drops expired leases (a crashed worker's), then takes a slot if one is free.
-- Returns {1, 0} with the lease taken, else {0, ms until the oldest lease expires}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(tonumber(oldest[2]) - now, 1)}
"""

DAILY_SCRIPT = """
-- KEYS[1] the account's daily counter (hash: day -> UTC day number, predictions -> count)
-- ARGV[1] the cap
-- Counts one creation for today (UTC, on the server clock) unless the cap is reached.
-- Returns {1, count with this one} or {0, count} when refused.
local t = redis.call('TIME')
local day = math.floor(tonumber(t[1]) / 86400)
local count = 0
if tonumber(redis.call('HGET', KEYS[1], 'day') or -1) == day then
  count = tonumber(redis.call('HGET', KEYS[1], 'predictions') or 0)
else
  redis.call('HSET', KEYS[1], 'day', day, 'predictions', 0)
end
if count >= tonumber(ARGV[1]) then return {0, count} end
redis.call('HINCRBY', KEYS[1], 'predictions', 1)
redis.call('EXPIRE', KEYS[1], 172800)
return {1, count + 1}
"""

# Replicate's published limits; bursts are a few seconds' worth.
DEFAULT_RATES: dict[str, tuple[float, int]] = {"create": (600, 20), "other": (3000, 100)}
# Requests one account may have in flight at once, across all workers.
DEFAULT_IN_FLIGHT = 100
# Other per-account settings of LUAQ_RATE_LIMITS; daily_predictions: no cap by default.
ACCOUNT_SETTINGS = ("in_flight", "daily_predictions")
# When Replicate says 429 without saying how long, block this long.
DEFAULT_THROTTLE_SECONDS = 5.0
# A lease outlives the longest request (reads time out after 120 s): only a crashed
# worker's lease ever expires.
IN_FLIGHT_LEASE_SECONDS = 150.0
# How often a request waiting for an in-flight slot looks again.
IN_FLIGHT_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Rate:
    per_minute: float
    burst: int

    @property
    def interval_ms(self) -> float:
        return 60_000.0 / self.per_minute


class RateLimitExceeded(ReplicateError):
    """Waiting for a rate-limit token would outlast the job's wall clock; nothing was sent."""

    error_type = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# One account's entry of LUAQ_RATE_LIMITS: bucket -> Rate, in_flight / daily_predictions -> int.
AccountLimits = Mapping[str, Rate | int | None]


def parse_rates(text: str | None) -> dict[str, dict[str, Rate | int | None]]:
    """``LUAQ_RATE_LIMITS``: ``{"<account>": {"create": [per_minute, burst], "other": [...],
    "in_flight": n, "daily_predictions": n}}`` (``"*"`` for every account; a rate alone
    keeps the default burst; ``"daily_predictions": null`` lifts a ``"*"`` cap); missing
    entries use Replicate's published limits, ``DEFAULT_IN_FLIGHT`` and no daily cap."""
    if not text:
        return {}
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("LUAQ_RATE_LIMITS must be a JSON object of accounts")
    known = (*DEFAULT_RATES, *ACCOUNT_SETTINGS)
    rates: dict[str, dict[str, Rate | int | None]] = {}
    for account, buckets in raw.items():
        if not isinstance(buckets, dict) or not set(buckets) <= set(known):
            raise ValueError(
                f"LUAQ_RATE_LIMITS[{account!r}] must map 'create'/'other' to [per_minute, burst] "
                "and may set 'in_flight' and 'daily_predictions'"
            )
        rates[account] = {}
        for bucket, value in buckets.items():
            if bucket in ACCOUNT_SETTINGS:
                rates[account][bucket] = _count_setting(account, bucket, value)
                continue
            per_minute, burst = (value, DEFAULT_RATES[bucket][1]) if isinstance(value, int | float) else value
            if per_minute <= 0 or int(burst) < 1:
                raise ValueError(f"LUAQ_RATE_LIMITS[{account!r}][{bucket!r}] must be positive")
            rates[account][bucket] = Rate(float(per_minute), int(burst))
    return rates


def _count_setting(account: str, name: str, value: object) -> int | None:
    if value is None and name == "daily_predictions":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"LUAQ_RATE_LIMITS[{account!r}][{name!r}] must be a whole number of at least 1")
    return value


class RedisLimiter:
    """An account's limits shared by every worker, in Redis: GCRA per (account, bucket),
    the in-flight cap and the daily prediction cap. Implements api_client's Limiter,
    ThrottleAware, InFlightAware and SpendAware."""

    def __init__(self, client: redis.Redis, rates: Mapping[str, AccountLimits] | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 jitter: float = 0.1, lease_seconds: float = IN_FLIGHT_LEASE_SECONDS) -> None:  # fmt: skip
        self._redis = client
        self._gcra = client.register_script(GCRA_SCRIPT)
        self._throttle = client.register_script(THROTTLE_SCRIPT)
        self._take_slot = client.register_script(IN_FLIGHT_SCRIPT)
        self._count_daily = client.register_script(DAILY_SCRIPT)
        self._rates = rates or {}
        self._sleep, self._clock, self._jitter = sleep, clock, jitter
        self._lease_ms = int(lease_seconds * 1000)

    def _setting(self, account: str, name: str, default: object) -> object:
        for source in (self._rates.get(account), self._rates.get("*")):
            if source and name in source:
                return source[name]
        return default

    def rate(self, account: str, bucket: str) -> Rate:
        rate = self._setting(account, bucket, None)
        return rate if isinstance(rate, Rate) else Rate(*DEFAULT_RATES[bucket])

    def in_flight_cap(self, account: str) -> int:
        cap = self._setting(account, "in_flight", DEFAULT_IN_FLIGHT)
        return cap if isinstance(cap, int) else DEFAULT_IN_FLIGHT

    def daily_predictions_cap(self, account: str) -> int | None:
        cap = self._setting(account, "daily_predictions", None)
        return cap if isinstance(cap, int) else None

    def try_acquire(self, account: str, bucket: str) -> float:
        """Take a token now if there is one: 0.0, else the seconds to wait for one."""
        rate = self.rate(account, bucket)
        allowed, wait_ms = self._gcra(keys=[keys.rate(account, bucket), keys.rate_block(account, bucket)],
                                      args=[rate.interval_ms, rate.burst])  # fmt: skip
        return 0.0 if int(allowed) else int(wait_ms) / 1000.0

    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> float:
        """Wait for a token of ``account``'s ``bucket``; the seconds slept."""
        deadline = None if timeout is None else self._clock() + timeout
        slept = 0.0
        while True:
            wait = self.try_acquire(account, bucket)
            if wait == 0.0:
                if slept:
                    log.info("ratelimit.waited", account=account, bucket=bucket, wait_ms=round(slept * 1000, 1))
                return slept
            wait *= 1 + random.random() * self._jitter  # spread the waiters out
            if deadline is not None and self._clock() + wait > deadline:
                log.warning("ratelimit.refused", account=account, bucket=bucket, wait_ms=round(wait * 1000, 1),
                            waited_ms=round(slept * 1000, 1))  # fmt: skip
                raise RateLimitExceeded(
                    f"rate limit for account {account!r} ({bucket}): the next slot is {wait:.1f} s away, "
                    "beyond the job's wall clock",
                    retry_after=wait,
                )
            self._sleep(wait)
            slept += wait

    def throttled(self, account: str, bucket: str, retry_after: float | None) -> None:
        seconds = retry_after if retry_after and retry_after > 0 else DEFAULT_THROTTLE_SECONDS
        log.warning("ratelimit.throttled", account=account, bucket=bucket, retry_after=retry_after,
                    blocked_s=seconds)  # fmt: skip
        self._throttle(keys=[keys.rate_block(account, bucket)], args=[int(seconds * 1000)])

    @contextmanager
    def in_flight(self, account: str, *, timeout: float | None) -> Iterator[float]:
        """Hold one of ``account``'s in-flight slots for the ``with`` block; yields the
        seconds waited for it. Raises ``RateLimitExceeded`` when none frees up in time."""
        cap = self.in_flight_cap(account)
        lease = uuid.uuid4().hex
        deadline = None if timeout is None else self._clock() + timeout
        slept = 0.0
        while True:
            taken, wait_ms = self._take_slot(keys=[keys.in_flight(account)], args=[lease, cap, self._lease_ms])
            if int(taken):
                break
            pause = min(int(wait_ms) / 1000.0, IN_FLIGHT_POLL_SECONDS) * (1 + random.random() * self._jitter)
            if deadline is not None and self._clock() + pause > deadline:
                log.warning("ratelimit.in_flight_refused", account=account, cap=cap, waited_ms=round(slept * 1000, 1))
                raise RateLimitExceeded(
                    f"account {account!r} has {cap} requests in flight (the cap); none finished "
                    "within the job's wall clock",
                    retry_after=pause,
                )
            self._sleep(pause)
            slept += pause
        if slept:
            log.info("ratelimit.in_flight_waited", account=account, cap=cap, wait_ms=round(slept * 1000, 1))
        try:
            yield slept
        finally:
            self._redis.zrem(keys.in_flight(account), lease)

    def spend(self, account: str, operation: str) -> None:
        """Count a prediction or training ``account`` is about to create against its daily
        cap, if it has one; raise ``CapExceeded`` (``daily_predictions``) past it."""
        cap = self.daily_predictions_cap(account)
        if cap is None:
            return
        allowed, _ = self._count_daily(keys=[keys.daily_spend(account)], args=[cap])
        if not int(allowed):
            log.warning("ratelimit.cap_reached", account=account, limit="daily_predictions", cap=cap,
                        operation=operation)  # fmt: skip
            raise CapExceeded(
                f"daily prediction cap of account {account!r} reached ({cap} created today, UTC); "
                "it starts again at 00:00 UTC",
                limit="daily_predictions",
                operation=operation,
            )

    def daily_predictions(self, account: str) -> int:
        """How many predictions and trainings ``account`` created today (UTC) under a cap."""
        day, count = self._redis.hmget(keys.daily_spend(account), ["day", "predictions"])
        server_seconds, _ = self._redis.time()
        return int(count or 0) if day is not None and int(day) == server_seconds // 86400 else 0
