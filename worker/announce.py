"""What a ``luaq worker`` announces about itself in Redis, renewed by its supervisor
every few seconds (:mod:`worker.supervisor`):

- the accounts it holds tokens for (``luaq:accounts``,
  :meth:`worker.store.JobStore.announce_accounts`): submitters refuse a job naming an
  account no worker knows;
- the rate limits it enforces (``luaq:limits:{supervisor}``, here): ``luaq status`` shows
  these, not the ``LUAQ_RATE_LIMITS`` of the shell it runs in.

A limits announcement is one JSON string per supervisor, expiring unless renewed, in
``LUAQ_RATE_LIMITS``' own form with the defaults filled in under ``"*"``::

    {"*": {"create": [6.0, 1], "other": [3000.0, 100], "in_flight": 5, "daily_predictions": null},
     "default": {"daily_predictions": 8}}

so :func:`worker.ratelimit.parse_rates` reads it back, and a :class:`~worker.ratelimit.RedisLimiter`
built on it answers as the worker's own does, whatever defaults the reader's luaq has.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

from . import keys
from .ratelimit import DEFAULT_IN_FLIGHT, DEFAULT_RATES, AccountLimits, Rate, parse_rates

# A document of LUAQ_RATE_LIMITS' form: account (or "*") -> setting -> [per_minute, burst] or a count.
LimitsDocument = dict[str, dict[str, Any]]


def limits_document(rates: Mapping[str, AccountLimits]) -> LimitsDocument:
    """``rates`` (parsed ``LUAQ_RATE_LIMITS``) as JSON-ready data, every default written
    out under ``"*"``."""
    defaults: dict[str, Any] = {
        bucket: [float(per_minute), burst] for bucket, (per_minute, burst) in DEFAULT_RATES.items()
    }
    defaults.update(in_flight=DEFAULT_IN_FLIGHT, daily_predictions=None)
    document: LimitsDocument = {"*": defaults}
    for account, settings in rates.items():
        entry = document.setdefault(account, {})
        for name, value in settings.items():
            entry[name] = [value.per_minute, value.burst] if isinstance(value, Rate) else value
    return {account: document[account] for account in sorted(document)}


def announce_limits(client: redis.Redis, supervisor: str, rates: Mapping[str, AccountLimits], *,
                    ttl_seconds: float) -> None:  # fmt: skip
    """Say that the ``luaq worker`` ``supervisor`` enforces ``rates``, for ``ttl_seconds``."""
    payload = json.dumps(limits_document(rates), sort_keys=True)
    client.set(keys.limits(supervisor), payload, px=int(ttl_seconds * 1000))


def withdraw_limits(client: redis.Redis, supervisor: str) -> None:
    client.delete(keys.limits(supervisor))


def announced_limits(client: redis.Redis) -> dict[str, LimitsDocument]:
    """Supervisor name -> the limits it announced, for every live announcement (one that
    does not parse, from some other version of luaq, is left out)."""
    names = sorted(key.removeprefix(keys.LIMITS_PREFIX)
                   for key in client.scan_iter(f"{keys.LIMITS_PREFIX}*", count=1000))  # fmt: skip
    if not names:
        return {}
    found: dict[str, LimitsDocument] = {}
    for name, raw in zip(names, client.mget([keys.limits(name) for name in names]), strict=True):
        if raw is None:  # expired between the scan and the read
            continue
        try:
            document = json.loads(raw)
            parse_rates(raw)
        except (ValueError, TypeError):
            continue
        found[name] = document
    return found


def parsed(document: LimitsDocument) -> dict[str, dict[str, Rate | int | None]]:
    """A limits document as :class:`~worker.ratelimit.RedisLimiter` takes it."""
    return parse_rates(json.dumps(document))
