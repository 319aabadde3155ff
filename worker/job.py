"""The job model shared by the submitter, the worker and the CLI.

A submission is a JSON object (:class:`JobRequest`); it is validated once, when it is
made, so a worker only ever sees well-formed requests. The final result is the sandbox's
envelope, completed by the worker with ``job_id`` and ``meta``; :class:`JobStatus` lists
every state a job record can be in.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from sandbox import Limits

from .settings import Settings

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
ACCOUNT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LIMIT_EXCEEDED = "limit_exceeded"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    LOST = "lost"

    @property
    def is_final(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


FINAL_STATUSES = frozenset(s.value for s in JobStatus if s.is_final)

# The submission contract's fields (DESIGN.md, "Job contract").
SUBMISSION_FIELDS = (
    "job_id", "script", "file", "args", "account", "allow_writes", "limits", "agent_id",
    "priority", "queue", "files", "metadata", "simulate", "on_redelivery",
)  # fmt: skip
# What a worker does with a job whose earlier attempt made write calls and then lost its
# worker: end it ``lost`` with the journal of those calls (the default), or run it again.
ON_REDELIVERY = ("lost", "rerun")


class SubmissionError(ValueError):
    """A submission that cannot be accepted; the message says what to fix."""


@dataclass(frozen=True)
class JobRequest:
    """One submitted job. ``files`` maps attachment names to their bytes."""

    script: str
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    args: dict[str, Any] = field(default_factory=dict)
    account: str = "default"
    allow_writes: bool = False
    limits: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None
    priority: int | None = None
    queue: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    simulate: bool = False
    file: str = "script"
    on_redelivery: str = "lost"

    @classmethod
    def from_dict(cls, data: Any, settings: Settings, *, delivered: bool = False) -> JobRequest:
        """Validate a submission (the JSON contract); raise SubmissionError naming the
        field at fault. ``file`` is the script's file name, used in error messages.
        ``delivered``: a worker re-checks a stored request it was handed (its queue is
        the one it came from, whatever this process's LUAQ_QUEUES says)."""
        if not isinstance(data, Mapping):
            raise SubmissionError("a submission must be a JSON object")
        known = set(SUBMISSION_FIELDS)
        unknown = sorted(str(key) for key in set(data) - known)
        if unknown:
            raise SubmissionError(
                f"unknown field(s) in submission: {', '.join(unknown)}; known fields: {', '.join(sorted(known))}"
            )
        script = data.get("script")
        _check(script is not None, "the submission has no script: give its Lua source in 'script'")
        _check(isinstance(script, str), "script must be a string of Lua source")
        _check(script.strip(), "the script is empty: give Lua source with --eval CODE, a FILE, or - for stdin")
        script_size = _utf8_size(script, "script")
        _check(
            script_size <= settings.max_script_bytes,
            f"the script is {script_size} bytes; the limit is {settings.max_script_bytes}",
        )
        file = data.get("file") or "script"
        _check(isinstance(file, str) and 0 < len(file) <= 128 and "\n" not in file, "file must be a short file name")
        _utf8_size(file, "file")
        job_id = data.get("job_id")
        if job_id is None:
            job_id = uuid.uuid4().hex
        _check(
            isinstance(job_id, str) and JOB_ID_PATTERN.fullmatch(job_id),
            "job_id must be 1-128 characters of letters, digits and _ . : - starting with a letter or digit",
        )
        args = _object(data, "args", settings)
        metadata = _object(data, "metadata", settings)
        account = data.get("account", "default")
        _check(
            isinstance(account, str) and ACCOUNT_PATTERN.fullmatch(account),
            "account must be a lower-case account name such as 'default' or 'work'",
        )
        allow_writes = data.get("allow_writes", False)
        _check(isinstance(allow_writes, bool), "allow_writes must be true or false")
        limits = data.get("limits", {})
        _check(isinstance(limits, Mapping), "limits must be a JSON object")
        try:
            Limits.from_request(limits, default=settings.default_limits, maximum=settings.max_limits)
        except ValueError as exc:
            raise SubmissionError(f"limits: {exc}") from None
        agent_id = data.get("agent_id")
        _check(
            agent_id is None or (isinstance(agent_id, str) and 0 < len(agent_id) <= 128),
            "agent_id must be a string of at most 128 characters",
        )
        if agent_id is not None:
            _utf8_size(agent_id, "agent_id")
        priority = data.get("priority")
        _check(
            priority is None or (type(priority) is int and 0 <= priority <= 9),
            "priority must be an integer from 0 (first) to 9",
        )
        queue = data.get("queue")
        _check(
            queue is None or queue in settings.queues or (delivered and isinstance(queue, str)),
            f"unknown queue {queue!r}; this deployment's queues: {', '.join(settings.queues)} (LUAQ_QUEUES)",
        )
        simulate = data.get("simulate", False)
        _check(isinstance(simulate, bool), "simulate must be true or false")
        on_redelivery = data.get("on_redelivery", "lost")
        _check(
            on_redelivery in ON_REDELIVERY,
            f"on_redelivery must be {' or '.join(map(repr, ON_REDELIVERY))}: what to do when an attempt "
            "that made write calls lost its worker (end the job 'lost', or run it again)",
        )
        files = _files_from(data.get("files", {}), settings)
        return cls(
            script=script, job_id=job_id, args=args, account=account, allow_writes=allow_writes,
            limits=dict(limits), agent_id=agent_id, priority=priority, queue=queue, files=files,
            metadata=metadata, simulate=simulate, file=file, on_redelivery=on_redelivery,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the job record (attachments base64-encoded)."""
        data = asdict(self)
        data["files"] = {name: base64.b64encode(content).decode() for name, content in self.files.items()}
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> JobRequest:
        """Rebuild a request that :meth:`from_dict` already validated."""
        values = dict(data)
        values["files"] = {name: base64.b64decode(text) for name, text in values.get("files", {}).items()}
        return cls(**values)

    def limits_for(self, settings: Settings) -> Limits:
        return Limits.from_request(self.limits, default=settings.default_limits,
                                   maximum=settings.max_limits)  # fmt: skip


def _check(condition: Any, message: str) -> None:
    if not condition:
        raise SubmissionError(message)


def _utf8_size(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise SubmissionError(f"{what} contains text that is not valid Unicode") from None


def _object(data: Mapping[str, Any], name: str, settings: Settings) -> dict[str, Any]:
    """A JSON-object field (``args``, ``metadata``): absent means ``{}``; bounded in size."""
    value = data.get(name, {})
    _check(isinstance(value, Mapping), f"{name} must be a JSON object")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise SubmissionError(f"{name} is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise SubmissionError(f"{name} must hold only JSON values: {exc}") from None
    size = _utf8_size(text, name)
    _check(size <= settings.max_args_bytes, f"{name} is {size} bytes as JSON; the limit is {settings.max_args_bytes}")
    return dict(value)


def _files_from(files: Any, settings: Settings) -> dict[str, bytes]:
    _check(isinstance(files, Mapping), "files must map attachment names to base64 content")
    _check(len(files) <= 100, "at most 100 attached files")
    decoded: dict[str, bytes] = {}
    for name, content in files.items():
        _check(
            isinstance(name, str) and 0 < len(name) <= 255 and "/" not in name,
            f"attachment name {name!r} must be a plain file name",
        )
        if isinstance(content, bytes):
            decoded[name] = content
            continue
        _check(isinstance(content, str), f"attachment {name!r} must be base64 text")
        try:
            decoded[name] = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise SubmissionError(f"attachment {name!r} is not valid base64") from None
    total = sum(len(content) for content in decoded.values())
    _check(
        total <= settings.max_files_bytes,
        f"attached files total {total} bytes; the limit is {settings.max_files_bytes}",
    )
    return decoded


def failure_envelope(job_id: str | None, status: JobStatus, error_type: str, message: str,
                     meta: dict[str, Any] | None = None, *, limit: str | None = None,
                     output: str = "") -> dict[str, Any]:  # fmt: skip
    """The envelope of a job that ended without its script running to an end (a bad
    submission, an unknown account, a run the watchdog had to stop, a lost attempt)."""
    error: dict[str, Any] = {"type": error_type, "message": message, "line": None, "traceback": None}
    if limit is not None:
        error["limit"] = limit
    return {
        "job_id": job_id, "status": status.value, "success": False, "result": None, "output": output,
        "error": error, "execution_time_ms": 0.0, "memory_usage": None, "instructions": 0,
        "integration_calls": [], "meta": dict(meta or {}),
    }  # fmt: skip


def stuck_envelope(job_id: str | None, wall_clock_seconds: float, output: list[str], meta: dict[str, Any] | None = None,
                   *, ended: str) -> dict[str, Any]:  # fmt: skip
    """The envelope of a run stopped from outside: the script never came back from one call.
    ``ended`` says how it was stopped."""
    message = (
        f"wall-clock limit of {wall_clock_seconds:g} s exceeded: the script was stuck inside a single call and {ended}"
    )
    return failure_envelope(job_id, JobStatus.LIMIT_EXCEEDED, "limit_exceeded", message, meta,
                            limit="wall_clock", output="\n".join(output))  # fmt: skip
