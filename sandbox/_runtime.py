"""One script's run, advanced one step at a time by a driver.

A :class:`ScriptRun` owns a fresh Lua runtime whose main chunk runs inside a coroutine.
:meth:`ScriptRun.start` and :meth:`ScriptRun.resume` run the script until it either waits
for a request (:class:`Pending`, carrying a ``ProviderCall`` or ``Sleep`` from ``_bridge``)
or ends (:class:`Finished`, carrying the :class:`Envelope`). Performing the request is the
driver's job (``_driver.drive`` does it synchronously; an async driver can await it), after
which it calls ``resume(outcome)``. Requests that need no waiting (a refused write, bad
arguments) are answered here without returning to the driver.

Limits that the host notices (call limit, wall clock during a call or a sleep, a provider
result too large for the memory left) end the run here at once, without resuming the script;
limits noticed inside Lua (instructions, memory, output, wall clock in a tick) are sticky
there (see core.lua) and reported here whatever the script's ``pcall`` did.

Cancellation: a run given a ``cancel`` event (anything with ``is_set()``, such as a
``threading.Event``) stops once it is set, with status ``cancelled`` and the output so far:
checked at every clock reading between instructions (about every 5 ms of Lua work) and
before each host call; a driver waiting on a request calls :meth:`ScriptRun.cancel`.

``start``/``resume`` never raise for anything the script does. Exceptions raised by the
host's own callbacks (``on_output``, ``on_call``, ``clock``) propagate to the caller.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from . import _json
from ._bridge import Bridge, CallResult, Outcome, ProviderCall, Reply, Request, Sleep
from ._catalog import Catalog
from ._convert import Budget, Converter, Mode
from ._docs import Docs
from ._env import HOST_CHUNK_NAME, Sandbox, create_sandbox
from ._envelope import CANCELLED as CANCELLED_STATUS
from ._envelope import FAILED, LIMIT_EXCEEDED, SUCCEEDED, Envelope
from ._errors import (
    API,
    CANCELLED,
    INTERNAL,
    PERMISSION,
    RUNTIME,
    SYNTAX,
    VALIDATION,
    ConversionError,
    LimitExceeded,
    PermissionDenied,
    ScriptError,
)
from ._host import HostAbort
from ._instrument import InstrumentError, instrument
from ._limits import LIMIT_FIELDS, Limits
from ._lupa import lua54
from ._memory import MARGIN
from ._output import Output
from ._provider import Provider
from ._regex import Regexes

log = structlog.get_logger(__name__)

_MEMORY_ERROR = b"not enough memory"
_POST_RUN_HEADROOM = 4 * 1024 * 1024
_MAX_MESSAGE = 16 * 1024  # characters of an error message kept in the envelope
_HOST_PREFIX = re.compile(rf"^{re.escape(HOST_CHUNK_NAME)}:\d+: ")
_SCRIPT_ERROR_TYPES = frozenset({RUNTIME, API, PERMISSION, VALIDATION, INTERNAL})
_MIN_NODES = 65_536  # values a conversion may visit, at least (see _max_nodes)
CANCELLED_MESSAGE = "the job was cancelled"


class CancelSignal(Protocol):
    """What a run polls to learn that it must stop (``threading.Event`` is one)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Pending:
    """The script waits for ``request`` to be performed."""

    request: Request


@dataclass(frozen=True)
class Finished:
    """The run is over."""

    envelope: Envelope


Step = Pending | Finished


class ScriptRun:
    """The state of one run (see the module docstring). Single use, not thread-safe."""

    def __init__(
        self,
        source: str | bytes,
        *,
        providers: Sequence[Provider] = (),
        args: Mapping[str, Any] | None = None,
        limits: Limits | None = None,
        allow_writes: bool = False,
        on_output: Callable[[str], None] | None = None,
        on_call: Callable[[dict[str, Any]], None] | None = None,
        chunk_name: str = "script",
        job_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        cancel: CancelSignal | None = None,
    ) -> None:
        self._source = _prepare_source(source)
        self._cancel = cancel
        self._providers = providers
        self._args = args
        self._limits = limits or Limits.DEFAULT
        self._allow_writes = allow_writes
        self._on_output = on_output
        self._on_call = on_call
        self._chunk = chunk_name
        self._job_id = job_id
        self._clock = clock
        self._started = 0.0
        self.deadline = 0.0
        self._abort: BaseException | None = None
        self._pending: Request | None = None
        self._lua: Any = None
        self._sandbox: Sandbox | None = None
        self._control: dict[str, Any] = {}
        self._converter: Converter | None = None
        self._bridge: Bridge | None = None
        self._setup_memory = 0
        self._output = Output(self._limits.output_bytes, on_output)
        # Host conversions may visit this many values: about what a table of that many
        # entries costs Lua, so the host's copies stay proportional to the memory limit.
        self._max_nodes = max(_MIN_NODES, self._limits.memory_bytes // 32)

    # Driver interface -----------------------------------------------------------------------

    def start(self) -> Step:
        """Set up the runtime and run the script until its first request or its end."""
        try:
            self._started = self._now()
            self.deadline = self._started + self._limits.wall_clock_seconds
            if self.cancelled:
                return self._finish_without_lua(ScriptError(CANCELLED, CANCELLED_MESSAGE))
            try:
                self._setup()
            except ConversionError as exc:
                return self._finish_without_lua(ScriptError(VALIDATION, f"job args: {exc}"))
            except (LimitExceeded, lua54.LuaMemoryError):
                return self._finish_without_lua(LimitExceeded("memory", self._limits.describe("memory")))
            try:
                instrumented, reserved_line = instrument(self._source), None
            except InstrumentError as exc:
                instrumented, reserved_line = False, exc.line
            # Both texts are copied into Lua by lupa, outside any protected call: make room.
            assert self._sandbox is not None
            self._sandbox.memory.reserve(len(self._source) + len(instrumented or b"") + 256)
            chunk = f"={self._chunk}".encode()
            ok, *error = _values(self._control["load_main"](self._source, instrumented, chunk, reserved_line))
            if not ok:
                return self._finish("syntax", error[0])
            return self._advance(())
        except HostAbort as abort:
            raise abort.exception from None
        except LimitExceeded as exc:
            return self._finish("limit", limit=exc.limit)
        except lua54.LuaMemoryError:
            return self._finish("limit", limit="memory")
        except Exception as exc:
            if self._abort is not None:  # the host's clock failed while Lua ran
                raise self._abort from None
            return self._finish_internal(exc)

    def cancel(self) -> Finished:
        """End the run as ``cancelled`` now (the driver learnt of a cancel while it waited
        on the pending request, whose call, if any, is recorded as abandoned)."""
        request, self._pending = self._pending, None
        if isinstance(request, ProviderCall) and self._bridge is not None:
            self._bridge.abandon(request, "cancelled while the call was in flight; its outcome is unknown")
        return self._finish("limit", limit=CANCELLED)

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def resume(self, outcome: Outcome) -> Step:
        """Answer the pending request with what performing it gave, and run on."""
        request, self._pending = self._pending, None
        if request is None:
            raise RuntimeError("resume() called with no pending request")
        try:
            if self.cancelled:
                if isinstance(request, ProviderCall) and isinstance(outcome, CallResult):
                    assert self._bridge is not None
                    self._bridge.complete(request, outcome)  # recorded; the script is not resumed
                return self._finish("limit", limit=CANCELLED)
            if isinstance(request, Sleep):
                if request.ends_run:
                    return self._finish("limit", limit="wall_clock")
                return self._advance((True,))
            assert self._bridge is not None and isinstance(outcome, CallResult)
            reply = self._bridge.complete(request, outcome)
            if self._now() >= self.deadline:
                return self._finish("limit", limit="wall_clock")
            return self._advance(reply)
        except HostAbort as abort:
            raise abort.exception from None
        except LimitExceeded as exc:
            return self._finish("limit", limit=exc.limit, limit_message=exc.message)
        except lua54.LuaMemoryError:
            return self._finish("limit", limit="memory")
        except Exception as exc:
            return self._finish_internal(exc)

    # Setup ----------------------------------------------------------------------------------

    def _setup(self) -> None:
        catalog = Catalog(self._providers)

        def safe_clock() -> float | bool | None:
            if self._lua is not None and self.cancelled:  # (not while the runtime is set up)
                return False  # core.lua stops the script: the job was cancelled
            try:
                return float(self._clock())
            except BaseException as exc:
                self._on_abort(exc)
                return None

        def callbacks(sandbox: Sandbox) -> dict[str, Callable[..., tuple[Any, ...]]]:
            self._bridge = Bridge(
                catalog,
                sandbox.converter,
                limits=self._limits,
                allow_writes=self._allow_writes,
                clock=self._now,
                deadline=self.deadline,
                new_error=sandbox.control["new_error"],
                on_call=self._on_call,
                budget=self._budget,
            )
            return {
                **self._output.callbacks(),
                **_json.callbacks(sandbox.converter),
                **Regexes(sandbox.lua.table, lambda: sandbox.converter.memory, self._host_work).callbacks(),
                **Docs(catalog).callbacks(),
                "resolve": self._bridge.resolve,
            }

        sandbox = create_sandbox(
            self._limits,
            clock=safe_clock,
            deadline=self.deadline,
            callbacks=callbacks,
            on_abort=self._on_abort,
            job_id=self._job_id,
            job_args=self._args,
        )
        self._sandbox = sandbox
        self._lua = sandbox.lua
        self._control = sandbox.control
        self._converter = sandbox.converter
        self._setup_memory = sandbox.setup_memory

    def _budget(self, limit: str, max_bytes: int, indent: int = 0) -> Budget:
        """A conversion budget: ``max_bytes`` of JSON for ``limit``, the node cap, the work."""
        return Budget(limit, max_bytes, self._max_nodes, self._host_work, indent)

    def _host_work(self, units: int) -> None:
        """Work the host did for the script (conversions, regex matches): check the wall
        clock and charge ``units`` instructions; raises the limit that is exceeded."""
        if self._now() >= self.deadline:
            raise LimitExceeded("wall_clock")
        if not self._control["charge_host"](units):
            raise LimitExceeded("instructions")

    def _now(self) -> float:
        """The injected clock; its exceptions belong to the host and end the run."""
        try:
            return float(self._clock())
        except BaseException as exc:
            raise HostAbort(exc) from exc

    def _on_abort(self, exc: BaseException) -> None:
        if self._abort is None:
            self._abort = exc

    # Running --------------------------------------------------------------------------------

    def _advance(self, reply: Reply) -> Step:
        while True:
            result = _values(self._control["resume"](*reply))
            if self._abort is not None:
                raise HostAbort(self._abort)
            tag = result[0]
            if tag == b"done":
                return self._finish("done", result[1])
            if tag != b"request":
                return self._finish("error", result[1] if len(result) > 1 else None)
            step = self._request(result[1:])
            if isinstance(step, Pending | Finished):
                return step
            reply = step

    def _request(self, fields: tuple[Any, ...]) -> Step | Reply:
        if self.cancelled:
            return self._finish("limit", limit=CANCELLED)
        kind = fields[0]
        if kind == b"sleep":
            seconds = float(fields[1])
            left = self.deadline - self._now()
            if left <= 0:
                return self._finish("limit", limit="wall_clock")
            request = Sleep(left, ends_run=True) if seconds >= left else Sleep(seconds)
        elif kind == b"call":
            assert self._bridge is not None
            try:
                prepared = self._bridge.prepare(*fields[1:6])
            except LimitExceeded as exc:
                return self._finish("limit", limit=exc.limit)
            if not isinstance(prepared, ProviderCall):
                return prepared
            request = prepared
        else:
            raise RuntimeError(f"unknown bridge request {kind!r}")
        self._pending = request
        return Pending(request)

    # Ending ---------------------------------------------------------------------------------

    def _finish(self, how: str, value: Any = None, *, limit: str | None = None,
                limit_message: str | None = None) -> Finished:  # fmt: skip
        """End the run: ``how`` is "done" (``value``: the packed results), "error" (the
        chunk raised ``value``), "syntax" (``value``: the message) or "limit" (the host
        stopped the run at ``limit``; ``limit_message`` describes a provider's own cap)."""
        if self._lua is None:
            return self._finish_without_lua(ScriptError(INTERNAL, "internal error: no runtime"))
        try:
            envelope = self._envelope(how, value, limit, limit_message)
        except HostAbort:
            raise
        except Exception as exc:
            return self._finish_internal(exc)
        self._release()
        return Finished(envelope)

    def _envelope(self, how: str, value: Any, limit: str | None, limit_message: str | None = None) -> Envelope:
        lua, control = self._lua, self._control
        # Room for the work below, whatever the script left allocated.
        assert self._sandbox is not None
        lua.set_max_memory(self._sandbox.memory.limit + MARGIN + _POST_RUN_HEADROOM)
        tripped, counted, peak = _values(control["limit_state"]())
        if self._abort is not None or tripped == b"aborted":
            raise HostAbort(self._abort or RuntimeError("run aborted"))
        if limit is None and tripped is not None:
            limit = tripped.decode()
        if limit is None and how == "error" and isinstance(value, bytes) and value == _MEMORY_ERROR:
            limit = "memory"

        result: list[Any] | None = None
        failure: ScriptError | None = None
        if how == "syntax":
            message = _clip(_text(value))
            failure = ScriptError(SYNTAX, message, self._line_of(message))
        elif limit == CANCELLED:
            traceback, line = self._traceback()
            failure = ScriptError(CANCELLED, CANCELLED_MESSAGE, line, traceback)
        elif limit is not None:
            traceback, line = self._traceback()
            own_cap = limit not in LIMIT_FIELDS and limit_message
            message = limit_message if own_cap else self._limits.describe(limit)
            failure = LimitExceeded(limit, message, line, traceback)
        elif how == "error":
            failure = self._script_error(value)
        else:
            result, failure = self._convert_results(value)

        status = SUCCEEDED
        if isinstance(failure, LimitExceeded):
            status = LIMIT_EXCEEDED
        elif failure is not None and failure.type == CANCELLED:
            status = CANCELLED_STATUS
        elif failure is not None:
            status = FAILED
        return Envelope(
            status=status,
            job_id=self._job_id,
            result=result if failure is None else None,
            output=self._output.text,
            error=failure,
            execution_time_ms=self._elapsed_ms(),
            memory_usage=max(int(lua.get_memory_used()), int(peak) - self._base_memory()),
            instructions=int(counted),
            integration_calls=list(self._bridge.calls) if self._bridge else [],
            meta={"permission_bypassed": self._allow_writes},
        )

    def _convert_results(self, text: Any) -> tuple[list[Any] | None, ScriptError | None]:
        """The returned values, encoded as a JSON array by env.lua within result_bytes."""
        values = json.loads(bytes(text).decode("utf-8", "replace"))
        return values, None

    def _describe_table(self, value: Any) -> str:
        """A table raised with ``error({...})`` and no ``message`` field, shown as JSON."""
        assert self._converter is not None
        budget = Budget("result_size", _MAX_MESSAGE, 4096)
        try:
            rendered = json.dumps(self._converter.to_python(value, mode=Mode.JSON, budget=budget), ensure_ascii=False)
        except (ConversionError, LimitExceeded):  # a table JSON cannot show (cycles, functions, size)
            return "(error object is a table value)"
        return f"error object: {rendered}"

    def _script_error(self, value: Any) -> ScriptError:
        info = (*_values(self._control["error_info"](value)), None, None, None)
        kind, message, error_type, noted_line = info[:4]
        if kind in (b"string", b"number"):
            text, error_type = _text(message), RUNTIME
        elif kind == b"table":
            text = _text(message) if message is not None else self._describe_table(value)
            error_type = _text(error_type) if error_type is not None else RUNTIME
            if error_type not in _SCRIPT_ERROR_TYPES:  # a script may rewrite the field
                error_type = RUNTIME
        else:
            text, error_type = f"(error object is a {_text(kind)} value)", RUNTIME
        text = _clip(_HOST_PREFIX.sub("", text))
        traceback, first_line = self._traceback()
        line = self._line_of(text)
        if line is None:
            line = noted_line if noted_line is not None else first_line
        if error_type == PERMISSION:
            return PermissionDenied(text, line, traceback)
        return ScriptError(error_type, text, line, traceback)

    def _line_of(self, message: str) -> int | None:
        match = re.match(rf"{re.escape(self._chunk)}:(\d+):", message)
        return int(match.group(1)) if match else None

    def _traceback(self) -> tuple[str | None, int | None]:
        """The script's part of the main coroutine's traceback, and its first line."""
        try:
            raw = _text(self._control["traceback"]())
        except lua54.LuaError:
            return None, None
        prefix = f"{self._chunk}:"
        frames = [line for line in raw.splitlines()[1:] if line.strip().startswith(prefix)]
        if not frames:
            return None, None
        first = self._line_of(frames[0].strip())
        return "stack traceback:\n" + "\n".join(frames), first

    def _base_memory(self) -> int:
        """What lupa counts before ``max_memory`` applies (its own base usage)."""
        return int(self._lua.get_memory_used(total=True)) - int(self._lua.get_memory_used())

    def _elapsed_ms(self) -> float:
        return round(max(0.0, self._now() - self._started) * 1000, 3)

    def _finish_internal(self, exc: Exception) -> Finished:
        log.exception("sandbox run failed", job_id=self._job_id)
        return self._finish_without_lua(ScriptError(INTERNAL, "internal error in the sandbox"))

    def _finish_without_lua(self, error: ScriptError) -> Finished:
        status = LIMIT_EXCEEDED if isinstance(error, LimitExceeded) else FAILED
        if error.type == CANCELLED:
            status = CANCELLED_STATUS
        memory = None
        if self._lua is not None:
            try:
                memory = self._lua.get_memory_used()
            except Exception:
                memory = None
        envelope = Envelope(
            status=status,
            job_id=self._job_id,
            output=self._output.text,
            error=error,
            execution_time_ms=self._elapsed_ms(),
            memory_usage=memory,
            integration_calls=list(self._bridge.calls) if self._bridge else [],
            meta={"permission_bypassed": self._allow_writes},
        )
        self._release()
        return Finished(envelope)

    def _release(self) -> None:
        self._lua = None
        self._sandbox = None
        self._control = {}
        self._converter = None
        self._pending = None


def _prepare_source(source: str | bytes) -> bytes:
    """Script bytes for `load`: no UTF-8 BOM, a `#!` first line turned into a comment."""
    data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else bytes(source)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith(b"#"):
        data = b"--" + data
    return data


def _clip(message: str) -> str:
    if len(message) <= _MAX_MESSAGE:
        return message
    return message[:_MAX_MESSAGE] + " ...(truncated)"


def _values(result: Any) -> tuple[Any, ...]:
    return result if isinstance(result, tuple) else (result,)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    lua_type = lua54.lua_type(value)
    if lua_type is not None:
        return f"<{lua_type}>"  # never str() a Lua value: it would run its __tostring
    return str(value)
