"""Builds the providers a job's sandbox may call: today, Replicate.

Accounts come from the environment (``REPLICATE_API_TOKEN`` for ``default``,
``REPLICATE_API_TOKEN_<NAME>`` for others). A job submitted with ``account = "work"``
runs with ``work`` as its default account, so unqualified calls use it.

Simulated jobs never see a real token: each account gets a simulator token, and requests
go to a ``luaq simulator`` server when ``LUAQ_SIMULATOR_URL`` is set (shared by every
worker) or else to a simulator inside this process (kept for the life of the process, so
a prediction created by one job can be read by the next).

Every job of a process shares one HTTP client (:func:`shared_http_client`): its connection
pool keeps connections to Replicate open from one job to the next, and building a client
per job (TLS context included) costs more than a trivial job itself.
"""

from __future__ import annotations

import difflib
import functools
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


@functools.lru_cache(maxsize=8)
def shared_http_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One HTTP client per process (and transport); no cap on connections, as each
    waiting job may hold one (``Prefer: wait``)."""
    return new_http_client(transport, max_connections=None)


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
        http=shared_http_client(transport),
        attachments=dict(attachments or {}),
        allow_read=tuple(allow_read),
        limiter=limiter,
    )
    return [provider]
