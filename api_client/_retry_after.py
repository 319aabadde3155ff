"""How long Replicate asks us to wait: from the body, the header, or the detail text.

Replicate's 429 bodies carry ``retry_after`` (seen in 2026) or only a detail such as
"Your rate limit resets in ~30s." / "Expected available in 1 second."; a
``Retry-After`` header (seconds or an HTTP date) is honoured when present.
"""

from __future__ import annotations

import math
import re
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["retry_after_seconds"]

_DETAIL_PATTERNS = (
    re.compile(r"~\s*(\d+(?:\.\d+)?)\s*s\b"),
    re.compile(r"available in (\d+(?:\.\d+)?) seconds?"),
)


def retry_after_seconds(body_value: Any, header: str | None, detail: str | None, *, now: float) -> float | None:
    """Seconds to wait, or None when nothing says. ``now`` is the Unix time, used to
    turn an HTTP-date header into a delay."""
    seconds = _number(body_value)
    if seconds is not None:
        return seconds
    if header:
        seconds = _from_header(header.strip(), now)
        if seconds is not None:
            return seconds
    if detail:
        for pattern in _DETAIL_PATTERNS:
            match = pattern.search(detail)
            if match:
                return float(match.group(1))
    return None


def _number(value: Any) -> float | None:
    """A finite, non-negative number of seconds from a number or numeric text."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _from_header(value: str, now: float) -> float | None:
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(when.timestamp() - now, 0.0)
