"""The job store and results channel: job records and per-job event streams in Redis.

Each job has a record (a hash) and a stream of events. Events are appended as the job
progresses (``queued``, ``started``, one ``log`` per printed line, one ``call`` per
integration call, ``finished`` with the envelope), so a reader can start from any event id
and resume where it left off; nothing depends on anyone listening. The final state is
written by one Lua script that also appends the ``finished`` event and the entry on the
global finished stream, so the record and the streams can never disagree, and only the
first attempt to finish a job wins.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from . import keys
from .job import FINAL_STATUSES, JobRequest, JobStatus
from .redis_urls import redis_client
from .settings import Settings

CREATE_SCRIPT = """
-- KEYS[1] job record, KEYS[2] job event stream
-- ARGV[1] request JSON, ARGV[2] now (ms), ARGV[3] ttl (s), ARGV[4] events maxlen,
-- ARGV[5] queued event data
-- Returns 1 when the job was created, 0 when a job with this id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'request', ARGV[1], 'status', 'queued', 'created_at', ARGV[2],
           'attempt', 0)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
           'type', 'queued', 'data', ARGV[5], 'ts', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

FINISH_SCRIPT = """
-- KEYS[1] job record, KEYS[2] job event stream, KEYS[3] global finished stream
-- ARGV[1] status, ARGV[2] envelope JSON, ARGV[3] now (ms), ARGV[4] ttl (s),
-- ARGV[5] events maxlen, ARGV[6] finished maxlen, ARGV[7] attempt, ARGV[8] job id,
-- ARGV[9..] the final statuses
-- Returns 1 when this call finished the job, 0 when it was already final or is gone.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return 0 end
for i = 9, #ARGV do
  if current == ARGV[i] then return 0 end
end
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

    @classmethod
    def from_settings(cls, settings: Settings) -> JobStore:
        if not settings.redis_url:
            raise RuntimeError("no Redis configured: set LUAQ_REDIS_URL, or start local mode with `luaq up`")
        return cls(redis_client(settings.redis_url, master_name=settings.redis_sentinel_master), settings)

    # -- writing ---------------------------------------------------------------------

    def create(self, request: JobRequest) -> bool:
        """Store a new job record with its ``queued`` event, atomically. Returns False,
        changing nothing, when a job with this id exists (the id is an idempotency key)."""
        created = self._create(
            keys=[keys.job(request.job_id), keys.job_events(request.job_id)],
            args=[json.dumps(request.to_dict()), now_ms(), self.settings.job_ttl_seconds,
                  self.settings.events_maxlen, json.dumps({"job_id": request.job_id})],
        )  # fmt: skip
        return bool(created)

    def discard(self, job_id: str) -> None:
        """Remove a job that never reached the queue (its message could not be sent)."""
        self.redis.delete(keys.job(job_id), keys.job_events(job_id))

    def start(self, job_id: str, worker: str) -> int:
        """Mark a job running and return this attempt's number (1 for the first run).
        The record's time to live restarts, so a job never expires while it runs."""
        key = keys.job(job_id)
        started = now_ms()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempt", 1)
            pipe.hset(key, mapping={"status": JobStatus.RUNNING.value, "started_at": started, "worker": worker})
            pipe.expire(key, self.settings.job_ttl_seconds)
            attempt = int(pipe.execute()[0])
        self.add_event(job_id, "started", {"worker": worker}, attempt)
        return attempt

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

    def finish(self, job_id: str, status: str, envelope: Mapping[str, Any], attempt: int) -> bool:
        """Write the final state and the ``finished`` event atomically; False when the
        job was already final (another attempt won) or no longer exists."""
        result = self._finish(
            keys=[keys.job(job_id), keys.job_events(job_id), keys.FINISHED_STREAM],
            args=[status, json.dumps(envelope), now_ms(), self.settings.job_ttl_seconds,
                  self.settings.events_maxlen, self.settings.finished_maxlen, attempt, job_id,
                  *sorted(FINAL_STATUSES)],
        )  # fmt: skip
        return bool(result)

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

    def follow(self, job_id: str, after: str = "0-0", *, timeout: float | None = None, poll_ms: int = 2000,
               on_idle: Callable[[float, str], None] | None = None) -> Iterator[Event]:  # fmt: skip
        """Yield every event after ``after`` as it arrives, until the ``finished`` event.

        Raises JobNotFound if the job does not exist and TimeoutError when ``timeout``
        seconds pass first; resume later by passing the last yielded id as ``after``.
        ``on_idle(seconds_waited, status)`` is called after each poll that brought nothing.
        """
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        if not self.redis.exists(keys.job(job_id)):
            raise JobNotFound(job_id)
        while True:
            wait_ms = poll_ms
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
                wait_ms = max(1, min(poll_ms, int(left * 1000)))
            events = self.read_events(job_id, after, block_ms=wait_ms)
            for event in events:
                yield event
                after = event.id
                if event.type == "finished":
                    return
            if events:
                continue
            # Only the status on each idle poll: the record also holds the request (and its
            # attachments), which a follower must not reload every few seconds.
            status = self.redis.hget(keys.job(job_id), "status")
            if status is None:
                raise JobNotFound(job_id)
            if JobStatus(status).is_final and not self.read_events(job_id, after):
                record = self.get(job_id)
                if record is not None and record.envelope is not None and not self._has_finished_event(job_id):
                    # The stream expired before we read its end: the record still holds
                    # the outcome.
                    yield Event(id=after, type="finished", data=record.envelope, ts=record.finished_at or 0)
                return  # otherwise this reader is already past the finished event
            if on_idle is not None:
                on_idle(time.monotonic() - started, status)


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)
