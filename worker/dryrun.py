"""``luaq run --dry-run``: run a script against the simulator and report the write calls it
would make.

A dry run implies ``--simulate`` and ``--force``: every call goes to the offline simulator
(reads answer from its demo data), so nothing reaches Replicate and nothing is spent.
:class:`WriteRecorder` wraps each provider and notes every write call the script makes,
in order, with its arguments; the envelope carries the list as ``meta.dry_run``::

    {"write_calls": [{"operation": "replicate.create_prediction", "account": "default",
                      "args": {"version": "...", "input": {"prompt": "a cat"}}}]}

Calls a spend cap or the permission check refused are not listed: they would not be made.
Long strings and binary values in ``args`` are shortened (``"<2048 bytes>"``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from sandbox import CallOutcome, FunctionSpec, Provider

MAX_TEXT_CHARS = 300


class WriteRecorder:
    """A provider that forwards every call to ``provider`` and records the write calls."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._writes: set[str] | None = None
        self.write_calls: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return self._provider.name

    def functions(self) -> Sequence[FunctionSpec]:
        return self._provider.functions()

    def accounts(self) -> Sequence[str]:
        return self._provider.accounts()

    def overview_doc(self) -> str:
        return self._provider.overview_doc()

    def call(
        self, function: str, account: str, args: Mapping[str, Any], *, timeout: float | None = None
    ) -> CallOutcome:
        if self._writes is None:
            self._writes = {name for spec in self.functions() if spec.kind == "write" for name in spec.names}
        if function in self._writes:
            self.write_calls.append({"operation": f"{self.name}.{function}", "account": account, "args": shorten(args)})
        return self._provider.call(function, account, args, timeout=timeout)


def report(recorders: Sequence[WriteRecorder]) -> dict[str, Any]:
    """``meta.dry_run`` of the envelope."""
    return {"write_calls": [call for recorder in recorders for call in recorder.write_calls]}


def shorten(value: Any) -> Any:
    """A JSON-safe copy of call arguments, binary values and long strings shortened."""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_CHARS else f"{value[:MAX_TEXT_CHARS]}… ({len(value)} chars)"
    if isinstance(value, Mapping):
        return {str(key): shorten(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [shorten(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return repr(value)


def print_report(envelope: Mapping[str, Any]) -> None:
    """Text mode: the write calls the script would make, after its result."""
    calls = (envelope.get("meta") or {}).get("dry_run", {}).get("write_calls", [])
    if not calls:
        click.echo("dry run: no write calls (simulated; nothing was sent to Replicate)")
        return
    noun = "call" if len(calls) == 1 else "calls"
    click.echo(f"dry run: {len(calls)} write {noun} would be made (simulated; nothing was sent to Replicate):")
    for number, call in enumerate(calls, 1):
        args = json.dumps(call["args"], ensure_ascii=False)
        click.echo(f"  {number}. {call['operation']} [{call['account']}] {args}")
