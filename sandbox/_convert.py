"""Lua <-> JSON: the one place values cross between Lua and Python.

Used by the bridge (provider arguments and results), ``json.*``, ``print``/``dump`` and the
envelope (returned values).

Lua -> Python (:meth:`Converter.to_python`):

- a sequence (integer keys 1..n, no holes) becomes a list, any other table a dict with
  sorted string keys (number keys are stringified as Lua prints them);
- an empty table becomes ``[]``, unless it is marked (``json.object()`` / ``json.array()``)
  or, for provider arguments, the JSON schema at that position wants an object;
- ``json.null`` becomes ``None``;
- strings that are not UTF-8: under the key ``body`` they become base64 with a sibling
  ``body_encoding = "base64"``, elsewhere they are decoded with replacement characters;
  provider arguments keep them as ``bytes`` (a file upload is bytes);
- functions, coroutines, cycles, NaN/infinity and nesting deeper than ``MAX_DEPTH`` raise
  :class:`ConversionError`, except in ``Mode.DISPLAY`` (print/dump), which shows them.

Python -> Lua (:meth:`Converter.to_lua`): dicts and lists become tables marked as JSON
objects/arrays (so they convert back the same way), lists are 1-based, ``None`` is dropped
from objects and becomes ``json.null`` in arrays, ``str`` and ``bytes`` become Lua strings.

Tables are read with raw access only (lupa's ``items()`` uses ``lua_next``): a script's
``__index``/``__pairs``/``__len``/``__tostring`` never run from here. Markers are recognised
by metatable identity through a private Lua helper (``table_info``).
"""

from __future__ import annotations

import base64
import enum
import math
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import ConversionError
from ._lupa import lua54

MAX_DEPTH = 200

_lua_type = lua54.lua_type

# Kinds reported by core.lua's control.table_info.
_PLAIN, _OBJECT, _ARRAY, _NULL = 0, 1, 2, 3

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class Mode(enum.Enum):
    """How strictly :meth:`Converter.to_python` converts."""

    JSON = "json"  # json.encode and returned values: anything without a JSON form fails
    ARGS = "args"  # provider arguments: like JSON, schema-guided, non-UTF-8 strings stay bytes
    DISPLAY = "display"  # print/dump: never fails; shows <function>, <cycle>, NaN


class Converter:
    """Converts values for one runtime.

    ``table_info(t) -> (kind, address)`` and ``mark(t, kind) -> t`` are core.lua's helpers;
    ``null`` is the ``json.null`` table; ``new_table()`` makes an empty Lua table and
    ``type_name`` is Lua's ``type`` (for messages).
    """

    def __init__(
        self,
        new_table: Callable[[], Any],
        table_info: Callable[[Any], tuple[int, bytes]],
        mark: Callable[[Any, int], Any],
        null: Any,
        type_name: Callable[[Any], bytes],
    ) -> None:
        self._new_table = new_table
        self._table_info = table_info
        self._mark = mark
        self._type_name = type_name
        self.null = null

    # Lua -> Python ---------------------------------------------------------------------------

    def to_python(self, value: Any, *, mode: Mode = Mode.JSON, schema: Mapping[str, Any] | None = None) -> Any:
        """Convert a Lua value to JSON-compatible Python (see the module docstring)."""
        return _ToPython(self, mode).value(value, schema, "$", 0)

    # Python -> Lua ---------------------------------------------------------------------------

    def to_lua(self, value: Any, depth: int = 0) -> Any:
        """Convert a JSON-like Python value to a Lua value (see the module docstring)."""
        if value is None or value is True or value is False:
            return value
        if isinstance(value, int):
            if _INT64_MIN <= value <= _INT64_MAX:
                return value
            try:
                return float(value)
            except OverflowError:
                raise ConversionError("integer too large") from None
        if isinstance(value, float):
            return value
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        if depth >= MAX_DEPTH:
            raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, Mapping):
            table = self._new_table()
            for key, item in value.items():
                if item is not None:
                    table[_key_bytes(key)] = self.to_lua(item, depth + 1)
            return self._mark(table, _OBJECT)
        if isinstance(value, list | tuple):
            table = self._new_table()
            for index, item in enumerate(value, 1):
                table[index] = self.null if item is None else self.to_lua(item, depth + 1)
            return self._mark(table, _ARRAY)
        return str(value).encode("utf-8", "surrogatepass")


class _ToPython:
    def __init__(self, converter: Converter, mode: Mode) -> None:
        self._info = converter._table_info
        self._type_name = converter._type_name
        self._mode = mode
        self._display = mode is Mode.DISPLAY
        self._active: set[bytes] = set()

    def value(self, v: Any, schema: Any, path: str, depth: int) -> Any:
        if v is None or v is True or v is False:
            return v
        kind = type(v)
        if kind is int:
            return v
        if kind is float:
            if self._display or math.isfinite(v):
                return v
            raise ConversionError("cannot convert NaN or infinity to JSON", path)
        if kind is bytes:
            return self._text(v)
        lua_type = _lua_type(v)
        if lua_type == "table":
            return self._table(v, schema, path, depth)
        name = self._type_name(v).decode() if lua_type else "userdata"
        if self._display:
            return f"<{name}>"
        raise ConversionError(f"cannot convert a {name} to JSON", path)

    def _text(self, b: bytes) -> str | bytes:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            if self._mode is Mode.ARGS:
                return b
            return b.decode("utf-8", "replace")

    def _table(self, t: Any, schema: Any, path: str, depth: int) -> Any:
        kind, address = self._info(t)
        if kind == _NULL:
            return None
        if address in self._active:
            if self._display:
                return "<cycle>"
            raise ConversionError("cannot convert a table that contains itself", path)
        if depth >= MAX_DEPTH:
            if self._display:
                return "<too deep>"
            raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels", path)
        items = list(t.items())
        self._active.add(address)
        try:
            if kind == _OBJECT:
                return self._object(items, schema, path, depth)
            if kind == _ARRAY:
                return self._marked_array(items, schema, path, depth)
            if not items:
                return {} if self._mode is Mode.ARGS and _wants(schema) == "object" else []
            values = _sequence(items)
            if values is not None:
                return self._array(values, schema, path, depth)
            return self._object(items, schema, path, depth)
        finally:
            self._active.discard(address)

    def _array(self, values: list[Any], schema: Any, path: str, depth: int) -> list[Any]:
        item_schema = _item_schema(schema)
        return [self.value(v, item_schema, f"{path}[{i}]", depth + 1) for i, v in enumerate(values, 1)]

    def _marked_array(self, items: list[Any], schema: Any, path: str, depth: int) -> list[Any]:
        size = 0
        for key, _ in items:
            if type(key) is not int or key < 1:
                if self._display:
                    return self._object(items, schema, path, depth)
                raise ConversionError(f"a table marked json.array has the key {_key_text(key)!r}", path)
            size = max(size, key)
        if size > 2 * len(items) + 1000:
            raise ConversionError("a table marked json.array is too sparse", path)
        values: list[Any] = [None] * size
        for key, v in items:
            values[key - 1] = v
        return self._array(values, schema, path, depth)

    def _object(self, items: list[Any], schema: Any, path: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for raw_key, v in sorted(items, key=_sort_key):
            key = self._key(raw_key, path)
            if key == "body" and type(v) is bytes and self._mode is not Mode.ARGS:
                try:
                    out[key] = v.decode("utf-8")
                except UnicodeDecodeError:
                    out[key] = base64.b64encode(v).decode("ascii")
                    out["body_encoding"] = "base64"
                continue
            if key == "body_encoding" and key in out:
                continue
            out[key] = self.value(v, _property_schema(schema, key), f"{path}.{key}", depth + 1)
        return out

    def _key(self, key: Any, path: str) -> str:
        text = _key_text(key)
        if text is None:
            name = _lua_type(key) or "userdata"
            if self._display:
                return f"<{name}>"
            raise ConversionError(f"cannot convert a table with a {name} key to JSON", path)
        return text


def _key_text(key: Any) -> str | None:
    kind = type(key)
    if kind is bytes:
        return key.decode("utf-8", "replace")
    if kind is bool:
        return "true" if key else "false"
    if kind is int:
        return str(key)
    if kind is float:
        return format(key, ".14g")
    return None


def _sort_key(item: tuple[Any, Any]) -> tuple[int, Any]:
    key = item[0]
    kind = type(key)
    if kind is bytes:
        return (1, key)
    if kind is int or kind is float:
        return (0, key)
    return (2, str(_key_text(key)))


def _sequence(items: list[tuple[Any, Any]]) -> list[Any] | None:
    """The values of a table whose keys are exactly 1..n, in order; None otherwise."""
    n = len(items)
    for key, _ in items:
        if type(key) is not int or key < 1 or key > n:
            return None
    return [v for _, v in sorted(items, key=lambda kv: kv[0])]


def _key_bytes(key: Any) -> bytes:
    if isinstance(key, bytes):
        return key
    return str(key).encode("utf-8", "surrogatepass")


# JSON schema guidance ------------------------------------------------------------------------


def _wants(schema: Any) -> str | None:
    """``"object"``, ``"array"`` or None: what the schema expects at this position."""
    if not isinstance(schema, Mapping):
        return None
    declared = schema.get("type")
    types = set(declared) if isinstance(declared, list) else {declared} if isinstance(declared, str) else set()
    if "object" in types and "array" not in types:
        return "object"
    if "array" in types and "object" not in types:
        return "array"
    if types:
        return None
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    for combinator in ("allOf", "anyOf", "oneOf"):
        options = schema.get(combinator)
        if isinstance(options, list):
            kinds = {_wants(option) for option in options} - {None}
            if len(kinds) == 1:
                return kinds.pop()
    return None


def _property_schema(schema: Any, key: str) -> Any:
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and key in properties:
        return properties[key]
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        return extra
    for combinator in ("allOf", "anyOf", "oneOf"):
        for option in schema.get(combinator) or ():
            found = _property_schema(option, key)
            if found is not None:
                return found
    return None


def _item_schema(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return None
    items = schema.get("items")
    if isinstance(items, Mapping):
        return items
    for combinator in ("allOf", "anyOf", "oneOf"):
        for option in schema.get(combinator) or ():
            found = _item_schema(option)
            if found is not None:
                return found
    return None
