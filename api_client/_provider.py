"""ReplicateProvider: the sandbox's ``Provider`` protocol, implemented for Replicate.

The protocol lives in ``sandbox/_provider.py``; api_client never imports the sandbox,
so it satisfies the protocol structurally and returns look-alike value objects.

Its functions are the 37 catalog operations and the helpers of ``_helpers`` (``run``,
``wait``, ``paginate``, ``verify_webhook``); a function ``creates`` when it creates a
prediction or training. Every ``CallOutcome`` carries in ``extra``: ``http_requests`` (how
many HTTP requests the call sent), ``retries`` (the retried attempts, ``RetryRecord``
dicts), ``rate_limit_wait_ms`` (time waited for the limiter) and ``throttled`` (429
answers); a raised error carries the same as attributes.
"""

from __future__ import annotations

import difflib
import functools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ._accounts import DEFAULT_ACCOUNT, Account
from ._catalog import Catalog, Operation, load_catalog
from ._client import ReplicateClient, Response
from ._docs import function_doc, helper_doc, lua_example, overview_doc
from ._errors import ArgumentError
from ._files import FileSource
from ._helpers import HELPERS, Context, Helper, Session, validate_helper_args
from ._limiter import Limiter
from ._names import APP_NAME
from ._retry import RetryPolicy

__all__ = ["CallOutcome", "FunctionSpec", "ReplicateProvider"]


@dataclass(frozen=True)
class FunctionSpec:
    """One function, shaped like ``sandbox.FunctionSpec`` (names: long, short, slug)."""

    names: tuple[str, ...]
    title: str
    kind: Literal["read", "write"]
    args_schema: Mapping[str, Any]
    doc: str
    example: str = ""
    creates: bool = False

    @property
    def name(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class CallOutcome:
    """A successful call, shaped like ``sandbox.CallOutcome``."""

    value: Any
    http_status: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ReplicateProvider:
    """``app.integrations.replicate``: every catalog operation, for every account.

    ``transport`` is handed to each account's client (a ``SimulatorTransport`` for
    ``--simulate``); ``attachments`` and ``allow_read`` say what ``create_file`` may
    upload besides the bytes it is given. ``retry`` is every client's retry policy
    (default: ``RetryPolicy`` sleeping with ``sleep`` and measuring with ``clock``);
    ``sleep`` and ``clock`` (monotonic seconds) are also what ``wait`` and ``run`` poll
    with. ``http`` is an HTTP client to share (see ``new_http_client``; a worker process
    keeps one for all its jobs), else each account's client makes its own. Clients are created on first use.
    """

    name = APP_NAME

    def __init__(
        self,
        accounts: Mapping[str, Account],
        *,
        transport: httpx.BaseTransport | None = None,
        attachments: Mapping[str, bytes] | None = None,
        allow_read: Sequence[str | os.PathLike[str]] = (),
        limiter: Limiter | None = None,
        catalog: Catalog | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.Client | None = None,
    ) -> None:
        self._accounts = dict(accounts)
        self._http = http
        self._accounts.setdefault(DEFAULT_ACCOUNT, Account(DEFAULT_ACCOUNT))
        self._transport = transport
        self._files = FileSource(dict(attachments or {}), tuple(allow_read))
        self._limiter = limiter
        self._catalog = catalog or load_catalog()
        self._sleep = sleep
        self._clock = clock
        self._retry = retry or RetryPolicy(sleep=sleep, clock=clock)
        self._helpers: dict[str, Helper] = {name: h for h in HELPERS for name in h.names}
        self._clients: dict[str, ReplicateClient] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ReplicateProvider(accounts={list(self.accounts())!r})"

    def __enter__(self) -> ReplicateProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def functions(self) -> Sequence[FunctionSpec]:
        return function_specs(self._catalog)

    def accounts(self) -> Sequence[str]:
        others = sorted(name for name in self._accounts if name != DEFAULT_ACCOUNT)
        return (DEFAULT_ACCOUNT, *others)

    def overview_doc(self) -> str:
        return overview_doc(self._catalog, self.accounts(), HELPERS)

    def call(
        self,
        function: str,
        account: str,
        args: Mapping[str, Any],
        *,
        timeout: float | None = None,
    ) -> CallOutcome:
        """Perform ``function`` (any of its names) for ``account``; ``timeout`` is the job's
        remaining wall clock, which no request, retry or wait goes beyond."""
        helper = self._helpers.get(function)
        if helper is not None:
            return self._call_helper(helper, account, args, timeout)
        operation = self._catalog.resolve(function)
        response = self._client(account).call(operation, args, timeout=timeout)
        return CallOutcome(response.value, response.http_status, _extra(response))

    def _call_helper(self, helper: Helper, account: str, args: Mapping[str, Any], timeout: float | None) -> CallOutcome:
        checked = validate_helper_args(helper, args)

        def session(deadline: float | None) -> Session:
            return Session(self._client(account), self._clock, deadline)

        context = Context(self._catalog, session, self._clock, self._sleep, timeout)
        value, used = helper.run(context, checked)
        if used is None:
            return CallOutcome(value, None, {"http_requests": 0, "retries": []})
        return CallOutcome(value, used.http_status, _extra(used))

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _client(self, account: str) -> ReplicateClient:
        with self._lock:
            client = self._clients.get(account)
            if client is None:
                client = ReplicateClient(
                    self._account(account),
                    transport=self._transport,
                    limiter=self._limiter,
                    files=self._files,
                    catalog=self._catalog,
                    retry=self._retry,
                    http=self._http,
                )
                self._clients[account] = client
            return client

    def _account(self, name: str) -> Account:
        account = self._accounts.get(name)
        if account is not None:
            return account
        names = list(self.accounts())
        message = f"unknown account {name!r} for {APP_NAME}"
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        raise ArgumentError(message + f" (accounts: {', '.join(names)})", argument=name)


def _extra(used: Response | Session) -> dict[str, Any]:
    """How a call went beyond its value (see the module docstring)."""
    return {
        "http_requests": used.http_requests,
        "retries": list(used.retries),
        "rate_limit_wait_ms": round(used.rate_limit_wait_ms, 3),
        "throttled": used.throttled,
    }


@functools.lru_cache(maxsize=8)
def function_specs(catalog: Catalog) -> tuple[FunctionSpec, ...]:
    """The Lua-facing functions of ``catalog``, docs included: built once per catalog
    (per process), not per job."""
    return tuple(_spec(op) for op in catalog) + tuple(_helper_spec(h) for h in HELPERS)


def _spec(operation: Operation) -> FunctionSpec:
    return FunctionSpec(
        names=operation.names,
        title=operation.summary,
        kind=operation.kind,
        args_schema=operation.args_schema,
        doc=function_doc(operation),
        example=lua_example(operation),
        creates=operation.creates,
    )


def _helper_spec(helper: Helper) -> FunctionSpec:
    return FunctionSpec(
        names=helper.names,
        title=helper.title,
        kind=helper.kind,
        args_schema=helper.args_schema,
        doc=helper_doc(helper),
        example=helper.example,
        creates=helper.creates,
    )
