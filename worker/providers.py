"""Builds the providers a job's sandbox may call: today, Replicate.

Accounts come from the environment (``REPLICATE_API_TOKEN`` for ``default``,
``REPLICATE_API_TOKEN_<NAME>`` for others). A job submitted with ``account = "work"``
runs with ``work`` as its default account, so unqualified calls use it.

Simulated jobs never see a real token: each account gets a simulator token, and requests
go to a ``luaq simulator`` server when ``LUAQ_SIMULATOR_URL`` is set (shared by every
worker) or else to a simulator inside this process (kept for the life of the process, so
a prediction created by one job can be read by the next).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

from api_client import Account, Limiter, ReplicateProvider, accounts_from_env, simulated_accounts
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
        transport = SimulatorTransport(in_process_simulator(settings.simulator_prediction_seconds))
    provider = ReplicateProvider(
        accounts,
        transport=transport,
        attachments=dict(attachments or {}),
        allow_read=tuple(allow_read),
        limiter=limiter,
    )
    return [provider]
