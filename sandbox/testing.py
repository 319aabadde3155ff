"""Test doubles for the sandbox, shipped with it: a configurable :class:`StubProvider`, the
:class:`StubError` it can raise, and a :class:`FakeClock` to inject as ``clock``/``sleep``.

Example::

    provider = StubProvider(
        StubFunction(("get_authenticated_account", "get_account"), result={"username": "a"}),
        StubFunction("create_prediction", kind="write", result=lambda args, account: args),
    )
    envelope = run_script("return app.integrations.replicate.get_account()", providers=[provider])
    assert provider.calls[0].function == "get_authenticated_account"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._provider import CallOutcome, FunctionSpec, Kind

__all__ = ["FakeClock", "RecordedCall", "StubError", "StubFunction", "StubProvider", "advancing"]

# What a stub function returns: a value, a CallOutcome, an exception to raise, or a callable
# (args, account) -> any of those.
Result = Any


class StubError(Exception):
    """An error a provider raises, with the attributes the sandbox reads."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str = "api_error",
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
        limit: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status
        self.title = title
        self.detail = detail
        self.retry_after = retry_after
        self.limit = limit  # with error_type "limit_exceeded": the provider's cap, ending the run


@dataclass
class StubFunction:
    """One function of a :class:`StubProvider` (``names``: the canonical name first)."""

    names: str | Sequence[str]
    kind: Kind = "read"
    result: Result = None
    args_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    title: str = ""
    doc: str = ""
    http_status: int | None = 200
    creates: bool = False

    def spec(self) -> FunctionSpec:
        names = (self.names,) if isinstance(self.names, str) else tuple(self.names)
        return FunctionSpec(
            names=names,
            title=self.title or names[0].replace("_", " ").capitalize(),
            kind=self.kind,
            args_schema=self.args_schema,
            doc=self.doc,
            creates=self.creates,
        )


@dataclass(frozen=True)
class RecordedCall:
    function: str
    account: str
    args: Mapping[str, Any]
    timeout: float | None


class StubProvider:
    """A :class:`~sandbox.Provider` whose functions return configured results and which
    records every call (``calls``)."""

    def __init__(
        self,
        *functions: StubFunction,
        name: str = "replicate",
        accounts: Sequence[str] = ("default",),
        overview_doc: str | None = None,
    ) -> None:
        self._name = name
        self._functions = list(functions)
        self._specs = [f.spec() for f in self._functions]
        self._by_name = {spec.name: f for f, spec in zip(self._functions, self._specs, strict=True)}
        self._accounts = tuple(accounts)
        self._overview = overview_doc
        self.calls: list[RecordedCall] = []

    @property
    def name(self) -> str:
        return self._name

    def functions(self) -> Sequence[FunctionSpec]:
        return list(self._specs)

    def accounts(self) -> Sequence[str]:
        return self._accounts

    def overview_doc(self) -> str:
        if self._overview is not None:
            return self._overview
        lines = [f"{self._name} (stub)", "Functions:"]
        lines += [f"  {spec.name:34} {spec.title}" for spec in self._specs]
        return "\n".join(lines)

    def set_result(self, name: str, result: Result) -> None:
        """Change what function ``name`` (its canonical name) returns from now on."""
        self._by_name[name].result = result

    def call(
        self,
        function: str,
        account: str,
        args: Mapping[str, Any],
        *,
        timeout: float | None = None,
    ) -> CallOutcome:
        self.calls.append(RecordedCall(function, account, args, timeout))
        stub = self._by_name[function]
        result = stub.result
        if callable(result) and not isinstance(result, BaseException):
            result = result(args, account)
        if isinstance(result, BaseException):
            raise result
        if isinstance(result, CallOutcome):
            return result
        return CallOutcome(value=result, http_status=stub.http_status)


class FakeClock:
    """A clock that only moves when told to: pass ``clock=fake`` and ``sleep=fake.sleep``.

    ``tick`` is added on every reading, so time also passes while a script runs."""

    def __init__(self, start: float = 1000.0, tick: float = 0.0) -> None:
        self.now = start
        self.tick = tick
        self.slept: list[float] = []

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def advancing(clock: FakeClock, seconds: float, result: Result) -> Callable[..., Result]:
    """A stub result that takes ``seconds`` of ``clock`` time, then gives ``result``."""

    def call(args: Mapping[str, Any], account: str) -> Result:
        clock.advance(seconds)
        return result

    return call
