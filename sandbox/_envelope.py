"""The result envelope of one run (a superset of the reference runner's ``--json`` output)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._errors import ScriptError

SUCCEEDED = "succeeded"
FAILED = "failed"
LIMIT_EXCEEDED = "limit_exceeded"
CANCELLED = "cancelled"


@dataclass
class Envelope:
    """What a run produced.

    ``status`` is ``"succeeded"``, ``"failed"``, ``"limit_exceeded"`` or ``"cancelled"``
    (the run was given a cancel event that was set) here (the worker adds others); ``result`` holds every value the chunk returned, as JSON (``[]`` when it
    returned nothing, ``None`` on failure); ``output`` is the printed lines joined with
    ``"\\n"``; ``integration_calls`` has one entry per call; ``meta`` starts with
    ``permission_bypassed`` and is extended by the worker.
    """

    status: str
    job_id: str | None = None
    result: list[Any] | None = None
    output: str = ""
    error: ScriptError | None = None
    execution_time_ms: float = 0.0
    memory_usage: int | None = None
    instructions: int = 0
    integration_calls: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status == SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "success": self.success,
            "result": self.result,
            "output": self.output,
            "error": self.error.to_dict() if self.error is not None else None,
            "execution_time_ms": self.execution_time_ms,
            "memory_usage": self.memory_usage,
            "instructions": self.instructions,
            "integration_calls": [dict(call) for call in self.integration_calls],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        error = data.get("error")
        return cls(
            status=data["status"],
            job_id=data.get("job_id"),
            result=data.get("result"),
            output=data.get("output", ""),
            error=ScriptError.from_dict(error) if error else None,
            execution_time_ms=data.get("execution_time_ms", 0.0),
            memory_usage=data.get("memory_usage"),
            instructions=data.get("instructions", 0),
            integration_calls=list(data.get("integration_calls", [])),
            meta=dict(data.get("meta", {})),
        )
