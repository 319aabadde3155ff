"""The provider interface: the sandbox's only door to the outside world.

A provider is one integration (``app.integrations.<provider.name>``). The sandbox asks it
which functions it offers, which accounts it can act as, and to perform a call. It never
learns how a call is carried out: ``api_client.ReplicateProvider`` implements this for the
Replicate HTTP API, ``sandbox.testing.StubProvider`` for tests. A second integration is a
second implementation, with no change to the sandbox.

Errors a provider raises from :meth:`Provider.call` are turned into catchable Lua error
values. The sandbox reads these attributes when present (all optional):

- ``error_type`` (str): ``"api_error"``, ``"argument_error"``, ``"transport_error"``,
  ``"configuration_error"``, ... The script's error value keeps it as ``kind``; its ``type``
  (and the envelope's ``error.type`` when uncaught) is ``validation`` for ``argument_error``
  and ``api`` for the others (``sandbox._errors.classify``)
- ``status`` (int | None): the HTTP status of an API error
- ``title`` (str | None), ``detail`` (str | None): the problem+json fields
- ``retry_after`` (float | None)

``str(exc)`` is the message the script sees. Exceptions without ``error_type`` are treated
as internal errors (``internal``) and their text is not shown to the script.

An exception whose ``error_type`` is ``"limit_exceeded"`` and that names its cap in
``limit`` (str) is not handed to the script: it ends the run with status
``limit_exceeded``, ``error.limit`` = ``limit`` and ``str(exc)`` as the message (a spend
cap the provider enforces, such as an account's daily prediction cap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Kind = Literal["read", "write"]


@dataclass(frozen=True)
class FunctionSpec:
    """One callable function of a provider.

    ``names`` holds every name the function answers to from Lua; the first is canonical
    (for Replicate: the long name derived from the summary, then the short documented
    name, then the slug). ``args_schema`` is the JSON schema of the single table argument
    (an object schema); the sandbox uses it to convert Lua tables (an empty table becomes
    ``{}`` where the schema wants an object and ``[]`` where it wants an array).
    ``doc`` is the full documentation page, shown by ``docs.read``. ``creates`` marks a
    function that creates billed work (for Replicate: a prediction or training); each call
    counts against ``limits.predictions``, as each call of a ``write`` function counts
    against ``limits.writes``.
    """

    names: tuple[str, ...]
    title: str
    kind: Kind
    args_schema: Mapping[str, Any]
    doc: str
    example: str = ""
    creates: bool = False

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class CallOutcome:
    """What a successful call returned: a JSON-like value (dicts, lists, str, bytes for
    binary bodies, numbers, bools, None) and the HTTP status when there was one."""

    value: Any
    http_status: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Provider(Protocol):
    """An integration reachable from Lua as ``app.integrations.<name>``."""

    @property
    def name(self) -> str: ...

    def functions(self) -> Sequence[FunctionSpec]:
        """Every function, each with all its names."""
        ...

    def accounts(self) -> Sequence[str]:
        """Account names callable as ``app.integrations.<name>.<account>.<fn>``;
        ``"default"`` is the one used by ``app.integrations.<name>.<fn>``."""
        ...

    def overview_doc(self) -> str:
        """The provider's namespace page (``docs.read("<name>")``)."""
        ...

    def call(
        self,
        function: str,
        account: str,
        args: Mapping[str, Any],
        *,
        timeout: float | None = None,
    ) -> CallOutcome:
        """Perform ``function`` (its canonical name) for ``account`` with ``args``
        (already converted from Lua to Python). ``timeout`` is the time left on the
        job's wall clock, in seconds; the call must not run longer."""
        ...
