"""``print`` and ``dump``: output lines, the output limit and the live stream.

``print(...)`` joins its arguments with tabs (tables as compact JSON, values with a
``__tostring`` through it); ``dump(v)`` prints ``v`` as pretty JSON and returns it. Both are
rendered by env.lua (lua/json.lua), in the script's context, within what is left of the
output limit (``output_room``), so a table that would print past the limit stops encoding
there however many times its subtables are shared. Every call is one output entry, passed to
``on_output`` at once. The limit counts bytes, newlines between entries included; the entry
that would cross it ends the run (``output``) and is not kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._errors import LimitExceeded
from ._host import HostAbort


class Output:
    def __init__(self, limit_bytes: int, on_output: Callable[[str], None] | None) -> None:
        self.lines: list[str] = []
        self.size = 0
        self._limit = limit_bytes
        self._on_output = on_output

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def left(self) -> int:
        """Bytes the next entry may have."""
        return self._limit - self.size - (1 if self.lines else 0)

    def emit(self, line: bytes) -> None:
        added = len(line) + (1 if self.lines else 0)
        if self.size + added > self._limit:
            raise LimitExceeded("output")
        self.size += added
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        if self._on_output is not None:
            try:
                self._on_output(text)
            except BaseException as exc:
                raise HostAbort(exc) from exc

    def callbacks(self) -> dict[str, Callable[..., tuple[Any, ...]]]:
        """The Python halves of print/dump (env.lua renders, within ``output_room``)."""

        def print_(line: bytes) -> tuple[()]:
            self.emit(line)
            return ()

        def output_room() -> tuple[int]:
            return (max(0, self.left),)

        return {"print": print_, "output_room": output_room}
