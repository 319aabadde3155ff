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
    chunk_name: str = "script"

    @classmethod
    def from_dict(cls, data: Any, settings: Settings) -> JobRequest:
        """Validate a submission (the JSON contract); raise SubmissionError naming the
        field at fault. ``file`` may stand in for ``script``: a path the submitter reads."""
        if not isinstance(data, Mapping):
            raise SubmissionError("a submission must be a JSON object")
        known = {f for f in cls.__dataclass_fields__} | {"file"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SubmissionError(
                f"unknown field(s) in submission: {', '.join(unknown)}; "
                f"known fields: {', '.join(sorted(known))}"
            )
        script, chunk_name = _script_from(data)
        script_size = len(script.encode("utf-8"))
        _check(
            script_size <= settings.max_script_bytes,
            f"the script is {script_size} bytes; the limit is {settings.max_script_bytes}",
        )
        job_id = data.get("job_id")
        if job_id is None:
            job_id = uuid.uuid4().hex
        _check(
            isinstance(job_id, str) and JOB_ID_PATTERN.match(job_id),
            "job_id must be 1-128 characters of letters, digits and _ . : - "
            "starting with a letter or digit",
        )
        args = data.get("args") or {}
        _check(isinstance(args, Mapping), "args must be a JSON object")
        args_size = len(json.dumps(args))
        _check(
            args_size <= settings.max_args_bytes,
            f"args is {args_size} bytes as JSON; the limit is {settings.max_args_bytes}",
        )
        account = data.get("account") or "default"
        _check(
            isinstance(account, str) and ACCOUNT_PATTERN.match(account),
            "account must be a lower-case account name such as 'default' or 'work'",
        )
        allow_writes = data.get("allow_writes", False)
        _check(isinstance(allow_writes, bool), "allow_writes must be true or false")
        limits = data.get("limits") or {}
        _check(isinstance(limits, Mapping), "limits must be a JSON object")
        try:
            Limits.from_request(
                limits, default=settings.default_limits, maximum=settings.max_limits
            )
        except ValueError as exc:
            raise SubmissionError(f"limits: {exc}") from None
        agent_id = data.get("agent_id")
        _check(
            agent_id is None or (isinstance(agent_id, str) and 0 < len(agent_id) <= 128),
            "agent_id must be a string of at most 128 characters",
        )
        priority = data.get("priority")
        _check(
            priority is None or (type(priority) is int and 0 <= priority <= 9),
            "priority must be an integer from 0 to 9",
        )
        queue = data.get("queue")
        _check(
            queue is None or (isinstance(queue, str) and 0 < len(queue) <= 64),
            "queue must be a queue name",
        )
        metadata = data.get("metadata") or {}
        _check(isinstance(metadata, Mapping), "metadata must be a JSON object")
        simulate = data.get("simulate", False)
        _check(isinstance(simulate, bool), "simulate must be true or false")
        files = _files_from(data.get("files") or {}, settings)
        return cls(
            script=script, job_id=job_id, args=dict(args), account=account,
            allow_writes=allow_writes, limits=dict(limits), agent_id=agent_id,
            priority=priority, queue=queue, files=files, metadata=dict(metadata),
            simulate=simulate, chunk_name=chunk_name,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the job record (attachments base64-encoded)."""
        data = asdict(self)
        data["files"] = {
            name: base64.b64encode(content).decode() for name, content in self.files.items()
        }
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> JobRequest:
        """Rebuild a request that :meth:`from_dict` already validated."""
        values = dict(data)
        values["files"] = {
            name: base64.b64decode(text) for name, text in values.get("files", {}).items()
        }
        return cls(**values)

    def limits_for(self, settings: Settings) -> Limits:
        return Limits.from_request(self.limits, default=settings.default_limits,
                                   maximum=settings.max_limits)  # fmt: skip


def _check(condition: Any, message: str) -> None:
    if not condition:
        raise SubmissionError(message)


def _script_from(data: Mapping[str, Any]) -> tuple[str, str]:
    script, path = data.get("script"), data.get("file")
    if script is not None and path is not None:
        raise SubmissionError("give either script or file, not both")
    chunk_name = data.get("chunk_name") or "script"
    if path is not None:
        _check(isinstance(path, str), "file must be a path")
        try:
            with open(path, encoding="utf-8") as handle:
                script = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise SubmissionError(f"cannot read script file {path!r}: {exc}") from None
        chunk_name = path.rsplit("/", 1)[-1]
    _check(isinstance(script, str), "script must be a string of Lua source")
    _check(
        isinstance(chunk_name, str) and 0 < len(chunk_name) <= 128,
        "chunk_name must be a short name",
    )
    if not script.strip():
        raise SubmissionError(
            "the script is empty: give Lua source with --eval CODE, a FILE, or - for stdin"
        )
    return script, chunk_name


def _files_from(files: Any, settings: Settings) -> dict[str, bytes]:
    _check(isinstance(files, Mapping), "files must map attachment names to base64 content")
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


def failure_envelope(job_id: str, status: JobStatus, error_type: str, message: str,
                     meta: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The envelope of a job that ended before its script could run to an end (a bad
    submission, an unknown account, a lost attempt)."""
    return {
        "job_id": job_id, "status": status.value, "success": False, "result": None,
        "output": "", "error": {"type": error_type, "message": message, "line": None,
                                "traceback": None},
        "execution_time_ms": 0.0, "memory_usage": None, "instructions": 0,
        "integration_calls": [], "meta": dict(meta or {}),
    }  # fmt: skip
