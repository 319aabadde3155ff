"""The bridge: where a Lua call becomes a provider call.

Every call from Lua to the host that may wait (``app.integrations.*`` and ``sleep``) is one
``coroutine.yield`` of a request (core.lua's ``request``). The driver receives it and, for a
provider call, runs it through the steps below, each in one place:

1. resolve the name (done when the script indexes ``app.integrations``: :meth:`Bridge.resolve`,
   with suggestions for unknown names);
2. :meth:`Bridge.prepare`: check the write permission, count the call against the call
   limit, convert the Lua table to Python guided by the function's ``args_schema`` (within a
   budget of ``memory_bytes``: arguments past it fail with the memory limit), work out the
   time left on the wall clock and count the call against the spend caps (``writes`` for a
   write function, ``predictions`` for one that ``creates``; a call past a cap is recorded
   and ends the run before anything is sent);
3. the driver performs the :class:`ProviderCall` (``_driver.perform``, or an async driver);
4. :meth:`Bridge.complete`: record the ``integration_calls`` entry (and pass it to
   ``on_call``), convert the result back to Lua (a result that does not fit in the memory
   left fails with the memory limit) or turn the provider's exception into a catchable Lua
   error value (``type`` from :func:`~sandbox._errors.classify`, the provider's own
   ``error_type`` as ``kind``), and answer the script. A provider error of type
   ``limit_exceeded`` naming its ``limit`` (a cap the provider enforces) ends the run instead.

Requests and outcomes are plain values so that the step that performs a request is separate
from the steps that resume the script.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from ._catalog import DEFAULT_ACCOUNT, Catalog, close_matches, suggestion_text
from ._convert import Budget, Converter, Mode
from ._errors import (
    ARGUMENT_ERROR,
    PERMISSION_DENIED,
    UNKNOWN_ACCOUNT,
    UNKNOWN_FUNCTION,
    ConversionError,
    LimitExceeded,
    classify,
)
from ._host import HostAbort, ScriptFacingError
from ._limits import LIMIT_FIELDS, Limits
from ._lupa import lua54
from ._provider import CallOutcome, FunctionSpec, Provider

log = structlog.get_logger(__name__)

# Requests (what the script waits for) ---------------------------------------------------------


@dataclass(frozen=True)
class ProviderCall:
    """Call ``provider.call(function, account, args, timeout=timeout)``."""

    provider: Provider
    function: str  # canonical name
    account: str
    args: dict[str, Any]
    timeout: float
    spec: FunctionSpec = field(repr=False)
    path: str = ""  # as written in the script: integrations.replicate[.account].name
    operation: str = ""  # provider.canonical_name


@dataclass(frozen=True)
class Sleep:
    """Sleep ``seconds``; with ``ends_run`` the sleep reaches the deadline and the run ends
    (``wall_clock``) once it is over."""

    seconds: float
    ends_run: bool = False


Request = ProviderCall | Sleep

# Outcomes (what performing a request gave) -----------------------------------------------------


@dataclass(frozen=True)
class CallResult:
    """The provider returned ``outcome`` or raised ``error``, between two clock readings."""

    started: float
    finished: float
    outcome: CallOutcome | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class Slept:
    pass


Outcome = CallResult | Slept

# A reply resumes the script: (True, value) or (False, b"error", <Lua error value>).
Reply = tuple[Any, ...]


class Bridge:
    def __init__(
        self,
        catalog: Catalog,
        converter: Converter,
        *,
        limits: Limits,
        allow_writes: bool,
        clock: Callable[[], float],
        deadline: float,
        new_error: Callable[..., Any],
        on_call: Callable[[dict[str, Any]], None] | None,
        budget: Callable[..., Budget],
    ) -> None:
        self._catalog = catalog
        self._converter = converter
        self._limits = limits
        self._allow_writes = allow_writes
        self._clock = clock
        self._deadline = deadline
        self._new_error = new_error
        self._on_call = on_call
        self._budget = budget
        self.calls: list[dict[str, Any]] = []
        self.count = 0
        self.spent = {"predictions": 0, "writes": 0}  # calls counted against each spend cap

    # 1. resolution (a Lua callback, see env.lua) ------------------------------------------------

    def resolve(self, provider: bytes | None, account: bytes | None, key: Any) -> tuple[Any, ...]:
        """What ``key`` names under ``app.integrations[.provider[.account]]``:
        ``("provider", name)``, ``("account", name)`` or
        ``("function", account, canonical_name, path)``."""
        name = _text(key)
        entries = self._catalog.entries
        if provider is None:
            if name in entries:
                return (b"provider", name)
            raise ScriptFacingError(
                f"unknown integration app.integrations.{name}"
                + suggestion_text(close_matches(name, entries) or list(entries)),
                UNKNOWN_FUNCTION,
            )
        entry = entries[provider.decode()]
        scope = entry.name if account is None else f"{entry.name}.{account.decode()}"
        spec = entry.functions.get(name)
        if spec is not None:
            chosen = DEFAULT_ACCOUNT if account is None else account.decode()
            return (b"function", chosen, spec.name, f"integrations.{scope}.{name}")
        if account is None and name in entry.accounts:
            return (b"account", name)
        functions = self._catalog.function_suggestions(entry, name)
        accounts = close_matches(name, entry.accounts) if account is None else []
        if accounts and not functions:
            raise ScriptFacingError(
                f"unknown account app.integrations.{scope}.{name}" + suggestion_text(accounts),
                UNKNOWN_ACCOUNT,
            )
        hint = suggestion_text(functions + accounts)
        if hint:
            what = "function"
        elif account is None:
            what = "function or account"
            hint = f"; accounts: {', '.join(entry.accounts)}; functions: see docs.read('{entry.name}')"
        else:
            what = "function"
            hint = f"; see docs.read('{entry.name}')"
        raise ScriptFacingError(f"unknown {what} app.integrations.{scope}.{name}{hint}", UNKNOWN_FUNCTION)

    # 2. before the call ---------------------------------------------------------------------------

    def prepare(self, provider: bytes, account: bytes, function: bytes, path: bytes, args: Any) -> ProviderCall | Reply:
        """The call to perform, or the reply that refuses it. Raises LimitExceeded when the
        call limit or the wall clock is exhausted, or the arguments are too large."""
        entry = self._catalog.entries[provider.decode()]
        spec = entry.functions[function.decode()]
        account_name, path_text = account.decode(), path.decode()
        operation = f"{entry.name}.{spec.name}"
        if spec.kind == "write" and not self._allow_writes:
            called = path_text.rsplit(".", 1)[-1]
            message = f"{entry.name}.{called} is a write operation; writes need --force (allow_writes)"
            self._record(path_text, operation, account_name, spec.kind, None, 0.0, message)
            return self._refuse(PERMISSION_DENIED, message, operation)
        self.count += 1
        if self.count > self._limits.calls:
            raise LimitExceeded("calls")
        try:
            converted = self._converter.to_python(
                args,
                mode=Mode.ARGS,
                schema=spec.args_schema,
                budget=self._budget("memory", self._limits.memory_bytes),
            )
        except ConversionError as exc:
            message = f"{operation}: invalid arguments: {exc}"
            self._record(path_text, operation, account_name, spec.kind, None, 0.0, message)
            return self._refuse(ARGUMENT_ERROR, message, operation)
        if converted == []:
            converted = {}
        if not isinstance(converted, dict):
            message = f"{operation}: expects a table of named arguments, got a list"
            self._record(path_text, operation, account_name, spec.kind, None, 0.0, message)
            return self._refuse(ARGUMENT_ERROR, message, operation)
        left = self._deadline - self._clock()
        if left <= 0:
            raise LimitExceeded("wall_clock")
        self._spend(spec, path_text, operation, account_name)
        return ProviderCall(
            provider=entry.provider,
            function=spec.name,
            account=account_name,
            args=converted,
            timeout=left,
            spec=spec,
            path=path_text,
            operation=operation,
        )

    # 4. after the call ----------------------------------------------------------------------------

    def complete(self, call: ProviderCall, result: CallResult) -> Reply:
        """Record the call and build the reply that resumes the script. Raises LimitExceeded
        (memory) when the result does not fit in the memory left."""
        duration_ms = round(max(0.0, result.finished - result.started) * 1000, 3)
        if result.error is not None:
            kind, message, status, title, detail, retry_after = _describe(result.error, call.operation)
            self._record_call(call, status, duration_ms, message, _details(result.error))
            cap = getattr(result.error, "limit", None)
            if kind == "limit_exceeded" and isinstance(cap, str) and cap:
                log.info("call.cap_exceeded", limit=cap, operation=call.operation, account=call.account)
                raise LimitExceeded(cap, message)
            return (
                False,
                b"error",
                self._new_error(
                    _b(classify(kind)),
                    _b(message),
                    _b(kind),
                    _b(call.operation),
                    status,
                    _b(title),
                    _b(detail),
                    retry_after,
                ),
            )
        outcome = result.outcome
        if not isinstance(outcome, CallOutcome):
            # Providers that cannot import the sandbox return a look-alike (api_client does).
            if hasattr(outcome, "value") and hasattr(outcome, "http_status"):
                outcome = CallOutcome(
                    value=outcome.value, http_status=outcome.http_status, extra=dict(getattr(outcome, "extra", {}))
                )
            else:
                outcome = CallOutcome(value=outcome)
        try:
            value = self._converter.to_lua(outcome.value)
        except LimitExceeded:
            message = f"{call.operation}: the response does not fit in the memory limit"
            self._record_call(call, outcome.http_status, duration_ms, message, _details(outcome.extra))
            raise
        except ConversionError as exc:
            message = f"{call.operation}: unusable response: {exc}"
            self._record_call(call, outcome.http_status, duration_ms, message, _details(outcome.extra))
            return self._refuse("api_error", message, call.operation)  # type "api"
        self._record_call(call, outcome.http_status, duration_ms, None, _details(outcome.extra))
        return (True, value)

    def abandon(self, call: ProviderCall, message: str) -> None:
        """Record a call whose outcome will never be known to the script (the run was
        cancelled while it was in flight)."""
        self._record_call(call, None, 0.0, f"{call.operation}: {message}", {})

    # helpers --------------------------------------------------------------------------------------

    def _spend(self, spec: FunctionSpec, path: str, operation: str, account: str) -> None:
        """Count a call about to be sent against the spend caps; past one, record the call
        as refused and end the run (``LimitExceeded``)."""
        caps = ["predictions"] if getattr(spec, "creates", False) else []
        if spec.kind == "write":
            caps.append("writes")
        for cap in caps:
            self.spent[cap] += 1
        for cap in caps:
            allowed = getattr(self._limits, LIMIT_FIELDS[cap])
            if self.spent[cap] > allowed:
                message = f"{operation}: {self._limits.describe(cap)}; nothing was sent"
                self._record(path, operation, account, spec.kind, None, 0.0, message, details={"limit": cap})
                log.info("call.cap_exceeded", limit=cap, allowed=allowed, operation=operation, account=account)
                raise LimitExceeded(cap)

    def _refuse(self, kind: str, message: str, operation: str) -> Reply:
        return (False, b"error", self._new_error(_b(classify(kind)), _b(message), _b(kind), _b(operation)))

    def _record_call(
        self, call: ProviderCall, http_status: int | None, duration_ms: float, error: str | None,
        details: Mapping[str, Any],
    ) -> None:  # fmt: skip
        self._record(call.path, call.operation, call.account, call.spec.kind, http_status, duration_ms, error,
                     details=details)  # fmt: skip

    def _record(
        self,
        path: str,
        operation: str,
        account: str,
        kind: str,
        http_status: int | None,
        duration_ms: float,
        error: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "path": path,
            "operation": operation,
            "account": account,
            "kind": kind,
            "status": "ok" if error is None else "error",
            "http_status": http_status,
            "duration_ms": duration_ms,
            "error": error,
        }
        entry.update(details or {})
        self.calls.append(entry)
        if self._on_call is not None:
            try:
                self._on_call(dict(entry))
            except BaseException as exc:
                raise HostAbort(exc) from exc


def _details(source: Any) -> dict[str, Any]:
    """What a provider says about how a call went beyond its result: the retries it made,
    how many HTTP requests it took, how long it waited for rate limits, how many 429s it
    got and the cap that refused it, from ``CallOutcome.extra`` or an exception's
    attributes (JSON-safe copies, for ``integration_calls``)."""
    get = source.get if isinstance(source, Mapping) else lambda name, default=None: getattr(source, name, default)
    details: dict[str, Any] = {}
    retries = get("retries", None)
    if isinstance(retries, list | tuple) and retries:
        details["retries"] = [
            {str(k): v for k, v in dict(r).items() if isinstance(v, str | int | float | type(None))}
            for r in retries
            if isinstance(r, Mapping)
        ]
    requests = get("http_requests", None)
    if isinstance(requests, int) and not isinstance(requests, bool) and requests > 1:
        details["http_requests"] = requests
    waited = get("rate_limit_wait_ms", None)
    if isinstance(waited, int | float) and not isinstance(waited, bool) and waited > 0:
        details["rate_limit_wait_ms"] = round(float(waited), 3)
    throttled = get("throttled", None)
    if isinstance(throttled, int) and not isinstance(throttled, bool) and throttled > 0:
        details["throttled"] = throttled
    limit = get("limit", None) if get("error_type", None) == "limit_exceeded" else None
    if isinstance(limit, str) and limit:
        details["limit"] = limit
    return details


def _describe(exc: Exception, operation: str) -> tuple[str, str, int | None, str | None, str | None, float | None]:
    """kind (the provider's error_type), message, status, title, detail, retry_after of a
    provider's exception."""
    error_type = getattr(exc, "error_type", None)
    if not isinstance(error_type, str) or not error_type:
        log.warning("provider raised an untyped exception", operation=operation, exc_info=exc)
        return "internal_error", f"{operation}: internal error", None, None, None, None
    message = str(exc) or error_type
    provider = operation.split(".", 1)[0]
    if not message.startswith(f"{provider}."):
        message = f"{operation}: {message}"
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or isinstance(status, bool):
        status = None
    title = getattr(exc, "title", None)
    detail = getattr(exc, "detail", None)
    retry_after = getattr(exc, "retry_after", None)
    if not isinstance(retry_after, int | float) or isinstance(retry_after, bool):
        retry_after = None
    return (
        error_type,
        message,
        status,
        title if isinstance(title, str) else None,
        detail if isinstance(detail, str) else None,
        float(retry_after) if retry_after is not None else None,
    )


def _text(key: Any) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    lua_type = lua54.lua_type(key)
    if lua_type is not None:
        return f"<{lua_type}>"  # never str() a Lua value: it would run its __tostring
    return str(key)


def _b(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogatepass")
