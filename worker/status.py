"""``luaq status``: what the queue, the workers and the accounts are doing now. Read-only.

Where each figure comes from:

- **Queues.** ``waiting``: the length of each queue's Redis lists (kombu keeps one list per
  priority step: ``luaq``, ``luaq\\x06\\x161`` ... ``luaq\\x06\\x169``; see
  :data:`worker.app.PRIORITY_STEPS`).
  ``reserved``: messages a worker has taken but not acknowledged, that is, jobs running
  or about to (kombu's ``unacked`` hash, whose values name the routing key). Both count
  toward the work the queue still holds.
- **Workers.** Celery's remote control (``inspect stats`` and ``inspect active``) with a
  short timeout: a worker busy beyond it does not answer and is missing from the list.
  Load is running jobs over pool processes.
- **Jobs in the last hour.** The global ``luaq:finished`` stream, by status.
- **Limits.** The rate limits the workers enforce, as their supervisors announce them
  (``luaq:limits:*``, :mod:`worker.announce`). When none is announced (no worker running,
  or only older ones), this process's own ``LUAQ_RATE_LIMITS`` (else Replicate's defaults)
  stands in, labelled as such: the workers' may differ. Workers that announce different
  limits are listed; the ones most of them announce are shown.
- **Accounts.** Integration calls and 429s of the jobs that finished in the last hour
  (their envelopes' ``integration_calls``), and the shared limiter's live state under
  those limits: per bucket the rate, how much of the burst is in use (``luaq:rate:*``) and
  any block set after a 429; the requests in flight now against the cap
  (``luaq:inflight:*``); and, where a daily prediction cap is set, the predictions created
  today (UTC) against it (``luaq:spend:*``). Accounts appear when they made calls, hold
  limiter state, or a worker announced them.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from . import announce, keys
from .app import PRIORITY_STEPS
from .ratelimit import DEFAULT_RATES, RedisLimiter
from .settings import Settings

PRIORITY_SEP = "\x06\x16"
UNACKED_KEY = "unacked"
WINDOW_SECONDS = 3600
RECENT_SECONDS = 300  # the call rate is over the last five minutes


def queue_lists(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


def queue_depths(client: redis.Redis, queues: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Per queue: ``waiting`` (in the lists), ``reserved`` (taken, not acknowledged), ``total``."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            for name in queue_lists(queue):
                pipe.llen(name)
        lengths = pipe.execute()
    reserved: Counter[str] = Counter()
    for _tag, raw in client.hscan_iter(UNACKED_KEY, count=1000):
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            routing_key = "?"
        reserved[routing_key] += 1
    depths: dict[str, dict[str, int]] = {}
    per_queue = len(PRIORITY_STEPS)
    for index, queue in enumerate(dict.fromkeys([*queues, *reserved])):
        waiting = sum(lengths[index * per_queue : (index + 1) * per_queue]) if index < len(queues) else 0
        depths[queue] = {"waiting": waiting, "reserved": reserved.get(queue, 0),
                         "total": waiting + reserved.get(queue, 0)}  # fmt: skip
    return depths


def workers(app: Any, timeout: float) -> list[dict[str, Any]]:
    """Every worker that answers within ``timeout``: name, pool processes, running jobs, load."""
    # Both questions at once: one after the other, the second's replies were often missed.
    with ThreadPoolExecutor(max_workers=2) as pool:
        asked = [pool.submit(getattr(app.control.inspect(timeout=timeout), name)) for name in ("active", "stats")]
        active, stats = (future.result() or {} for future in asked)
    found = []
    for name in sorted(set(stats) | set(active)):
        pool = (stats.get(name) or {}).get("pool") or {}
        concurrency = pool.get("max-concurrency")
        running = len(active.get(name) or [])
        found.append({
            "name": name, "concurrency": concurrency, "running": running,
            "load": round(running / concurrency, 2) if concurrency else None,
            "processed": sum(((stats.get(name) or {}).get("total") or {}).values()),
        })  # fmt: skip
    return found


def recent_finished(client: redis.Redis, since_ms: int, batch: int = 500) -> list[dict[str, Any]]:
    """Entries of the finished stream since ``since_ms``: job_id, status, envelope, ts."""
    entries: list[dict[str, Any]] = []
    start = f"{since_ms}-0"
    while True:
        chunk = client.xrange(keys.FINISHED_STREAM, min=start, max="+", count=batch)
        for entry_id, fields in chunk:
            envelope = None
            with contextlib.suppress(ValueError):
                envelope = json.loads(fields.get("envelope") or "null")
            entries.append({"job_id": fields.get("job_id"), "status": fields.get("status"), "envelope": envelope,
                            "ts": int(entry_id.split("-")[0])})  # fmt: skip
        if len(chunk) < batch:
            return entries
        start = "(" + chunk[-1][0]


def enforced_limits(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """The limits the workers enforce: ``source`` (``workers``; when no worker announced
    any, ``environment`` for this process's ``LUAQ_RATE_LIMITS`` or ``defaults``),
    ``workers`` (who announced ``rate_limits``), ``rate_limits`` (a :mod:`worker.announce`
    document) and ``disagreeing`` (the other workers and the different limits they announced)."""
    announced = announce.announced_limits(client)
    if not announced:
        # What this process would enforce: its LUAQ_RATE_LIMITS, else luaq's defaults.
        return {"source": "environment" if settings.rate_limits else "defaults", "workers": [],
                "rate_limits": announce.limits_document(settings.rate_limits), "disagreeing": []}  # fmt: skip
    groups: dict[str, list[str]] = {}
    for worker, document in announced.items():
        groups.setdefault(json.dumps(document, sort_keys=True), []).append(worker)
    # The limits most workers announce first; a tie goes to the lowest worker name.
    ranked = sorted(groups.items(), key=lambda group: (-len(group[1]), group[1][0]))
    (main, workers), others = ranked[0], ranked[1:]
    return {"source": "workers", "workers": workers, "rate_limits": json.loads(main),
            "disagreeing": [{"workers": names, "rate_limits": json.loads(doc)} for doc, names in others]}  # fmt: skip


def accounts(client: redis.Redis, limits: dict[str, Any], finished: list[dict[str, Any]], now_ms: int,
             server_now_ms: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per account: calls and 429s of the last hour's jobs, calls/min over the last five
    minutes, and under ``limits`` (:func:`enforced_limits`) the limiter's state per bucket,
    the requests in flight and, where capped, today's predictions."""
    result: dict[str, dict[str, Any]] = {}

    def entry(account: str) -> dict[str, Any]:
        return result.setdefault(account, {"calls_last_hour": 0, "calls_per_minute": 0.0,
                                           "rate_limited_429_last_hour": 0, "buckets": {}})  # fmt: skip

    recent_since = now_ms - RECENT_SECONDS * 1000
    for item in finished:
        for call in (item["envelope"] or {}).get("integration_calls") or []:
            account = entry(str(call.get("account") or "default"))
            account["calls_last_hour"] += 1
            if item["ts"] >= recent_since:
                account["calls_per_minute"] += 60.0 / RECENT_SECONDS
            if call.get("http_status") == 429:
                account["rate_limited_429_last_hour"] += 1
    for name in _accounts_in_redis(client, now_ms):
        entry(name)
    limiter = RedisLimiter(client, announce.parsed(limits["rate_limits"]))
    today = server_now_ms // 86_400_000  # the UTC day number, as the daily cap counts it
    for name, account in result.items():
        for bucket in DEFAULT_RATES:
            rate = limiter.rate(name, bucket)
            tat, blocked = client.mget(keys.rate(name, bucket), keys.rate_block(name, bucket))
            ahead_ms = max(0.0, float(tat or 0) - server_now_ms)
            account["buckets"][bucket] = {
                "per_minute": rate.per_minute, "burst": rate.burst,
                "burst_in_use": min(rate.burst, round(ahead_ms / rate.interval_ms, 1)),
                "blocked_for_seconds": round(max(0, int(blocked or 0) - server_now_ms) / 1000, 1),
            }  # fmt: skip
        # Leases past their expiry belong to crashed workers: the limiter no longer counts them.
        in_flight = client.zcount(keys.in_flight(name), f"({server_now_ms}", "+inf")
        account["in_flight"] = {"now": in_flight, "cap": limiter.in_flight_cap(name)}
        cap = limiter.daily_predictions_cap(name)
        if cap is None:
            account["daily_predictions"] = None
        else:
            day, count = client.hmget(keys.daily_spend(name), ["day", "predictions"])
            created = int(count or 0) if day is not None and int(day) == today else 0
            account["daily_predictions"] = {"today": created, "cap": cap}
        account["calls_per_minute"] = round(account["calls_per_minute"], 1)
    return dict(sorted(result.items()))


def _accounts_in_redis(client: redis.Redis, now_ms: int) -> set[str]:
    """Accounts with limiter state (rate, in-flight or daily keys) or announced by a live worker."""
    names: set[str] = set()
    for key in client.scan_iter(f"{keys.PREFIX}rate:*", count=1000):  # luaq:rate:{account}:{bucket}[:blocked]
        parts = key.split(":")
        if len(parts) in (4, 5) and parts[3] in DEFAULT_RATES:
            names.add(parts[2])
    for key in client.scan_iter(f"{keys.PREFIX}inflight:*", count=1000):  # luaq:inflight:{account}
        names.add(key.split(":", 2)[2])
    for key in client.scan_iter(f"{keys.PREFIX}spend:*:daily", count=1000):  # luaq:spend:{account}:daily
        names.add(key.split(":")[2])
    names.update(name for name, until in client.hgetall(keys.ACCOUNTS).items() if int(until) > now_ms)
    return names


def collect(client: redis.Redis, app: Any, settings: Settings, *, inspect_timeout: float = 1.0,
            clock: Callable[[], float] = time.time) -> dict[str, Any]:  # fmt: skip
    """Everything ``luaq status`` shows, as one JSON-ready dict."""
    now_ms = int(clock() * 1000)
    seconds, micros = client.time()
    server_now_ms = int(seconds) * 1000 + int(micros) // 1000
    depths = queue_depths(client, settings.queues)  # first: the closest to one moment
    finished = recent_finished(client, now_ms - WINDOW_SECONDS * 1000)
    by_status = Counter(str(item["status"]) for item in finished)
    limits = enforced_limits(client, settings)
    try:
        found: list[dict[str, Any]] | None = workers(app, inspect_timeout) if app is not None else None
        workers_error = None
    except Exception as exc:  # the broker or remote control failed; the rest still shows
        found, workers_error = None, f"{type(exc).__name__}: {exc}"
    return {
        "queues": depths,
        "workers": found,
        "workers_error": workers_error,
        "jobs_last_hour": dict(sorted(by_status.items())),
        "limits": limits,
        "accounts": accounts(client, limits, finished, now_ms, server_now_ms),
    }


def render(status: dict[str, Any]) -> str:
    """The human form of :func:`collect`'s result."""
    lines = ["QUEUE                 WAITING  RESERVED"]
    for name, depth in status["queues"].items():
        lines.append(f"{name:<20} {depth['waiting']:>8} {depth['reserved']:>9}")
    lines.append("")
    found = status["workers"]
    if found is None:
        lines.append(f"WORKERS  unknown ({status.get('workers_error') or 'not asked'})")
    else:
        lines.append(f"WORKERS  {len(found)} answering")
        for worker in found:
            load = "?" if worker["load"] is None else f"{worker['load']:.0%}"
            lines.append(f"  {worker['name']:<40} running {worker['running']}/{worker['concurrency']}  "
                         f"load {load}  processed {worker['processed']}")  # fmt: skip
    lines.append("")
    jobs = status["jobs_last_hour"]
    total = sum(jobs.values())
    detail = ", ".join(f"{count} {name}" for name, count in jobs.items()) or "none"
    lines.append(f"JOBS FINISHED IN THE LAST HOUR  {total}: {detail}")
    lines.append("")
    lines.append(f"LIMITS  {_limits_source(status['limits'])}")
    lines.append("ACCOUNT        CALLS/MIN  CALLS/1H  429s/1H  CREATE (limit, burst used, blocked)  "
                 "OTHER                        IN FLIGHT  CREATED TODAY")  # fmt: skip
    for name, account in status["accounts"].items():
        buckets = []
        for bucket in ("create", "other"):
            b = account["buckets"][bucket]
            blocked = f", blocked {b['blocked_for_seconds']:g}s" if b["blocked_for_seconds"] else ""
            buckets.append(f"{b['per_minute']:g}/min, {b['burst_in_use']:g}/{b['burst']}{blocked}")
        in_flight = f"{account['in_flight']['now']}/{account['in_flight']['cap']}"
        daily = account["daily_predictions"]
        today = "no cap" if daily is None else f"{daily['today']}/{daily['cap']}"
        lines.append(f"{name:<14} {account['calls_per_minute']:>9g} {account['calls_last_hour']:>9} "
                     f"{account['rate_limited_429_last_hour']:>8}  {buckets[0]:<36} {buckets[1]:<28} "
                     f"{in_flight:<10} {today}")  # fmt: skip
    if not status["accounts"]:
        lines.append("(no calls in the last hour)")
    return "\n".join(lines)


def _limits_source(limits: dict[str, Any]) -> str:
    """Where the limits shown come from, in words."""
    if limits["source"] == "environment":
        return "no worker announced its limits: showing this shell's LUAQ_RATE_LIMITS (the workers' may differ)"
    if limits["source"] == "defaults":
        return "no worker announced its limits: showing luaq's defaults (the workers' may differ)"
    text = f"announced by {_workers(limits['workers'])}"
    for other in limits["disagreeing"]:
        text += f"; other limits from {_workers(other['workers'])}: {json.dumps(other['rate_limits'])}"
    return text


def _workers(names: list[str], shown: int = 3) -> str:
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"{len(names)} worker{'s' if len(names) != 1 else ''} ({listed})"
