"""The functions and accounts of the providers of one run, by every name they answer to.

Name resolution (``app.integrations.<provider>[.<account>].<name>``), the bridge and the
``docs`` pages all read this one index, so names, calls and docs cannot drift apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._provider import FunctionSpec, Provider

DEFAULT_ACCOUNT = "default"


@dataclass(frozen=True)
class Entry:
    """One provider with its functions by name."""

    provider: Provider
    name: str
    functions: dict[str, FunctionSpec]  # every name -> spec
    specs: tuple[FunctionSpec, ...]  # each function once, in the provider's order
    accounts: tuple[str, ...]


class Catalog:
    def __init__(self, providers: Sequence[Provider]) -> None:
        self.entries: dict[str, Entry] = {}
        for provider in providers:
            specs = tuple(provider.functions())
            functions: dict[str, FunctionSpec] = {}
            for spec in specs:
                for name in spec.names:
                    functions.setdefault(name, spec)
            accounts = tuple(dict.fromkeys([DEFAULT_ACCOUNT, *provider.accounts()]))
            self.entries[provider.name] = Entry(provider, provider.name, functions, specs, accounts)

    def function_suggestions(self, entry: Entry, wrong: str, limit: int = 5) -> list[str]:
        """Names close to ``wrong``: for each close function, the name that matched and
        its canonical name (so ``get_acount`` suggests ``get_account`` and
        ``get_authenticated_account``)."""
        out: list[str] = []
        seen: set[int] = set()
        for name in difflib.get_close_matches(wrong, list(entry.functions), n=10, cutoff=0.6):
            spec = entry.functions[name]
            if id(spec) in seen:
                continue
            seen.add(id(spec))
            out.extend(n for n in (name, spec.name) if n not in out)
            if len(seen) >= limit:
                break
        return out


def close_matches(wrong: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    return difflib.get_close_matches(wrong, list(candidates), n=n, cutoff=0.6)


def suggestion_text(names: Sequence[str]) -> str:
    return f"; did you mean: {', '.join(names)}?" if names else ""
