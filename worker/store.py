"""The job store and results channel: job records and per-job event streams in Redis.

Each job has a record (a hash) and a stream of events. Events are appended as the job
progresses (``queued``, ``started``, one ``log`` per printed line, one ``call`` per
integration call, ``finished`` with the envelope), so a reader can start from any event id
and resume where it left off; nothing depends on anyone listening. The final state is
written by one Lua script that also appends the ``finished`` event and the entry on the
global finished stream, so the record and the streams can never disagree, and only the
attempt that holds the job can finish it.

Running jobs hold a lease (``luaq:leases``, expiry on the Redis server's clock) that their
worker process renews; a job whose lease ran out lost its worker. Any worker may then take
it over as a new attempt (:meth:`JobStore.begin`), and :meth:`JobStore.claim_expired` finds
such jobs so that they can be queued again. A second delivery of a job whose lease is
alive is a duplicate and runs nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import structlog

from . import keys
from .job import FINAL_STATUSES, JobRequest, JobStatus
from .redis_urls import failover_retry, redis_client
from .settings import Settings

CREATE_SCRIPT = """
-- KEYS[1] job record, KEYS[2] job event stream, KEYS[3] the agent's queued jobs (zset)
-- ARGV[1] request JSON, ARGV[2] now (ms), ARGV[3] ttl (s), ARGV[4] events maxlen,
-- ARGV[5] queued event data, ARGV[6] job id, ARGV[7] agent, ARGV[8] on_redelivery ('lost' or 'rerun'),
-- ARGV[9] the request's fingerprint
-- Returns {'created', the agent's queued jobs with this one}, or for an existing job with
-- this id: {'conflict'} (another submission), {'queued', created_at} (the same one, not
-- started yet) or {'exists'} (the same one, started or finished).
if redis.call('EXISTS', KEYS[1]) == 1 then
  local held = redis.call('HMGET', KEYS[1], 'fingerprint', 'status', 'created_at')
  if held[1] and held[1] ~= ARGV[9] then return {'conflict'} end
  if held[2] == 'queued' then return {'queued', tonumber(held[3] or 0)} end
  return {'exists'}
end
redis.call('HSET', KEYS[1], 'request', ARGV[1], 'status', 'queued', 'created_at', ARGV[2],
           'attempt', 0, 'agent', ARGV[7], 'on_redelivery', ARGV[8], 'fingerprint', ARGV[9])
-- Entries older than a job's life belong to jobs that expired without finishing.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]) * 1000)
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
           'type', 'queued', 'data', ARGV[5], 'ts', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {'created', redis.call('ZCARD', KEYS[3])}
"""

BEGIN_SCRIPT = """
-- KEYS[1] job record, KEYS[2] job event stream, KEYS[3] leases zset, KEYS[4] this node's set,
-- KEYS[5] the job's write journal
-- ARGV[1] job id, ARGV[2] node, ARGV[3] now (ms, for the record), ARGV[4] lease (ms),
-- ARGV[5] ttl (s), ARGV[6] events maxlen, ARGV[7] node set key prefix, ARGV[8] max attempts,
-- ARGV[9] orphans zset, ARGV[10] agent key prefix, ARGV[11] the agent's running quota (0: none)
-- Returns {'started' or 'exhausted', attempt (or attempts made), request, previous worker,
-- created_at, cancel request ('' when none)} or {'final'|'busy'|'missing'|'deferred'}; 'deferred' when the job's agent
-- already runs its quota of jobs (nothing changes). 'wrote' instead of 'started': this
-- attempt holds the job, but an earlier attempt made write calls and the job did not ask
-- to be re-run.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status ~= 'queued' and status ~= 'running' then return {'final'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if status == 'running' then
  local lease = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if lease and tonumber(lease) > now then return {'busy'} end
end
local agent = ARGV[10] .. (redis.call('HGET', KEYS[1], 'agent') or '')
local quota = tonumber(ARGV[11])
if quota > 0 then
  redis.call('ZREMRANGEBYSCORE', agent .. ':running', '-inf', now)
  if not redis.call('ZSCORE', agent .. ':running', ARGV[1])
     and redis.call('ZCARD', agent .. ':running') >= quota then
    return {'deferred'}
  end
end
redis.call('ZREM', ARGV[9], ARGV[1])
local previous = redis.call('HGET', KEYS[1], 'worker')
if previous then redis.call('SREM', ARGV[7] .. previous, ARGV[1]) end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if attempts >= tonumber(ARGV[8]) then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'exhausted', attempts, redis.call('HGET', KEYS[1], 'request'), previous or '',
          redis.call('HGET', KEYS[1], 'created_at') or '', redis.call('HGET', KEYS[1], 'cancel') or ''}
end
local state = 'started'
if attempts > 0 and redis.call('LLEN', KEYS[5]) > 0 and redis.call('HGET', KEYS[1], 'on_redelivery') ~= 'rerun' then
  state = 'wrote'
end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[3], 'worker', ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
redis.call('ZADD', agent .. ':running', now + tonumber(ARGV[4]), ARGV[1])
redis.call('EXPIRE', agent .. ':running', ARGV[5])
redis.call('ZREM', agent .. ':queued', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('EXPIRE', KEYS[4], ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', 'started',
           'data', cjson.encode({worker = ARGV[2]}), 'ts', ARGV[3], 'attempt', attempt)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {state, attempt, redis.call('HGET', KEYS[1], 'request'), previous or '',
        redis.call('HGET', KEYS[1], 'created_at') or '', redis.call('HGET', KEYS[1], 'cancel') or ''}
"""

RENEW_SCRIPT = """
-- KEYS[1] leases zset, then for each job: its record, its event stream
-- ARGV[1] node, ARGV[2] lease (ms), ARGV[3] ttl (s), ARGV[4] agent key prefix,
-- then for each job: id, attempt
-- Returns the ids of the jobs this node no longer holds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = {}
for i = 5, #ARGV, 2 do
  local k = (i - 5) / 2
  local record, stream = KEYS[2 + 2 * k], KEYS[3 + 2 * k]
  local held = redis.call('HMGET', record, 'status', 'worker', 'attempt', 'agent')
  if held[1] == 'running' and held[2] == ARGV[1] and held[3] == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[i])
    redis.call('ZADD', ARGV[4] .. (held[4] or '') .. ':running', 'XX', now + tonumber(ARGV[2]), ARGV[i])
    redis.call('EXPIRE', record, ARGV[3])
    redis.call('EXPIRE', stream, ARGV[3])
  else
    table.insert(gone, ARGV[i])
  end
end
return gone
"""

CLAIM_SCRIPT = """
-- KEYS[1] leases zset, KEYS[2] orphans zset; ARGV[1] how many at most, ARGV[2] grace (ms)
-- Returns running jobs whose lease ran out (their worker is gone), and orphans queued
-- again earlier that no worker has taken within the grace: the caller queues each again.
-- Each moves to the orphans with a retry time, so no other caller claims it meanwhile,
-- and without a lease, so the worker that gets the new message takes it over.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
if #ids < limit then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit - #ids)) do
    table.insert(ids, id)
  end
end
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
end
return ids
"""

FINISH_SCRIPT = """
-- KEYS[1] job record, KEYS[2] job event stream, KEYS[3] global finished stream
-- ARGV[1] status, ARGV[2] envelope JSON, ARGV[3] now (ms), ARGV[4] ttl (s),
-- ARGV[5] events maxlen, ARGV[6] finished maxlen, ARGV[7] attempt, ARGV[8] job id,
-- ARGV[9] node set key prefix, ARGV[10] '1' when only attempt ARGV[7] may finish a running job,
-- ARGV[11] agent key prefix, ARGV[12..] the final statuses
-- KEYS[4] leases zset, KEYS[5] orphans zset, KEYS[6] cancel requests set
-- Returns 1 when this call finished the job, 0 when it was already final, is gone, or
-- (with ARGV[10]) another attempt holds it.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
for i = 12, #ARGV do
  if current == ARGV[i] then return 0 end
end
if ARGV[10] == '1' and current == 'running' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[7] then
  return 0
end
local worker = redis.call('HGET', KEYS[1], 'worker')
if worker then redis.call('SREM', ARGV[9] .. worker, ARGV[8]) end
local agent = ARGV[11] .. (redis.call('HGET', KEYS[1], 'agent') or '')
redis.call('ZREM', agent .. ':running', ARGV[8])
redis.call('ZREM', agent .. ':queued', ARGV[8])
redis.call('ZREM', KEYS[4], ARGV[8])
redis.call('ZREM', KEYS[5], ARGV[8])
redis.call('SREM', KEYS[6], ARGV[8])
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'envelope', ARGV[2],
           'finished_at', ARGV[3], 'final_attempt', ARGV[7])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
           'type', 'finished', 'data', ARGV[2], 'ts', ARGV[3], 'attempt', ARGV[7])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
           'job_id', ARGV[8], 'status', ARGV[1], 'envelope', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""

CANCEL_SCRIPT = """
-- KEYS[1] job record, KEYS[2] job event stream, KEYS[3] global finished stream,
-- KEYS[4] cancel requests set
-- ARGV[1] job id, ARGV[2] envelope JSON for a job cancelled before it started, ARGV[3] now (ms),
-- ARGV[4] ttl (s), ARGV[5] events maxlen, ARGV[6] finished maxlen, ARGV[7] 'predictions' to
-- also cancel the predictions the job created, else 'stop', ARGV[8] agent key prefix
-- Returns {'missing'}, {'final', status}, {'cancelled'} (it was queued: now final, so its
-- delivery runs nothing) or {'requested'} (running: its worker stops it).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status ~= 'queued' and status ~= 'running' then return {'final', status} end
if status == 'queued' then
  -- No longer part of its agent's backlog (which pushes the agent's next jobs back).
  redis.call('ZREM', ARGV[8] .. (redis.call('HGET', KEYS[1], 'agent') or '') .. ':queued', ARGV[1])
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'envelope', ARGV[2], 'finished_at', ARGV[3],
             'final_attempt', 0)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
             'type', 'finished', 'data', ARGV[2], 'ts', ARGV[3], 'attempt', 0)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
             'job_id', ARGV[1], 'status', 'cancelled', 'envelope', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return {'cancelled'}
end
if redis.call('HGET', KEYS[1], 'cancel') ~= 'predictions' then
  redis.call('HSET', KEYS[1], 'cancel', ARGV[7])
end
if redis.call('SADD', KEYS[4], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'cancel_requested',
             'data', cjson.encode({cancel_predictions = ARGV[7] == 'predictions'}), 'ts', ARGV[3])
end
return {'requested'}
"""


JOURNAL_APPEND_SCRIPT = """
-- KEYS[1] the job's journal, KEYS[2] job record, KEYS[3] leases zset
-- ARGV[1] entry JSON, ARGV[2] attempt, ARGV[3] job id, ARGV[4] ttl (s)
-- Appends the entry only while attempt ARGV[2] holds the job (running, its attempt, a lease
-- alive on the server's clock): a paused attempt whose job was taken over, or whose lease
-- ran out, records nothing and so sends nothing. Returns the entry's index, or -1.
local held = redis.call('HMGET', KEYS[2], 'status', 'attempt')
if held[1] ~= 'running' or held[2] ~= ARGV[2] then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = redis.call('ZSCORE', KEYS[3], ARGV[3])
if not lease or tonumber(lease) <= now then return -1 end
local length = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return length - 1
"""


RECONNECT_SECONDS = 60.0  # how long a follower keeps retrying a dropped connection
RECONNECT_FIRST_DELAY = 0.1
RECONNECT_MAX_DELAY = 2.0

log = structlog.get_logger("luaq.store")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Event:
    """One entry of a job's event stream; ``id`` is the resume cursor."""

    id: str
    type: str
    data: dict[str, Any]
    ts: int
    attempt: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "ts": self.ts, "attempt": self.attempt,
                "data": self.data}  # fmt: skip


@dataclass(frozen=True)
class Creation:
    """What creating a job found. ``created``: a new job (``count``: its agent's queued
    jobs, this one included). A job with this id existed (the id is an idempotency key):
    ``exists`` with the same submission, started or finished; ``queued`` with the same
    submission, not started yet (``count``: when it was created, ms); ``conflict`` with
    another submission. Nothing changes unless ``created``."""

    outcome: str
    count: int = 0


@dataclass(frozen=True)
class Begun:
    """What :meth:`JobStore.begin` found: ``started`` (this attempt runs the job),
    ``final`` (nothing to do), ``busy`` (a live attempt holds it: a duplicate delivery),
    ``missing`` (unknown or expired) or ``exhausted`` (no attempts left)."""

    state: str
    attempt: int = 0
    request: dict[str, Any] | None = None
    previous_worker: str | None = None
    created_at: int | None = None
    request_error: str | None = None  # the stored request is not valid JSON
    cancel: str | None = None  # "stop" or "predictions" when the job was asked to stop


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    status: JobStatus
    request: dict[str, Any]
    attempt: int
    created_at: int | None
    started_at: int | None
    finished_at: int | None
    envelope: dict[str, Any] | None

    @property
    def is_final(self) -> bool:
        return self.status.is_final


class NotHeld(RuntimeError):
    """This attempt no longer holds its job (taken over, ended, or its lease ran out)."""

    def __init__(self, job_id: str, attempt: int) -> None:
        super().__init__(f"attempt {attempt} of job {job_id!r} no longer holds it")
        self.job_id = job_id
        self.attempt = attempt


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} (never submitted, or expired)")
        self.job_id = job_id


class JobStore:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self._create = client.register_script(CREATE_SCRIPT)
        self._finish = client.register_script(FINISH_SCRIPT)
        self._begin = client.register_script(BEGIN_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._claim = client.register_script(CLAIM_SCRIPT)
        self._cancel = client.register_script(CANCEL_SCRIPT)
        self._journal_append = client.register_script(JOURNAL_APPEND_SCRIPT)

    @classmethod
    def from_settings(cls, settings: Settings, *, ride_out_restarts: bool = False) -> JobStore:
        """``ride_out_restarts`` (workers): every command retries a dropped connection for
        about :data:`~worker.redis_urls.FAILOVER_RETRY_SECONDS`, so a Redis restart or
        failover pauses running jobs instead of failing them."""
        if not settings.redis_url:
            raise RuntimeError("no Redis configured: set LUAQ_REDIS_URL, or start local mode with `luaq up`")
        # Every job thread of a worker process may hold a connection at once (and its
        # rate-limiter calls another): redis-py's default pool stops at 100.
        connections = max(100, settings.worker_concurrency * 2 + 50)
        options: dict[str, Any] = {"retry": failover_retry()} if ride_out_restarts else {}
        client = redis_client(settings.redis_url, master_name=settings.redis_sentinel_master,
                              max_connections=connections, **options)  # fmt: skip
        return cls(client, settings)

    # -- writing ---------------------------------------------------------------------

    def create(self, request: JobRequest) -> bool:
        """Store a new job record with its ``queued`` event, atomically. Returns False,
        changing nothing, when a job with this id exists (the id is an idempotency key)."""
        return self.create_many([request])[0].outcome == "created"

    def create_many(self, requests: Sequence[JobRequest]) -> list[Creation]:
        """Create each of ``requests`` (see :class:`Creation`), in one round trip; each
        job is still created atomically, on its own."""
        if not requests:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for request in requests:
                stored = json.dumps(request.to_dict(), sort_keys=True)
                agent = request.agent_id or ""
                self._create(
                    keys=[keys.job(request.job_id), keys.job_events(request.job_id), keys.agent_queued(agent)],
                    args=[stored, now_ms(), self.settings.job_ttl_seconds, self.settings.events_maxlen,
                          json.dumps({"job_id": request.job_id}), request.job_id, agent, request.on_redelivery,
                          hashlib.sha256(stored.encode()).hexdigest()],
                    client=pipe,
                )  # fmt: skip
            replies = pipe.execute()
        return [Creation(reply[0], *(int(value) for value in reply[1:])) for reply in replies]

    def discard(self, requests: Sequence[JobRequest]) -> None:
        """Remove jobs that never reached the queue (their messages could not be sent)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for request in requests:
                pipe.delete(keys.job(request.job_id), keys.job_events(request.job_id), keys.journal(request.job_id))
                pipe.zrem(keys.agent_queued(request.agent_id or ""), request.job_id)
            pipe.execute()

    def begin(self, job_id: str, worker: str, *, max_attempts: int | None = None) -> Begun:
        """Take the job for a new attempt on ``worker``: mark it running, take its lease and
        append the ``started`` event, atomically. Nothing changes unless the job is queued,
        or running under a lease that ran out (its worker died). The record's and stream's
        time to live restart, so a job never expires while it runs. A job taken over after
        an attempt that made write calls comes back ``wrote`` (see :mod:`worker.journal`),
        unless it was submitted with ``on_redelivery = "rerun"``."""
        reply = self._begin(
            keys=[keys.job(job_id), keys.job_events(job_id), keys.LEASES, keys.node_jobs(worker),
                  keys.journal(job_id)],
            args=[job_id, worker, now_ms(), int(self.settings.lease_seconds * 1000), self.settings.job_ttl_seconds,
                  self.settings.events_maxlen, keys.NODE_PREFIX, max_attempts or self.settings.max_attempts,
                  keys.ORPHANS, keys.AGENT_PREFIX, self.settings.agent_max_running],
        )  # fmt: skip
        state = reply[0]
        if state not in ("started", "wrote", "exhausted"):
            return Begun(state)
        found = {"attempt": int(reply[1]), "previous_worker": reply[3] or None, "created_at": _int(reply[4]),
                 "cancel": reply[5] or None}  # fmt: skip
        try:
            request = json.loads(reply[2] or "{}")
        except json.JSONDecodeError as exc:
            return Begun(state, request=None, request_error=f"the stored request is not valid JSON: {exc}", **found)
        return Begun(state, request=request, **found)

    def renew(self, worker: str, held: Mapping[str, int]) -> list[str]:
        """Extend the leases of the jobs ``worker`` runs (``{job_id: attempt}``) and their
        time to live; returns the ids it no longer holds (another attempt took them over)."""
        if not held:
            return []
        job_keys = [k for job_id in held for k in (keys.job(job_id), keys.job_events(job_id))]
        args = [worker, int(self.settings.lease_seconds * 1000), self.settings.job_ttl_seconds, keys.AGENT_PREFIX]
        for job_id, attempt in held.items():
            args += [job_id, attempt]
        return list(self._renew(keys=[keys.LEASES, *job_keys], args=args))

    def claim_orphans(self, limit: int = 100) -> list[str]:
        """Running jobs whose lease ran out (their worker is gone), and jobs queued again
        that nobody took within a lease; each claimed for :attr:`Settings.lease_seconds` so
        that only this caller queues it again."""
        grace = int(self.settings.lease_seconds * 1000)
        return list(self._claim(keys=[keys.LEASES, keys.ORPHANS], args=[limit, grace]))

    def expire_leases(self, worker: str) -> list[str]:
        """End the leases of every job ``worker`` was running (it is known to be dead), so
        that :meth:`claim_orphans` returns them at once; returns their ids."""
        job_ids = sorted(self.redis.smembers(keys.node_jobs(worker)))
        if job_ids:
            self.redis.zadd(keys.LEASES, dict.fromkeys(job_ids, 0), xx=True)
        return job_ids

    def add_event(self, job_id: str, type_: str, data: Mapping[str, Any], attempt: int | None = None) -> str:
        """Append an event; the stream's time to live restarts with it."""
        fields: dict[str, Any] = {"type": type_, "data": json.dumps(data), "ts": now_ms()}
        if attempt is not None:
            fields["attempt"] = attempt
        stream = keys.job_events(job_id)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stream, fields, maxlen=self.settings.events_maxlen, approximate=True)
            pipe.expire(stream, self.settings.job_ttl_seconds)
            return pipe.execute()[0]

    def finish(self, job_id: str, status: str, envelope: Mapping[str, Any], attempt: int, *,
               holder_only: bool = True) -> bool:  # fmt: skip
        """Write the final state and the ``finished`` event atomically; False when the
        job was already final or no longer exists or, with ``holder_only``, when another
        attempt than ``attempt`` holds it. Ends the job's lease."""
        result = self._finish(
            keys=[keys.job(job_id), keys.job_events(job_id), keys.FINISHED_STREAM, keys.LEASES, keys.ORPHANS,
                  keys.CANCELS],
            args=[status, json.dumps(envelope), now_ms(), self.settings.job_ttl_seconds,
                  self.settings.events_maxlen, self.settings.finished_maxlen, attempt, job_id,
                  keys.NODE_PREFIX, "1" if holder_only else "0", keys.AGENT_PREFIX, *sorted(FINAL_STATUSES)],
        )  # fmt: skip
        return bool(result)

    def cancel(
        self, job_id: str, *, cancel_predictions: bool = False, envelope: Mapping[str, Any]
    ) -> tuple[str, str | None]:
        """Cancel a job: one queued is finished ``cancelled`` at once with ``envelope``
        (``"cancelled"``); one running is flagged for its worker to stop (``"requested"``).
        Also ``("final", status)`` and ``("missing", None)``."""
        reply = self._cancel(
            keys=[keys.job(job_id), keys.job_events(job_id), keys.FINISHED_STREAM, keys.CANCELS],
            args=[job_id, json.dumps(envelope), now_ms(), self.settings.job_ttl_seconds, self.settings.events_maxlen,
                  self.settings.finished_maxlen, "predictions" if cancel_predictions else "stop", keys.AGENT_PREFIX],
        )  # fmt: skip
        return reply[0], (reply[1] if len(reply) > 1 else None)

    def cancel_requested(self, job_id: str) -> str | None:
        """``"stop"`` or ``"predictions"`` when the job was asked to stop, else None."""
        return self.redis.hget(keys.job(job_id), "cancel") or None

    def cancel_requests(self, job_ids: Sequence[str]) -> set[str]:
        """Which of ``job_ids`` were asked to stop (one round trip)."""
        if not job_ids:
            return set()
        flags = self.redis.smismember(keys.CANCELS, list(job_ids))
        return {job_id for job_id, flagged in zip(job_ids, flags, strict=True) if flagged}

    # -- the write journal (see worker.journal) --------------------------------------

    def journal_append(self, job_id: str, entry: Mapping[str, Any], attempt: int) -> int:
        """Append ``entry`` to the job's write journal as attempt ``attempt``; returns its
        index. Raises :class:`NotHeld` when that attempt no longer holds the job (another
        attempt took it over, it ended, or its lease ran out): its write must not be sent."""
        index = int(self._journal_append(
            keys=[keys.journal(job_id), keys.job(job_id), keys.LEASES],
            args=[json.dumps(entry), attempt, job_id, self.settings.job_ttl_seconds],
        ))  # fmt: skip
        if index < 0:
            raise NotHeld(job_id, attempt)
        return index

    def journal_update(self, job_id: str, index: int, entry: Mapping[str, Any]) -> None:
        self.redis.lset(keys.journal(job_id), index, json.dumps(entry))

    def journal(self, job_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.redis.lrange(keys.journal(job_id), 0, -1)]

    # -- accounts ----------------------------------------------------------------------

    def announce_accounts(self, names: Sequence[str], ttl_seconds: float = 60.0) -> None:
        """Say that a worker can run jobs for the accounts ``names`` (for the next
        ``ttl_seconds``): submitters check a job's account against them."""
        if names:
            until = now_ms() + int(ttl_seconds * 1000)
            self.redis.hset(keys.ACCOUNTS, mapping=dict.fromkeys(names, until))

    def known_accounts(self) -> set[str]:
        """The accounts some live worker announced (empty: no worker said)."""
        now = now_ms()
        return {name for name, until in self.redis.hgetall(keys.ACCOUNTS).items() if int(until) > now}

    # -- reading ---------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        raw = self.redis.hgetall(keys.job(job_id))
        if not raw or "status" not in raw:
            return None
        return JobRecord(
            job_id=job_id,
            status=JobStatus(raw["status"]),
            request=json.loads(raw.get("request") or "{}"),
            attempt=int(raw.get("attempt") or 0),
            created_at=_int(raw.get("created_at")),
            started_at=_int(raw.get("started_at")),
            finished_at=_int(raw.get("finished_at")),
            envelope=json.loads(raw["envelope"]) if raw.get("envelope") else None,
        )

    def read_events(self, job_id: str, after: str = "0-0", *, block_ms: int | None = None,
                    count: int = 500) -> list[Event]:  # fmt: skip
        """Events after the id ``after`` (exclusive); with ``block_ms``, wait up to that
        long for the first new one."""
        reply = self.redis.xread({keys.job_events(job_id): after}, count=count, block=block_ms)
        events: list[Event] = []
        for _stream, entries in reply or []:
            for event_id, fields in entries:
                events.append(
                    Event(id=event_id, type=fields.get("type", ""),
                          data=json.loads(fields.get("data") or "{}"),
                          ts=int(fields.get("ts") or 0), attempt=_int(fields.get("attempt")))
                )  # fmt: skip
        return events

    def _has_finished_event(self, job_id: str) -> bool:
        last = self.redis.xrevrange(keys.job_events(job_id), count=1)
        return bool(last) and last[0][1].get("type") == "finished"

    def _reconnecting(self, action: Callable[[], Any], reconnect_seconds: float) -> Any:
        """``action()``, retried while the connection to Redis is down."""
        delay, given_up = RECONNECT_FIRST_DELAY, time.monotonic() + reconnect_seconds
        while True:
            try:
                return action()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() + delay > given_up:
                    raise
                log.warning("redis.reconnecting", error=str(exc), retry_in=round(delay, 2))
                time.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)

    def follow(self, job_id: str, after: str = "0-0", *, timeout: float | None = None, poll_ms: int = 2000,
               on_idle: Callable[[float, str], None] | None = None,
               reconnect_seconds: float = RECONNECT_SECONDS) -> Iterator[Event]:  # fmt: skip
        """Yield every event after ``after`` as it arrives, until the ``finished`` event.

        Raises JobNotFound if the job does not exist and TimeoutError when ``timeout``
        seconds pass first; resume later by passing the last yielded id as ``after``.
        ``on_idle(seconds_waited, status)`` is called after each poll that brought nothing.

        A dropped connection (a Redis restart, a failover, a network blip) is retried with
        backoff for up to ``reconnect_seconds`` at a time, reading on after the last event
        yielded: no event is skipped or repeated.
        """
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout

        def retried(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return self._reconnecting(lambda: action(*args, **kwargs), reconnect_seconds)

        if not retried(self.redis.exists, keys.job(job_id)):
            raise JobNotFound(job_id)
        while True:
            wait_ms = poll_ms
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
                wait_ms = max(1, min(poll_ms, int(left * 1000)))
            events = retried(self.read_events, job_id, after, block_ms=wait_ms)
            for event in events:
                yield event
                after = event.id
                if event.type == "finished":
                    return
            if events:
                continue
            # Only the status on each idle poll: the record also holds the request (and its
            # attachments), which a follower must not reload every few seconds.
            status = retried(self.redis.hget, keys.job(job_id), "status")
            if status is None:
                raise JobNotFound(job_id)
            if JobStatus(status).is_final and not retried(self.read_events, job_id, after):
                record = retried(self.get, job_id)
                if record is not None and record.envelope is not None and not retried(self._has_finished_event, job_id):
                    # The stream expired before we read its end: the record still holds
                    # the outcome.
                    yield Event(id=after, type="finished", data=record.envelope, ts=record.finished_at or 0)
                return  # otherwise this reader is already past the finished event
            if on_idle is not None:
                on_idle(time.monotonic() - started, status)


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)
