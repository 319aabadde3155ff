"""``docs.read(page)``, ``docs.list()``, ``docs.search(query)`` and ``lua_read_doc(page)``.

Pages come from the providers themselves (the same catalog the runtime calls):
``"<provider>"`` is ``provider.overview_doc()`` and ``"<provider>.<name>"`` (any of a
function's names) is that function's ``FunctionSpec.doc``. Page names may carry an
``integrations.`` (or ``app.integrations.``) prefix. An unknown page is not an error: the
result is a ``No docs found for '<page>'. Did you mean: ...`` string. All three return
strings, as the reference runner's did: ``list`` one page name per line, ``search`` up to 20
``<provider>.<name> - <title>`` lines, best first.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from typing import Any

from ._catalog import Catalog, Entry
from ._provider import FunctionSpec

SEARCH_RESULTS = 20
_PREFIXES = ("app.integrations.", "integrations.")


class Docs:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def read(self, page: str) -> str:
        name = page.strip()
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        provider, _, function = name.partition(".")
        entry = self._catalog.entries.get(provider)
        if entry is not None:
            if not function:
                return entry.provider.overview_doc()
            spec = entry.functions.get(function)
            if spec is not None:
                return spec.doc or _generated_page(entry, spec)
        if not function:
            # A bare function name (any of its names) is enough when one provider has it.
            owners = [e for e in self._catalog.entries.values() if name in e.functions]
            if len(owners) == 1:
                spec = owners[0].functions[name]
                return spec.doc or _generated_page(owners[0], spec)
        suggestions = difflib.get_close_matches(name, self._all_pages(), n=5, cutoff=0.5)
        if not suggestions:
            suggestions = list(self._catalog.entries)
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        return f"No docs found for '{page}'.{hint}"

    def list(self) -> str:
        pages: list[str] = []
        for entry in self._catalog.entries.values():
            pages.append(entry.name)
            pages.extend(f"{entry.name}.{spec.name}" for spec in entry.specs)
        return "\n".join(pages)

    def search(self, query: str) -> str:
        terms = [t for t in re.split(r"[\s,]+", query.lower()) if t]
        if not terms:
            return self.list()
        whole = "_".join(terms)
        scored: list[tuple[int, int, str, str]] = []
        for entry in self._catalog.entries.values():
            for spec in entry.specs:
                matched, score = _score(spec, terms, whole)
                if score:
                    line = f"{entry.name}.{spec.name} - {spec.title}"
                    scored.append((-matched, -score, spec.name, line))
        if not scored:
            return f"No docs found for '{query}'."
        scored.sort()
        return "\n".join(line for *_, line in scored[:SEARCH_RESULTS])

    def _all_pages(self) -> list[str]:
        pages: list[str] = []
        for entry in self._catalog.entries.values():
            pages.append(entry.name)
            pages.extend(f"{entry.name}.{name}" for name in entry.functions)
        return pages

    def callbacks(self) -> dict[str, Callable[..., tuple[Any, ...]]]:
        def docs_read(page: bytes) -> tuple[str]:
            return (self.read(page.decode("utf-8", "replace")),)

        def docs_list() -> tuple[str]:
            return (self.list(),)

        def docs_search(query: bytes) -> tuple[str]:
            return (self.search(query.decode("utf-8", "replace")),)

        return {"docs_read": docs_read, "docs_list": docs_list, "docs_search": docs_search}


def _score(spec: FunctionSpec, terms: list[str], whole: str) -> tuple[int, int]:
    names = [n.lower() for n in spec.names]
    title = spec.title.lower()
    doc = spec.doc.lower()
    score = 100 if whole in names else 0
    matched = 0
    for term in terms:
        term_score = 0
        if term in names:
            term_score += 20
        elif any(term in n for n in names):
            term_score += 10
        if term in title:
            term_score += 5
        if term in doc:
            term_score += 1
        if term_score:
            matched += 1
            score += term_score
    return matched, score


def _generated_page(entry: Entry, spec: FunctionSpec) -> str:
    """A page for a function whose provider gave no doc text."""
    lines = [
        f"{entry.name}.{spec.name} - {spec.title}",
        f"Operation: {spec.kind}",
        f"Lua: app.integrations.{entry.name}.{spec.name}({{...}})",
    ]
    if len(spec.names) > 1:
        lines.append(f"Also callable as: {', '.join(spec.names[1:])}")
    lines.append("Arguments schema: " + json.dumps(spec.args_schema, sort_keys=True))
    if spec.example:
        lines += ["Example:", spec.example]
    return "\n".join(lines)
