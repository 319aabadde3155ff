"""Replicate accounts: a name, a token and a base URL, read from the environment."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_BASE_URL", "Account", "accounts_from_env", "simulated_accounts"]

DEFAULT_BASE_URL = "https://api.replicate.com/v1"
DEFAULT_ACCOUNT = "default"
TOKEN_VAR = "REPLICATE_API_TOKEN"
BASE_URL_VAR = "REPLICATE_BASE_URL"
SIMULATOR_TOKEN_PREFIX = "r8_sim_"

_NAMED_TOKEN = re.compile(rf"^{TOKEN_VAR}_([A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class Account:
    """One set of Replicate credentials. The token never appears in the repr."""

    name: str
    token: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL

    @property
    def has_token(self) -> bool:
        return bool(self.token)

    def token_variable(self) -> str:
        """The environment variable that holds this account's token."""
        if self.name == DEFAULT_ACCOUNT:
            return TOKEN_VAR
        return f"{TOKEN_VAR}_{self.name.upper()}"


def accounts_from_env(environ: Mapping[str, str]) -> dict[str, Account]:
    """Accounts configured by ``REPLICATE_API_TOKEN`` (``default``, always present, its
    token possibly None) and ``REPLICATE_API_TOKEN_<NAME>`` (account ``<name>``).
    ``REPLICATE_BASE_URL`` sets the base URL of all of them (default
    ``https://api.replicate.com/v1``); ``REPLICATE_BASE_URL_<NAME>`` that of one account."""
    base_url = (environ.get(BASE_URL_VAR) or DEFAULT_BASE_URL).rstrip("/")
    tokens: dict[str, str | None] = {DEFAULT_ACCOUNT: environ.get(TOKEN_VAR) or None}
    for variable, value in sorted(environ.items()):
        match = _NAMED_TOKEN.match(variable)
        if not match or not value:
            continue
        name = match.group(1).lower()
        # REPLICATE_API_TOKEN wins over REPLICATE_API_TOKEN_DEFAULT.
        if name == DEFAULT_ACCOUNT and tokens[DEFAULT_ACCOUNT]:
            continue
        tokens[name] = value
    return {name: Account(name, token, _base_url(environ, name, base_url)) for name, token in tokens.items()}


def _base_url(environ: Mapping[str, str], name: str, shared: str) -> str:
    own = environ.get(f"{BASE_URL_VAR}_{name.upper()}")
    return own.rstrip("/") if own else shared


def simulated_accounts(
    names: Iterable[str] = (DEFAULT_ACCOUNT,), base_url: str = DEFAULT_BASE_URL
) -> dict[str, Account]:
    """Accounts holding simulator tokens (``r8_sim_<name>``); ``default`` is always
    included. Use them with ``SimulatorTransport`` or a served simulator's base URL."""
    ordered = dict.fromkeys([DEFAULT_ACCOUNT, *names])
    return {name: Account(name, SIMULATOR_TOKEN_PREFIX + name, base_url.rstrip("/")) for name in ordered}
