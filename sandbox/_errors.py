"""Errors of the sandbox.

::

    SandboxError
     ├── ScriptError(type, message, line, traceback)   how a run failed (``Envelope.error``)
     │    ├── LimitExceeded(limit)                     a limit ended the run
     │    └── PermissionDenied                         a write without ``allow_writes``
     └── ConversionError(message, path)                a value with no JSON form

``run_script`` never raises these for anything a script does: they describe a run's outcome
(``Envelope.error``) or travel inside the sandbox until they become Lua errors.

``ERROR_TYPES`` lists every ``error.type`` the sandbox itself produces; provider errors add
their own ``error_type`` (``api_error``, ``argument_error``, ``transport_error``,
``configuration_error``, ...).
"""

from __future__ import annotations

from typing import Any

SYNTAX_ERROR = "syntax_error"
RUNTIME_ERROR = "runtime_error"
PERMISSION_DENIED = "permission_denied"
UNKNOWN_FUNCTION = "unknown_function"
UNKNOWN_ACCOUNT = "unknown_account"
ARGUMENT_ERROR = "argument_error"
INTERNAL_ERROR = "internal_error"

LIMIT_TYPES = (
    "instruction_limit",
    "memory_limit",
    "wall_clock_limit",
    "output_limit",
    "call_limit",
    "result_size_limit",
)

ERROR_TYPES = (
    SYNTAX_ERROR,
    RUNTIME_ERROR,
    PERMISSION_DENIED,
    UNKNOWN_FUNCTION,
    UNKNOWN_ACCOUNT,
    ARGUMENT_ERROR,
    INTERNAL_ERROR,
    *LIMIT_TYPES,
)


class SandboxError(Exception):
    """Root of the sandbox's errors."""


class ScriptError(SandboxError):
    """Why a script failed: ``type`` (one of ``ERROR_TYPES`` or a provider's
    ``error_type``), ``message``, the script ``line`` when known and a Lua ``traceback``
    (script lines only) when there is one."""

    def __init__(
        self,
        type: str,
        message: str,
        line: int | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.line = line
        self.traceback = traceback

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "line": self.line,
            "traceback": self.traceback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScriptError:
        args = (data["type"], data["message"], data.get("line"), data.get("traceback"))
        if data["type"] in LIMIT_TYPES:
            return LimitExceeded(*args)
        if data["type"] == PERMISSION_DENIED:
            return PermissionDenied(*args[1:])
        return ScriptError(*args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type!r}, {self.message!r}, line={self.line!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScriptError):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


class LimitExceeded(ScriptError):
    """A limit ended the run; ``limit`` (= ``type``) is one of ``LIMIT_TYPES``."""

    def __init__(
        self,
        limit: str,
        message: str | None = None,
        line: int | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(limit, message or f"{limit.replace('_', ' ')} exceeded", line, traceback)

    @property
    def limit(self) -> str:
        return self.type


class PermissionDenied(ScriptError):
    """A write operation called without ``allow_writes``."""

    def __init__(self, message: str, line: int | None = None, traceback: str | None = None):
        super().__init__(PERMISSION_DENIED, message, line, traceback)


class ConversionError(SandboxError):
    """A value that cannot become JSON (or Lua): a function, a cycle, NaN, too deep."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{message} at {path}" if path != "$" else message)
        self.path = path
