"""``print`` and ``dump``: output lines, the output limit and the live stream.

``print(...)`` joins its arguments with tabs (tables as compact JSON, values with a
``__tostring`` through it); ``dump(v)`` prints ``v`` as pretty JSON and returns it (the Lua
halves live in env.lua). Every call is one output entry, passed to ``on_output`` at once.
The limit counts bytes, newlines between entries included; the entry that would cross it
ends the run (``output_limit``) and is not kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._convert import Converter, Mode
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

    def emit(self, line: bytes) -> None:
        added = len(line) + (1 if self.lines else 0)
        if self.size + added > self._limit:
            raise LimitExceeded("output_limit")
        self.size += added
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        if self._on_output is not None:
            try:
                self._on_output(text)
            except BaseException as exc:
                raise HostAbort(exc) from exc

    def callbacks(self, converter: Converter) -> dict[str, Callable[..., tuple[Any, ...]]]:
        """The Python halves of print/dump, for core.lua's ``wrap_host``."""

        def render(value: Any, pretty: bool) -> tuple[bytes]:
            data = converter.to_python(value, mode=Mode.DISPLAY)
            if pretty:
                text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=True)
            else:
                text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
            return (text.encode("utf-8", "surrogatepass"),)

        def emit(line: bytes) -> tuple[()]:
            self.emit(line)
            return ()

        return {"render": render, "emit": emit}
