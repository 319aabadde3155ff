"""Errors raised by api_client.

Every error carries ``error_type`` (what the sandbox reports as ``error.type``) and
never shows an API token. Errors raised by a call also carry ``retries`` (the retried
attempts before it, see ``_retry``), ``http_requests`` (how many requests the call
sent), ``rate_limit_wait_ms`` (time spent waiting for the limiter) and ``throttled``
(how many 429 answers it got)::

    ReplicateError                      any api_client error
     ├── ArgumentError                  bad arguments, raised before any request ("argument_error")
     ├── CallAbandoned                  the caller gave up on the call; nothing more was sent ("cancelled")
     ├── CapExceeded                    a spend cap refused the call before any request ("limit_exceeded");
     │                                  ``limit`` names the cap (e.g. ``daily_predictions``)
     ├── ConfigurationError             no token, unknown account setup ("configuration_error")
     ├── TransportError                 no response: timeout, connection failure ("transport_error");
 │                                  ``sent`` is False when the request provably never left
     └── APIError                       Replicate answered 4xx/5xx ("api_error")
          ├── Unauthorized              401
          ├── NotFound                  404
          ├── ValidationFailed          422
          └── RateLimited               429, with ``retry_after`` when known

``APIError.for_status`` picks the most specific class for an HTTP status.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

__all__ = [
    "APIError",
    "ArgumentError",
    "CallAbandoned",
    "CapExceeded",
    "ConfigurationError",
    "NotFound",
    "RateLimited",
    "ReplicateError",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
]


class ReplicateError(Exception):
    """Base class of every api_client error."""

    error_type = "replicate_error"
    status: int | None = None
    title: str | None = None
    detail: str | None = None
    retry_after: float | None = None
    operation: str | None = None
    # Set by the client on errors it raises from a call.
    retries: Sequence[dict[str, Any]] = ()
    http_requests: int = 0
    rate_limit_wait_ms: float = 0.0
    throttled: int = 0


class ArgumentError(ReplicateError):
    """The arguments of a call are wrong; nothing was sent.

    ``argument`` names the offending argument when there is one.
    """

    error_type = "argument_error"

    def __init__(self, message: str, *, argument: str | None = None, operation: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.operation = operation


class CallAbandoned(ReplicateError):
    """The caller gave up on the call (see ``abandon_when``): no further request was sent."""

    error_type = "cancelled"


class CapExceeded(ReplicateError):
    """A spend cap refused the call; nothing was sent. ``limit`` names the cap.

    The sandbox ends the run on it (``limit_exceeded``, ``error.limit`` = ``limit``)
    instead of handing the script a catchable error: a runaway loop stops here.
    """

    error_type = "limit_exceeded"

    def __init__(self, message: str, *, limit: str, operation: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.operation = operation


class ConfigurationError(ReplicateError):
    """luaq is not set up to make this call (for example, no API token)."""

    error_type = "configuration_error"


class TransportError(ReplicateError):
    """The request got no response: it timed out or the connection failed.

    ``sent`` is False when the request provably never left (no connection was made), so
    that even a write may be sent again; None when it may have reached Replicate.
    ``reason`` names the failure (the httpx exception class, e.g. ``ConnectError``).
    """

    error_type = "transport_error"

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        sent: bool | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.sent = sent
        self.reason = reason


class APIError(ReplicateError):
    """Replicate answered with a 4xx/5xx status.

    ``operation`` is the short name of the operation (``get_prediction``); ``title`` and
    ``detail`` come from the problem+json body when there is one.
    """

    error_type = "api_error"

    def __init__(
        self,
        status: int,
        *,
        operation: str,
        title: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.operation = operation
        self.title = title
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        heading = self.title or _reason_phrase(self.status)
        message = f"replicate.{self.operation}: {self.status} {heading}".rstrip()
        return f"{message}: {self.detail}" if self.detail else message

    @staticmethod
    def for_status(status: int) -> type[APIError]:
        """The most specific APIError subclass for an HTTP status."""
        return _BY_STATUS.get(status, APIError)


class Unauthorized(APIError):
    """401: the token is missing or wrong."""


class NotFound(APIError):
    """404: the resource does not exist (or is not visible to this account)."""


class ValidationFailed(APIError):
    """422: Replicate rejected the request body or the version."""


class RateLimited(APIError):
    """429: throttled; ``retry_after`` says how long to wait, when known."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: Unauthorized,
    404: NotFound,
    422: ValidationFailed,
    429: RateLimited,
}


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
