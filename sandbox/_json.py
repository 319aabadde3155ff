"""The host halves of ``json.*``: ``json.decode`` and two helpers of the encoder.

``json.encode(v[, {pretty=true}])`` is lua/json.lua (it runs in the script's context, within
its limits); it calls :func:`callbacks`' ``fix_utf8`` for a string that is not UTF-8 (replacement
characters, as Python's decoder puts them) and ``base64`` for such a string under ``body``.

``json.decode(s)`` returns tables marked as objects/arrays so they encode back the same way;
``null`` becomes ``json.null`` in arrays and is left out of objects; nesting is limited to
``MAX_DEPTH`` levels. It reserves the memory its result needs before building it (a first
estimate from the text, before it is parsed; the exact one after), so a document that does
not fit fails with the memory limit.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from ._convert import MAX_DEPTH, Converter
from ._errors import ConversionError
from ._host import ScriptFacingError

# Lua memory per structural character of a JSON text: each `[`/`{` is a table, each `,`/`:`
# at most one more slot and value.
_PER_CONTAINER = 160
_PER_ITEM = 96


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def callbacks(converter: Converter) -> dict[str, Callable[..., tuple[Any, ...]]]:
    def fix_utf8(raw: bytes) -> tuple[bytes]:
        return (raw.decode("utf-8", "replace").encode("utf-8"),)

    def to_base64(raw: bytes) -> tuple[bytes]:
        return (base64.b64encode(raw),)

    def json_decode(raw: bytes) -> tuple[Any]:
        memory = converter.memory
        if memory is not None:
            containers = raw.count(b"[") + raw.count(b"{")
            items = raw.count(b",") + raw.count(b":")
            memory.reserve(len(raw) + containers * _PER_CONTAINER + items * _PER_ITEM)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScriptFacingError(f"json.decode: invalid UTF-8 at byte {exc.start + 1}") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise ScriptFacingError(f"json.decode: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise ScriptFacingError(f"json.decode: nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise ScriptFacingError(f"json.decode: {exc}") from None
        try:
            return (converter.to_lua(data),)
        except ConversionError as exc:
            raise ScriptFacingError(f"json.decode: {exc}") from None

    return {"json_decode": json_decode, "fix_utf8": fix_utf8, "base64": to_base64}
