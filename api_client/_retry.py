"""Retries: which failed requests may be sent again, and how long to wait first.

A :class:`RetryPolicy` (in the style of redis-py's ``Retry``) is handed to the client and
consulted at its single send point (``ReplicateClient._send``):

- reads (GET, QUERY) are retried on 429, any 5xx, timeouts and connection failures;
- writes only where the request provably did not take effect: a 429 (Replicate refused
  it) or a connection that was never made (``httpx.ConnectError``, ``ConnectTimeout``,
  ``PoolTimeout``: nothing was sent);
- the wait is the server's ``retry_after`` (the body's field, the ``Retry-After`` header
  in seconds or as an HTTP date, or the "~Ns" of the detail) when it gave one, otherwise
  jittered exponential backoff: ``min(cap, base * 2**(n-1)) * (1 - jitter * random())``;
- a wait never runs past the caller's deadline: when the required wait does not fit in the
  time left (or exceeds ``cap``), the error is raised at once instead of sleeping.

Every retry is reported as a :data:`RetryRecord`, on the ``Response`` (``retries``) and on a
raised error (``exc.retries``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import APIError, ReplicateError, TransportError

__all__ = ["NO_RETRY", "RetryPolicy", "RetryRecord"]

RetryRecord = dict[str, Any]
"""One retried attempt: ``{"operation", "attempt", "http_status" | "error", "waited_s"}``:
attempt ``attempt`` (1-based) failed with that status or error, and the client waited
``waited_s`` seconds before the next one."""


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before sending a failed request again.

    ``max_attempts`` counts the first attempt (1 disables retries). ``sleep`` and ``clock``
    (monotonic seconds) are injectable so that tests never really sleep; ``random``
    returns a float in [0, 1) for the jitter.
    """

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 60.0
    jitter: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def retryable(self, error: ReplicateError, *, read: bool) -> bool:
        """Whether ``error`` (from an operation that is a read or not) may be retried."""
        if isinstance(error, APIError):
            return error.status == 429 or (read and error.status >= 500)
        if isinstance(error, TransportError):
            return read or error.sent is False
        return False

    def backoff(self, failures: int) -> float:
        """The jittered exponential delay after ``failures`` failed attempts (1, 2, ...)."""
        delay = min(self.cap, self.base * 2 ** max(failures - 1, 0))
        return max(delay * (1 - self.jitter * self.random()), 0.0)

    def wait_before_retry(
        self, error: ReplicateError, *, attempt: int, read: bool, time_left: float | None
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up now.

        ``time_left`` is what remains of the caller's timeout (None: no deadline).
        """
        if attempt >= self.max_attempts or not self.retryable(error, read=read):
            return None
        retry_after = error.retry_after if isinstance(error, APIError) else None
        wait = float(retry_after) if retry_after is not None else self.backoff(attempt)
        if wait > self.cap:
            return None
        if time_left is not None and wait >= time_left:
            return None
        return wait


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries."""


def retry_record(operation: str, attempt: int, error: ReplicateError, waited: float) -> RetryRecord:
    record: RetryRecord = {"operation": operation, "attempt": attempt}
    if isinstance(error, APIError):
        record["http_status"] = error.status
    else:
        record["error"] = getattr(error, "reason", None) or error.error_type
    record["waited_s"] = round(waited, 3)
    return record
