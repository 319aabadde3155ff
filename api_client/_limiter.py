"""The rate-limiter seam: the client asks a Limiter before every send.

api_client does not implement a shared limiter; ``worker`` supplies the Redis one and
tests an in-memory one. Buckets: ``"create"`` for operations that create predictions or
trainings (600/min on Replicate), ``"other"`` for everything else (3000/min).

``acquire`` may return the seconds it waited (reported as the call's
``rate_limit_wait_ms``). A limiter may also offer, each found by the client with
``getattr`` and used when present:

- ``throttled(account, bucket, retry_after)`` (:class:`ThrottleAware`): the client calls it
  whenever Replicate answers 429, so that a shared limiter can slow the account's bucket
  for every worker (``retry_after`` is None when Replicate did not say);
- ``in_flight(account, timeout=...)`` (:class:`InFlightAware`): a context manager the
  client holds while a request is out, so that a shared limiter can cap the account's
  requests in flight; it yields the seconds it waited for a slot;
- ``spend(account, operation)`` (:class:`SpendAware`): called once per call of an
  operation that creates a prediction or training, before anything is sent; it may
  refuse with ``CapExceeded`` (an account's daily cap).

The order around one attempt: ``acquire`` (a rate token), then ``in_flight`` (a slot,
held until the answer is in). ``spend`` runs once per call, before the first attempt.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Bucket", "InFlightAware", "Limiter", "NullLimiter", "SpendAware", "ThrottleAware"]

Bucket = Literal["create", "other"]


@runtime_checkable
class Limiter(Protocol):
    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> float | None:
        """Block until ``account`` may send one request from ``bucket``; the seconds
        waited (None or 0.0: no wait).

        Wait at most ``timeout`` seconds (None: no bound) and raise a ``ReplicateError``
        (typically ``RateLimited`` with ``retry_after``) when that is not enough.
        """
        ...


@runtime_checkable
class ThrottleAware(Protocol):
    def throttled(self, account: str, bucket: str, retry_after: float | None) -> None:
        """Replicate answered 429 for ``account``'s ``bucket``; slow it down."""
        ...


@runtime_checkable
class InFlightAware(Protocol):
    def in_flight(self, account: str, *, timeout: float | None) -> AbstractContextManager[float]:
        """Hold one of ``account``'s in-flight slots for the ``with`` block; entering
        yields the seconds waited for it and raises a ``ReplicateError`` when no slot
        frees up within ``timeout``."""
        ...


@runtime_checkable
class SpendAware(Protocol):
    def spend(self, account: str, operation: str) -> None:
        """``account`` is about to create a prediction or training with ``operation``
        (its short name): count it, or raise ``CapExceeded`` to refuse the call."""
        ...


class NullLimiter:
    """A limiter that never waits."""

    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> float | None:
        return None
