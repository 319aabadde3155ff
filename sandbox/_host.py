"""Python functions that Lua may call: they never raise into Lua.

lupa turns an exception raised by a Python callback into a Lua error whose value is the
Python exception object itself, which would hand the script a way into the host. So every
callback exposed to Lua is wrapped by :func:`host_function`: it returns ``true, values...``
on success and ``false, code, ...`` on failure, and core.lua's ``wrap_host`` raises the Lua
error. Codes:

- ``"error", message``: a string error raised at the script's line (``runtime``);
- ``"raise", type, message, kind``: an error value of that type (``validation`` with kind
  ``unknown_function``, ...);
- ``"limit", limit``: a limit tripped (sticky, see core.lua);
- ``"abort"``: the host raised (e.g. ``on_output``); the run stops and ``run_script``
  re-raises the host's exception.

Return values are checked too: a Python ``str`` would reach Lua as a Python object (the
runtime uses ``encoding=None``), so strings are encoded and anything else is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from ._errors import ConversionError, LimitExceeded, ScriptError, classify
from ._lupa import lua54
from ._memory import Memory

log = structlog.get_logger(__name__)

_lua_type = lua54.lua_type


class ScriptFacingError(Exception):
    """Raised by a callback: becomes a Lua error the script can catch.

    ``kind`` None gives a plain string error (``runtime`` if uncaught); otherwise an error
    value with that ``kind`` and the ``type`` :func:`~sandbox._errors.classify` gives it.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class HostAbort(BaseException):
    """Carries an exception the host raised from inside a run (``on_output``, ``clock``) out
    of Lua; ``run_script`` re-raises ``.exception``."""

    def __init__(self, exception: BaseException) -> None:
        super().__init__(exception)
        self.exception = exception


def lua_safe(value: Any) -> Any:
    """``value`` if Lua can hold it without seeing a Python object; raises TypeError else."""
    if value is None or type(value) in (bool, int, float, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if _lua_type(value) is not None:
        return value
    raise TypeError(f"refusing to pass a {type(value).__name__} to Lua")


def host_function(
    fn: Callable[..., tuple[Any, ...]],
    on_abort: Callable[[BaseException], None],
    memory: Memory | None = None,
) -> Callable[..., tuple[Any, ...]]:
    """Wrap ``fn`` (returning a tuple of values) for Lua; see the module docstring. Strings
    returned are reserved in ``memory`` first (a value that does not fit fails with the
    memory limit instead of failing inside lupa)."""

    def callback(*args: Any) -> tuple[Any, ...]:
        try:
            values = tuple(lua_safe(v) for v in fn(*args))
            if memory is not None:
                size = sum(len(v) + 64 for v in values if type(v) is bytes)
                if size:
                    memory.reserve(size)
            return (True, *values)
        except ScriptFacingError as exc:
            if exc.kind is None:
                return (False, b"error", _b(exc.message))
            return (False, b"raise", _b(classify(exc.kind)), _b(exc.message), _b(exc.kind))
        except ConversionError as exc:
            return (False, b"error", _b(str(exc)))
        except LimitExceeded as exc:
            return (False, b"limit", _b(exc.limit))
        except lua54.LuaMemoryError:
            return (False, b"limit", b"memory")
        except ScriptError as exc:
            return (False, b"raise", _b(exc.type), _b(exc.message), _b(exc.type))
        except HostAbort as exc:
            on_abort(exc.exception)
            return (False, b"abort")
        except Exception:
            log.exception("sandbox callback failed", callback=getattr(fn, "__name__", "?"))
            return (False, b"raise", b"internal", b"internal error in the sandbox", b"internal")
        except BaseException as exc:
            on_abort(exc)
            return (False, b"abort")

    return callback


def _b(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
