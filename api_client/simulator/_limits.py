"""Replicate's rate limits, simulated: a token bucket per account and endpoint class.

Creating predictions (and trainings) may be done 600 times a minute, everything else 3000
times; short bursts above the rate are allowed. Each bucket holds ``burst`` tokens (by
default a minute's worth), refills at ``per_minute / 60`` tokens a second, and a request
takes one. An empty bucket answers Replicate's 429, with ``retry_after`` (body and
``Retry-After`` header) saying when the next token comes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["RateLimits", "TokenBuckets"]

BucketName = Literal["create", "other"]


@dataclass(frozen=True)
class RateLimits:
    """Requests per minute and burst sizes of one account (None: a minute's worth)."""

    create_per_minute: float = 600
    other_per_minute: float = 3000
    create_burst: float | None = None
    other_burst: float | None = None

    def rate(self, bucket: BucketName) -> float:
        """Tokens per second."""
        per_minute = self.create_per_minute if bucket == "create" else self.other_per_minute
        return per_minute / 60.0

    def capacity(self, bucket: BucketName) -> float:
        burst = self.create_burst if bucket == "create" else self.other_burst
        if burst is not None:
            return float(burst)
        return float(self.create_per_minute if bucket == "create" else self.other_per_minute)


@dataclass(frozen=True)
class Decision:
    """What a bucket said: allowed or not, tokens left, seconds until the next token."""

    allowed: bool
    remaining: int
    retry_after: float


class TokenBuckets:
    """The buckets of every account; callers hold the simulator's lock."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, BucketName], tuple[float, float]] = {}

    def take(self, user: str, bucket: BucketName, limits: RateLimits, now: float) -> Decision:
        capacity, rate = limits.capacity(bucket), limits.rate(bucket)
        tokens, updated = self._buckets.get((user, bucket), (capacity, now))
        tokens = min(capacity, tokens + max(now - updated, 0.0) * rate)
        if tokens >= 1:
            tokens -= 1
            self._buckets[(user, bucket)] = (tokens, now)
            return Decision(True, int(tokens), 0.0)
        self._buckets[(user, bucket)] = (tokens, now)
        wait = (1 - tokens) / rate if rate > 0 else math.inf
        return Decision(False, 0, wait)

    def reset(self, user: str | None = None) -> None:
        """Refill every bucket (of ``user`` only, when given)."""
        if user is None:
            self._buckets.clear()
        else:
            for key in [key for key in self._buckets if key[0] == user]:
                del self._buckets[key]
