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
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from api_client import ReplicateError

from . import keys

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

# Replicate's published limits; bursts are a few seconds' worth.
DEFAULT_RATES: dict[str, tuple[float, int]] = {"create": (600, 20), "other": (3000, 100)}
# When Replicate says 429 without saying how long, block this long.
DEFAULT_THROTTLE_SECONDS = 5.0


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


def parse_rates(text: str | None) -> dict[str, dict[str, Rate]]:
    """``LUAQ_RATE_LIMITS``: ``{"<account>": {"create": [per_minute, burst], "other": [...]}}``
    (``"*"`` for every account); missing entries use Replicate's published limits."""
    if not text:
        return {}
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("LUAQ_RATE_LIMITS must be a JSON object of accounts")
    rates: dict[str, dict[str, Rate]] = {}
    for account, buckets in raw.items():
        if not isinstance(buckets, dict) or not set(buckets) <= set(DEFAULT_RATES):
            raise ValueError(f"LUAQ_RATE_LIMITS[{account!r}] must map 'create'/'other' to [per_minute, burst]")
        rates[account] = {}
        for bucket, value in buckets.items():
            per_minute, burst = (value, DEFAULT_RATES[bucket][1]) if isinstance(value, int | float) else value
            if per_minute <= 0 or int(burst) < 1:
                raise ValueError(f"LUAQ_RATE_LIMITS[{account!r}][{bucket!r}] must be positive")
            rates[account][bucket] = Rate(float(per_minute), int(burst))
    return rates


class RedisLimiter:
    """GCRA per (account, bucket) in Redis; implements api_client's Limiter and ThrottleAware."""

    def __init__(self, client: redis.Redis, rates: Mapping[str, Mapping[str, Rate]] | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 jitter: float = 0.1) -> None:  # fmt: skip
        self._gcra = client.register_script(GCRA_SCRIPT)
        self._throttle = client.register_script(THROTTLE_SCRIPT)
        self._rates = rates or {}
        self._sleep, self._clock, self._jitter = sleep, clock, jitter

    def rate(self, account: str, bucket: str) -> Rate:
        for source in (self._rates.get(account), self._rates.get("*")):
            if source and bucket in source:
                return source[bucket]
        return Rate(*DEFAULT_RATES[bucket])

    def try_acquire(self, account: str, bucket: str) -> float:
        """Take a token now if there is one: 0.0, else the seconds to wait for one."""
        rate = self.rate(account, bucket)
        allowed, wait_ms = self._gcra(keys=[keys.rate(account, bucket), keys.rate_block(account, bucket)],
                                      args=[rate.interval_ms, rate.burst])  # fmt: skip
        return 0.0 if int(allowed) else int(wait_ms) / 1000.0

    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> None:
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            wait = self.try_acquire(account, bucket)
            if wait == 0.0:
                return
            wait *= 1 + random.random() * self._jitter  # spread the waiters out
            if deadline is not None and self._clock() + wait > deadline:
                raise RateLimitExceeded(
                    f"rate limit for account {account!r} ({bucket}): the next slot is {wait:.1f} s away, "
                    "beyond the job's wall clock",
                    retry_after=wait,
                )
            self._sleep(wait)

    def throttled(self, account: str, bucket: str, retry_after: float | None) -> None:
        seconds = retry_after if retry_after and retry_after > 0 else DEFAULT_THROTTLE_SECONDS
        self._throttle(keys=[keys.rate_block(account, bucket)], args=[int(seconds * 1000)])
