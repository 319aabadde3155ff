"""Limits of one run: a value object with server defaults and maximums.

    field                default       maximum        bounds
    instructions         100_000_000   2_000_000_000  Lua work, in VM instructions (see ENGINE.md)
    memory_bytes         32 MiB        256 MiB        memory allocated by Lua
    wall_clock_seconds   300           3600           start to end, waiting included
    output_bytes         1 MiB         16 MiB         bytes printed by print/dump
    calls                1000          10_000         integration calls
    result_bytes         1 MiB         16 MiB         the returned values, as compact JSON
    predictions          100           100            calls that create a prediction or training
    writes               500           500            calls of write functions

``predictions`` and ``writes`` are spend caps: their default is their maximum, so a job
may lower them but not raise them (a deployment raises both with ``LUAQ_MAX_<FIELD>``).
Both are counted before the call is sent, and only for calls that pass the write
permission check.

A job may ask for any positive value up to the maximum (:meth:`Limits.from_request`).
Exceeding a limit ends the run with status ``limit_exceeded``, ``error.type`` ==
``"limit_exceeded"`` and ``error.limit`` naming the limit (a key of ``LIMIT_FIELDS``).

Margins (how far past a limit a run may get before it ends; measurements in ENGINE.md):

- instructions: none; work done inside one C function is charged before it starts, and once
  tripped the limit cannot be caught any more;
- wall clock: the clock is read about every 5 ms of Lua work (the tick slice adapts to slow
  operations), every 1024 values or matches of host work, and between bridge requests;
  providers get the time left as their timeout. Measured overshoot: a few ms; a single C
  operation on strings of up to ``memory_bytes`` adds its own duration (~15 ms at 64 MiB);
- memory: none for Lua allocations; values the host hands to Lua are sized before they are
  built; host-side copies (tool arguments) are budgeted at ``memory_bytes``;
- output, calls, result size, predictions, writes: none (checked before the output, call or
  result is accepted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

MiB = 1024 * 1024

# error.limit -> the field it enforces
LIMIT_FIELDS: dict[str, str] = {
    "instructions": "instructions",
    "memory": "memory_bytes",
    "wall_clock": "wall_clock_seconds",
    "output": "output_bytes",
    "calls": "calls",
    "result_size": "result_bytes",
    "predictions": "predictions",
    "writes": "writes",
}

# error.limit -> how messages name it
_LIMIT_NAMES = {
    "instructions": "instruction limit",
    "memory": "memory limit",
    "wall_clock": "wall clock limit",
    "output": "output limit",
    "calls": "call limit",
    "result_size": "result size limit",
    "predictions": "prediction cap",
    "writes": "write cap",
}

_UNITS = {
    "instructions": "instructions",
    "memory_bytes": "bytes",
    "wall_clock_seconds": "seconds",
    "output_bytes": "bytes",
    "calls": "calls",
    "result_bytes": "bytes",
    "predictions": "predictions",
    "writes": "write calls",
}


@dataclass(frozen=True)
class Limits:
    """The limits of one run (see the module docstring for the table)."""

    instructions: int = 100_000_000
    memory_bytes: int = 32 * MiB
    wall_clock_seconds: float = 300.0
    output_bytes: int = 1 * MiB
    calls: int = 1000
    result_bytes: int = 1 * MiB
    predictions: int = 100
    writes: int = 500

    DEFAULT: ClassVar[Limits]
    MAXIMUM: ClassVar[Limits]
    # Spend caps: a deployment's default is its maximum, so jobs can only lower them.
    SPEND_CAPS: ClassVar[tuple[str, ...]] = ("predictions", "writes")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # A spend cap of 0 is a job that may not create or write anything.
            lowest_ok = 0 if f.name in self.SPEND_CAPS else 1e-9
            if not _is_number(value) or value < lowest_ok:
                raise ValueError(f"limits.{f.name} must be a positive number, got {value!r}")

    @classmethod
    def from_request(
        cls,
        requested: Mapping[str, Any] | None,
        default: Limits | None = None,
        maximum: Limits | None = None,
    ) -> Limits:
        """The limits for a job that asked for ``requested`` (keys are field names).

        Unknown keys, non-numeric or non-positive values and values above ``maximum`` raise
        ``ValueError`` naming the key (and the maximum); missing keys come from ``default``.
        """
        default = default or cls.DEFAULT
        maximum = maximum or cls.MAXIMUM
        if requested is None:
            return default
        if not isinstance(requested, Mapping):
            raise ValueError(f"limits must be an object, got {type(requested).__name__}")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in requested.items():
            if key not in known:
                raise ValueError(f"unknown limit {key!r}; known limits: {', '.join(known)}")
            ceiling = getattr(maximum, key)
            integral = key != "wall_clock_seconds"
            cap = key in cls.SPEND_CAPS  # 0: nothing may be created or written
            expect = "a whole number, 0 or more" if cap else "a positive integer" if integral else "a positive number"
            if not _is_number(value) or (integral and value != int(value)) or value < 0 or (value == 0 and not cap):
                raise ValueError(f"limits.{key} must be {expect} (at most {ceiling} {_UNITS[key]}), got {value!r}")
            if value > ceiling:
                raise ValueError(f"limits.{key} = {value} is above the maximum of {ceiling} {_UNITS[key]}")
            values[key] = int(value) if integral else float(value)
        return default.replace(**values)

    def replace(self, **changes: Any) -> Limits:
        return type(self)(**{**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self, limit: str) -> str:
        """The message for an exceeded limit, e.g. ``instruction limit exceeded (...)``;
        a limit that is not one of these fields (a provider's own cap) is only named."""
        if limit not in LIMIT_FIELDS:
            return f"{limit.replace('_', ' ')} limit exceeded"
        field = LIMIT_FIELDS[limit]
        value = getattr(self, field)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        unit = _UNITS[field] if value != 1 else _UNITS[field].removesuffix("s")
        return f"{_LIMIT_NAMES[limit]} exceeded ({value} {unit})"


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


Limits.DEFAULT = Limits()
Limits.MAXIMUM = Limits(
    instructions=2_000_000_000,
    memory_bytes=256 * MiB,
    wall_clock_seconds=3600.0,
    output_bytes=16 * MiB,
    calls=10_000,
    result_bytes=16 * MiB,
    predictions=100,
    writes=500,
)
