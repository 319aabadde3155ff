"""The rate-limiter seam: the client asks a Limiter before every send.

api_client does not implement a shared limiter; ``worker`` supplies the Redis one and
tests an in-memory one. Buckets: ``"create"`` for operations that create predictions or
trainings (600/min on Replicate), ``"other"`` for everything else (3000/min).

A limiter may also offer ``throttled(account, bucket, retry_after)``: the client calls it
whenever Replicate answers 429, so that a shared limiter can slow the account's bucket
for every worker (``retry_after`` is None when Replicate did not say).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

__all__ = ["Bucket", "Limiter", "NullLimiter", "ThrottleAware"]

Bucket = Literal["create", "other"]


@runtime_checkable
class Limiter(Protocol):
    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> None:
        """Block until ``account`` may send one request from ``bucket``.

        Wait at most ``timeout`` seconds (None: no bound) and raise a ``ReplicateError``
        (typically ``RateLimited`` with ``retry_after``) when that is not enough.
        """
        ...


@runtime_checkable
class ThrottleAware(Protocol):
    def throttled(self, account: str, bucket: str, retry_after: float | None) -> None:
        """Replicate answered 429 for ``account``'s ``bucket``; slow it down."""
        ...


class NullLimiter:
    """A limiter that never waits."""

    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> None:
        return None
