"""``json.encode``, ``json.decode`` (and, in env.lua, ``json.null``/``object``/``array``).

``json.encode(v[, {pretty=true}])`` gives compact JSON (pretty: 2-space indent); values with
no JSON form raise a catchable error naming where they are. ``json.decode(s)`` returns tables
marked as objects/arrays so they encode back the same way; ``null`` becomes ``json.null`` in
arrays and is left out of objects; nesting is limited to ``MAX_DEPTH`` levels.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._convert import MAX_DEPTH, Converter, Mode
from ._errors import ConversionError
from ._host import ScriptFacingError


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def callbacks(converter: Converter) -> dict[str, Callable[..., tuple[Any, ...]]]:
    def json_encode(value: Any, pretty: bool) -> tuple[bytes]:
        try:
            data = converter.to_python(value, mode=Mode.JSON)
        except ConversionError as exc:
            raise ScriptFacingError(f"json.encode: {exc}") from None
        if pretty:
            text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False)
        else:
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return (text.encode("utf-8", "surrogatepass"),)

    def json_decode(raw: bytes) -> tuple[Any]:
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

    return {"json_encode": json_encode, "json_decode": json_decode}
