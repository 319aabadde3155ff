"""Errors of the sandbox, and the taxonomy of ``error.type``.

::

    SandboxError
     ├── ScriptError(type, message, line, traceback)   how a run failed (``Envelope.error``)
     │    ├── LimitExceeded(limit)                     a limit ended the run
     │    └── PermissionDenied                         a write without ``allow_writes``
     └── ConversionError(message, path)                a value with no JSON form

``run_script`` never raises these for anything a script does: they describe a run's outcome
(``Envelope.error``) or travel inside the sandbox until they become Lua errors.

``error.type`` is one of ``ERROR_TYPES``:

==================  =================================================================
``syntax``          the script (or the main chunk) does not compile
``runtime``         a Lua error, or a returned value with no JSON form
``limit_exceeded``  a limit ended the run; ``error.limit`` names it (``LIMITS``)
``api``             the provider failed: an API error, no response, not configured
``permission``      a write operation without ``allow_writes``
``validation``      a call the sandbox or the provider refused before sending it: bad
                    arguments, an unknown function or account
``internal``        a fault of the host (a provider bug, a sandbox bug)
``cancelled``       the host stopped the run on request (the job was cancelled)
==================  =================================================================

Provider exceptions carry their own ``error_type`` (``api_client``: ``argument_error``,
``api_error``, ``transport_error``, ``configuration_error``); :func:`classify` maps it onto
the taxonomy, and the original stays on the Lua error value as ``kind``.
"""

from __future__ import annotations

from typing import Any

SYNTAX = "syntax"
RUNTIME = "runtime"
LIMIT = "limit_exceeded"
API = "api"
PERMISSION = "permission"
VALIDATION = "validation"
INTERNAL = "internal"
CANCELLED = "cancelled"

ERROR_TYPES = (SYNTAX, RUNTIME, LIMIT, API, PERMISSION, VALIDATION, INTERNAL, CANCELLED)

# Names of the limits (``error.limit``). A provider may end a run with a cap of its own
# (``daily_predictions`` from api_client's limiter), see ``_provider``.
LIMITS = ("instructions", "memory", "wall_clock", "output", "calls", "result_size", "predictions", "writes")

# Kinds the sandbox itself gives its Lua error values (``e.kind``).
PERMISSION_DENIED = "permission_denied"
UNKNOWN_FUNCTION = "unknown_function"
UNKNOWN_ACCOUNT = "unknown_account"
ARGUMENT_ERROR = "argument_error"

_CLASSES = {
    "argument_error": VALIDATION,
    "validation_error": VALIDATION,
    UNKNOWN_FUNCTION: VALIDATION,
    UNKNOWN_ACCOUNT: VALIDATION,
    PERMISSION_DENIED: PERMISSION,
    "api_error": API,
    "transport_error": API,
    "configuration_error": API,
    "internal_error": INTERNAL,
}


def classify(kind: str | None) -> str:
    """The ``error.type`` for a provider's or the bridge's ``error_type`` (``kind``).

    Taxonomy names map to themselves; unknown provider types are ``api`` errors (the provider
    failed in a way it named but the sandbox does not know)."""
    if kind is None:
        return INTERNAL
    if kind in ERROR_TYPES:
        return kind
    return _CLASSES.get(kind, API)


class SandboxError(Exception):
    """Root of the sandbox's errors."""


class ScriptError(SandboxError):
    """Why a script failed: ``type`` (one of ``ERROR_TYPES``), ``message``, the script
    ``line`` when known and a Lua ``traceback`` (script lines only) when there is one.
    ``limit`` is None except on :class:`LimitExceeded`."""

    limit: str | None = None

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
        line, traceback = data.get("line"), data.get("traceback")
        if data["type"] == LIMIT:
            return LimitExceeded(data.get("limit") or "unknown", data["message"], line, traceback)
        if data["type"] == PERMISSION:
            return PermissionDenied(data["message"], line, traceback)
        return ScriptError(data["type"], data["message"], line, traceback)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type!r}, {self.message!r}, line={self.line!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScriptError):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


class LimitExceeded(ScriptError):
    """A limit ended the run: ``type`` is ``"limit_exceeded"`` and ``limit`` one of
    ``LIMITS``; ``to_dict()`` carries ``limit`` too."""

    def __init__(
        self,
        limit: str,
        message: str | None = None,
        line: int | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(LIMIT, message or f"{limit.replace('_', ' ')} limit exceeded", line, traceback)
        self.limit: str = limit

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "limit": self.limit}

    def __repr__(self) -> str:
        return f"LimitExceeded({self.limit!r}, {self.message!r}, line={self.line!r})"


class PermissionDenied(ScriptError):
    """A write operation called without ``allow_writes``."""

    def __init__(self, message: str, line: int | None = None, traceback: str | None = None):
        super().__init__(PERMISSION, message, line, traceback)


class ConversionError(SandboxError):
    """A value that cannot become JSON (or Lua): a function, a cycle, NaN, too deep."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{message} at {path}" if path != "$" else message)
        self.path = path
