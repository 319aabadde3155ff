"""Verify a webhook Replicate sent: its ``webhook-signature`` against the signing secret.

The scheme (Svix's, used by every official client): sign ``"{id}.{timestamp}.{raw body}"``
with HMAC-SHA256 under the key ``base64decode(secret.removeprefix("whsec_"))``; the
``webhook-signature`` header is a space-separated list of ``v1,<base64 signature>``, and
one match is enough. The secret comes from ``get_default_webhook_secret``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from ._errors import ArgumentError

__all__ = ["verify_webhook"]

SECRET_PREFIX = "whsec_"


def verify_webhook(
    headers: Mapping[str, Any],
    body: bytes | str,
    secret: str,
    *,
    tolerance: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether ``body`` (the raw request body, exactly as received) with ``headers`` was
    signed with ``secret`` (``whsec_...``).

    ``headers`` names are matched case-insensitively. With ``tolerance`` (seconds), a
    ``webhook-timestamp`` further than that from ``now`` (Unix time; default the current
    time) also fails. Missing headers or a wrong signature give False; a malformed secret
    is an ArgumentError.
    """
    key = _key(secret)
    lowered = {str(_text(name)).lower(): _text(value) for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (isinstance(webhook_id, str) and isinstance(timestamp, str) and isinstance(signatures, str)):
        return False
    if tolerance is not None:
        try:
            sent_at = int(timestamp.strip())
        except ValueError:
            return False
        current = time.time() if now is None else now
        if abs(current - sent_at) > tolerance:
            return False
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    signed = f"{webhook_id}.{timestamp}.".encode() + raw
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    found = False
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode("ascii", "replace"), expected):
            found = True
    return found


def _key(secret: Any) -> bytes:
    text = _text(secret)
    if not isinstance(text, str) or not text:
        raise ArgumentError("the webhook secret must be a non-empty string (whsec_...)", argument="secret")
    encoded = text.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ArgumentError(
            "the webhook secret is not valid: expected whsec_ followed by base64 "
            "(get it with get_default_webhook_secret)",
            argument="secret",
        ) from None
    if not key:
        raise ArgumentError("the webhook secret is empty", argument="secret")
    return key


def _text(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return value
