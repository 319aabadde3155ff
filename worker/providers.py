"""Builds the providers a job's sandbox may call: today, Replicate.

Accounts come from the environment (``REPLICATE_API_TOKEN`` for ``default``,
``REPLICATE_API_TOKEN_<NAME>`` for others). A job submitted with ``account = "work"``
runs with ``work`` as its default account, so unqualified calls use it.

Simulated jobs never see a real token: each account gets a simulator token, and requests
go to a ``luaq simulator`` server when ``LUAQ_SIMULATOR_URL`` is set (shared by every
worker) or else to a simulator inside this process (kept for the life of the process, so
a prediction created by one job can be read by the next).

Each job thread of a process has an HTTP client of its own (:func:`thread_http_client`),
kept from one job to the next, so connections to Replicate stay open between jobs; every
client shares the process's one TLS context (building one costs more than a trivial job).
Not one client for the whole process: httpcore's pool scans all of its connections, under
one lock, whenever a request starts or ends, and a process with hundreds of jobs waiting
on ``Prefer: wait`` holds hundreds of connections, so that scan grew to most of the
process's CPU (``ops/bench/throughput.py``). A thread runs one job at a time and a job
makes one call at a time, so each pool holds a connection or two.
"""

from __future__ import annotations

import difflib
import functools
import ssl
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from api_client import Account, Limiter, ReplicateProvider, accounts_from_env, new_http_client, simulated_accounts
from api_client.simulator import Simulator, SimulatorTransport

from .settings import Settings


class UnknownAccount(LookupError):
    """The job asked for an account no token is configured for."""

    error_type = "validation"

    def __init__(self, name: str, known: Sequence[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}?" if close else "."
        super().__init__(
            f"unknown account {name!r}{hint} Configured accounts: {', '.join(sorted(known))} "
            f"(set REPLICATE_API_TOKEN_{name.upper()} to add it)"
        )
        self.name = name


@functools.lru_cache(maxsize=4)
def in_process_simulator(prediction_seconds: float) -> Simulator:
    return Simulator(prediction_seconds=prediction_seconds)


THREAD_CLIENT_CONNECTIONS = 4  # a job's calls are sequential; more only after a cancel cut one off
_threads = threading.local()


_tls_lock = threading.Lock()


@functools.cache
def _built_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _tls_context() -> ssl.SSLContext:
    # Under the lock: functools.cache does not stop the hundreds of job threads that start
    # at once from each building a context (25 per process were measured, ~15 ms each).
    # Taken once per thread, when its HTTP client is made.
    with _tls_lock:
        return _built_tls_context()


def thread_http_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The calling thread's HTTP client (one per transport), made on first use."""
    clients: dict[httpx.BaseTransport | None, httpx.Client] = _threads.__dict__.setdefault("clients", {})
    client = clients.get(transport)
    if client is None:
        client = new_http_client(transport, max_connections=THREAD_CLIENT_CONNECTIONS, verify=_tls_context())
        clients[transport] = client
    return client


@functools.lru_cache(maxsize=4)
def _simulator_transport(prediction_seconds: float) -> SimulatorTransport:
    return SimulatorTransport(in_process_simulator(prediction_seconds))


def configured_accounts(settings: Settings) -> dict[str, Account]:
    return accounts_from_env(settings.environ)


def build_providers(
    settings: Settings,
    *,
    account: str = "default",
    simulate: bool = False,
    attachments: Mapping[str, bytes] | None = None,
    allow_read: Sequence[Path] = (),
    limiter: Limiter | None = None,
) -> list[ReplicateProvider]:
    """The providers for one job; raises UnknownAccount for an unconfigured account."""
    real = configured_accounts(settings)
    simulate = simulate or settings.simulate
    if simulate:
        base_url = (settings.simulator_url or "").rstrip("/") or "https://api.replicate.com/v1"
        if settings.simulator_url and not base_url.endswith("/v1"):
            base_url += "/v1"
        accounts = simulated_accounts(sorted(real), base_url=base_url)
    else:
        accounts = dict(real)
    if account not in accounts:
        raise UnknownAccount(account, list(accounts))
    if account != "default":
        # The same Account (name included): rate limits belong to the real account.
        accounts["default"] = accounts[account]
    transport = None
    if simulate and not settings.simulator_url:
        transport = _simulator_transport(settings.simulator_prediction_seconds)
    provider = ReplicateProvider(
        accounts,
        http=thread_http_client(transport),
        attachments=dict(attachments or {}),
        allow_read=tuple(allow_read),
        limiter=limiter,
    )
    return [provider]
