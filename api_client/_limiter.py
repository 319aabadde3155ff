"""The rate-limiter seam: the client asks a Limiter before every send.

api_client does not implement a shared limiter; ``worker`` supplies the Redis one and
tests an in-memory one. Buckets: ``"create"`` for operations that create predictions or
trainings (600/min on Replicate), ``"other"`` for everything else (3000/min).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

__all__ = ["Bucket", "Limiter", "NullLimiter"]

Bucket = Literal["create", "other"]


@runtime_checkable
class Limiter(Protocol):
    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> None:
        """Block until ``account`` may send one request from ``bucket``.

        Wait at most ``timeout`` seconds (None: no bound) and raise a ``ReplicateError``
        (typically ``RateLimited`` with ``retry_after``) when that is not enough.
        """
        ...


class NullLimiter:
    """A limiter that never waits."""

    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> None:
        return None
