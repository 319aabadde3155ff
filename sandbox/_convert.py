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

Every conversion spends a :class:`Budget`: each value visited is a node (a table reached
twice through shared subtables is visited, and paid for, twice: a DAG with 2^21 paths stops
at the budget, it is never expanded), and the JSON text the value would become is counted in
bytes. Past the byte budget the conversion fails with the budget's limit (``output`` for
print/dump, ``result_size`` for returned values, ``memory`` for json.encode and provider
arguments); past the node budget with ``memory`` (the host's own memory); and every 1024
nodes it checks the wall clock.

Python -> Lua (:meth:`Converter.to_lua`): dicts and lists become tables marked as JSON
objects/arrays (so they convert back the same way), lists are 1-based, ``None`` is dropped
from objects and becomes ``json.null`` in arrays, ``str`` and ``bytes`` become Lua strings.
The size of the result is estimated first and reserved (:class:`~sandbox._memory.Memory`):
a value that would not fit under the memory limit fails with ``memory`` before anything is
built.

Tables are read by core.lua's ``walk``, in Lua, with raw access only: a script's
``__index``/``__pairs``/``__len``/``__tostring`` never run. It streams the table as tokens in
chunks (strings, numbers, booleans and tags; markers are recognised by metatable identity), so
the host holds no Lua reference into the table and stops the walk as soon as a budget is
spent.
"""

from __future__ import annotations

import base64
import enum
import math
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import ConversionError, LimitExceeded
from ._lupa import lua54
from ._memory import Memory

MAX_DEPTH = 200
CLOCK_EVERY = 1024  # nodes between two reports of the host's work (clock and instructions)
NODE_COST = 128  # instructions charged per value converted by the host (about its time)

_lua_type = lua54.lua_type
_LuaTable = type(lua54.LuaRuntime(max_memory=1 << 20).table())  # lupa's (private) table wrapper

# Marks of core.lua's control.mark.
_OBJECT, _ARRAY = 1, 2

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Estimated Lua memory (bytes) of values built by to_lua; generous on purpose.
_LUA_TABLE = 160
_LUA_ARRAY_SLOT = 40
_LUA_HASH_SLOT = 96
_LUA_STRING = 48


class Mode(enum.Enum):
    """How strictly :meth:`Converter.to_python` converts."""

    JSON = "json"  # json.encode and returned values: anything without a JSON form fails
    ARGS = "args"  # provider arguments: like JSON, schema-guided, non-UTF-8 strings stay bytes
    DISPLAY = "display"  # print/dump: never fails; shows <function>, <cycle>, NaN


class Budget:
    """What one conversion may spend: ``max_bytes`` of JSON text (then ``limit``),
    ``max_nodes`` values (then ``memory``), and work: ``work(units)`` is called every
    ``CLOCK_EVERY`` nodes with their cost in instructions; it checks the wall clock and charges
    the instruction budget, raising the limit that is exceeded. ``indent`` > 0 counts the
    indentation of pretty JSON."""

    def __init__(
        self,
        limit: str,
        max_bytes: int,
        max_nodes: int,
        work: Callable[[int], None] | None = None,
        indent: int = 0,
    ) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.max_nodes = max_nodes
        self.work = work
        self.indent = indent
        self.bytes = 0
        self.nodes = 0

    def node(self, size: int, depth: int) -> None:
        """Count one value whose own text is about ``size`` bytes, at ``depth``."""
        self.nodes += 1
        self.bytes += size + (self.indent * depth + 1 if self.indent else 1)
        if self.bytes > self.max_bytes:
            raise LimitExceeded(self.limit)
        if self.nodes > self.max_nodes:
            raise LimitExceeded("memory")
        if self.work is not None and self.nodes % CLOCK_EVERY == 0:
            self.work(CLOCK_EVERY * NODE_COST)

    def text(self, size: int) -> None:
        """Count ``size`` more bytes (a key, a string)."""
        self.bytes += size
        if self.bytes > self.max_bytes:
            raise LimitExceeded(self.limit)


def unlimited() -> Budget:
    """A budget for trusted values (tests, small host values)."""
    return Budget("memory", 2**62, 2**62)


class Converter:
    """Converts values for one runtime.

    ``walk(t, max_depth)`` (a chunked token stream of a table) and ``mark(t, kind) -> t`` are
    core.lua's helpers; ``null`` is the ``json.null`` table; ``new_table()`` makes an empty
    Lua table and ``type_name`` is Lua's ``type`` (for messages). ``memory`` (set once the
    runtime's limit is known) is where :meth:`to_lua` reserves room.
    """

    def __init__(
        self,
        new_table: Callable[[], Any],
        walk: Callable[[Any, int], Callable[[], Any]],
        mark: Callable[[Any, int], Any],
        null: Any,
        type_name: Callable[[Any], bytes],
        memory: Memory | None = None,
    ) -> None:
        self._new_table = new_table
        self._walk = walk
        self._mark = mark
        self._type_name = type_name
        self.null = null
        self.memory = memory

    # Lua -> Python ---------------------------------------------------------------------------

    def to_python(
        self,
        value: Any,
        *,
        budget: Budget,
        mode: Mode = Mode.JSON,
        schema: Mapping[str, Any] | None = None,
    ) -> Any:
        """Convert a Lua value to JSON-compatible Python (see the module docstring)."""
        return _ToPython(self, mode, budget).convert(value, schema)

    # Python -> Lua ---------------------------------------------------------------------------

    def to_lua(self, value: Any) -> Any:
        """Convert a JSON-like Python value to a Lua value (see the module docstring);
        raises ``LimitExceeded("memory")`` when it would not fit."""
        if self.memory is not None:
            self.memory.reserve(lua_size(value))
        return self._to_lua(value, 0)

    def new_table(self) -> Any:
        """An empty Lua table (room for it must have been reserved)."""
        return self._new_table()

    def _to_lua(self, value: Any, depth: int) -> Any:
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
                    table[_key_bytes(key)] = self._to_lua(item, depth + 1)
            return self._mark(table, _OBJECT)
        if isinstance(value, list | tuple):
            table = self._new_table()
            for index, item in enumerate(value, 1):
                table[index] = self.null if item is None else self._to_lua(item, depth + 1)
            return self._mark(table, _ARRAY)
        return str(value).encode("utf-8", "surrogatepass")


def lua_size(value: Any, depth: int = 0) -> int:
    """An upper bound of the Lua memory :meth:`Converter.to_lua` uses for ``value``."""
    if value is None or value is True or value is False or isinstance(value, int | float):
        return 0
    if isinstance(value, str):
        return _LUA_STRING + (len(value) if value.isascii() else 4 * len(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return _LUA_STRING + len(value)
    if depth >= MAX_DEPTH:
        raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        total = _LUA_TABLE + _LUA_HASH_SLOT * len(value)
        for key, item in value.items():
            total += lua_size(key if isinstance(key, str | bytes) else str(key), depth + 1)
            total += lua_size(item, depth + 1)
        return total
    if isinstance(value, list | tuple):
        total = _LUA_TABLE + _LUA_ARRAY_SLOT * len(value)
        for item in value:
            total += lua_size(item, depth + 1)
        return total
    return _LUA_STRING + 4 * len(str(value))


# Tokens of core.lua's control.walk.
T_NUMBER, T_NULL, T_SEQUENCE, T_OBJECT, T_MARKED_OBJECT, T_MARKED_ARRAY = 1, 2, 3, 4, 5, 6
T_EMPTY, T_EMPTY_OBJECT, T_EMPTY_ARRAY, T_OTHER, T_CYCLE, T_DEEP, T_KEY_OTHER = 7, 8, 9, 10, 11, 12, 13


class _ToPython:
    """Builds the Python value from the token stream of one Lua table (or converts a value
    lupa already gave as Python)."""

    def __init__(self, converter: Converter, mode: Mode, budget: Budget) -> None:
        self._walk = converter._walk
        self._type_name = converter._type_name
        self._mode = mode
        self._display = mode is Mode.DISPLAY
        self._budget = budget
        self._chunk: tuple[Any, ...] = ()
        self._pos = 0
        self._next: Callable[[], Any] | None = None

    def convert(self, v: Any, schema: Any) -> Any:
        if type(v) is _LuaTable:
            self._next = self._walk(v, MAX_DEPTH)
            return self._value(schema, "$", 0)
        return self._scalar(v, "$")

    # Values lupa converted itself (the root, when it is not a table).
    def _scalar(self, v: Any, path: str) -> Any:
        if v is None or v is True or v is False:
            self._budget.node(5, 0)
            return v
        kind = type(v)
        if kind is bytes:
            self._budget.node(len(v) + 2, 0)
            return self._text(v)
        if kind is int or kind is float:
            return self._number(v, path, 0)
        self._budget.node(12, 0)
        lua_type = _lua_type(v)
        name = self._type_name(v).decode() if lua_type else "userdata"
        return self._other(name, path)

    # The token stream.
    def _take(self) -> Any:
        if self._pos >= len(self._chunk):
            assert self._next is not None
            chunk = self._next()
            self._chunk = chunk if type(chunk) is tuple else (chunk,)
            self._pos = 0
        token = self._chunk[self._pos]
        self._pos += 1
        return token

    def _value(self, schema: Any, path: str, depth: int) -> Any:
        token = self._take()
        kind = type(token)
        budget = self._budget
        if kind is bytes:
            budget.node(len(token) + 2, depth)
            return self._text(token)
        if kind is bool:
            budget.node(5, depth)
            return token
        if token == T_NUMBER:
            return self._number(self._take(), path, depth)
        if token == T_SEQUENCE:
            count = self._take()
            budget.node(2 + count, depth)
            item_schema = _item_schema(schema)
            value = self._value
            return [value(item_schema, f"{path}[{i}]", depth + 1) for i in range(1, count + 1)]
        if token in (T_OBJECT, T_MARKED_OBJECT):
            count = self._take()
            budget.node(2 + count, depth)
            return self._object(count, schema, path, depth)
        if token == T_MARKED_ARRAY:
            count = self._take()
            budget.node(2 + count, depth)
            return self._marked_array(count, schema, path, depth)
        budget.node(4, depth)
        if token == T_NULL:
            return None
        if token == T_EMPTY:
            return {} if self._mode is Mode.ARGS and _wants(schema) == "object" else []
        if token == T_EMPTY_OBJECT:
            return {}
        if token == T_EMPTY_ARRAY:
            return []
        if token == T_OTHER:
            return self._other(self._take().decode(), path)
        if token == T_CYCLE:
            if self._display:
                return "<cycle>"
            raise ConversionError("cannot convert a table that contains itself", path)
        if token == T_DEEP:
            if self._display:
                return "<too deep>"
            raise ConversionError(f"value nested deeper than {MAX_DEPTH} levels", path)
        raise RuntimeError(f"unexpected token {token!r}")

    def _number(self, v: Any, path: str, depth: int) -> Any:
        if type(v) is int:
            self._budget.node(4 + v.bit_length() // 3, depth)
            return v
        self._budget.node(16, depth)
        if self._display or math.isfinite(v):
            return v
        raise ConversionError("cannot convert NaN or infinity to JSON", path)

    def _other(self, name: str, path: str) -> str:
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

    def _key(self, path: str) -> tuple[Any, str]:
        """The next key, raw (bytes, bool, a number) and as text."""
        token = self._take()
        if token == T_KEY_OTHER and type(token) is int:
            name = self._take().decode()
            if not self._display:
                raise ConversionError(f"cannot convert a table with a {name} key to JSON", path)
            return f"<{name}>", f"<{name}>"
        if token == T_NUMBER and type(token) is int:
            token = self._take()
        return token, _key_text(token) or ""

    def _entries(self, count: int, path: str, depth: int, child_schema: Callable[[str], Any]) -> list[Any]:
        """``count`` (sort key, key text, value, raw key) entries, values converted."""
        entries: list[Any] = []
        for _ in range(count):
            raw_key, key = self._key(path)
            self._budget.text(len(key) + 3)
            if key == "body" and self._mode is not Mode.ARGS and self._peek_is_bytes():
                raw = self._take()
                self._budget.node(len(raw) * 4 // 3 + 16, depth + 1)
                try:
                    entries.append((_sort_key(raw_key), key, raw.decode("utf-8"), raw_key, False))
                except UnicodeDecodeError:
                    entries.append((_sort_key(raw_key), key, base64.b64encode(raw).decode("ascii"), raw_key, True))
                continue
            value = self._value(child_schema(key), f"{path}.{key}", depth + 1)
            entries.append((_sort_key(raw_key), key, value, raw_key, False))
        return entries

    def _peek_is_bytes(self) -> bool:
        if self._pos >= len(self._chunk):
            assert self._next is not None
            chunk = self._next()
            self._chunk = chunk if type(chunk) is tuple else (chunk,)
            self._pos = 0
        return type(self._chunk[self._pos]) is bytes

    def _object(self, count: int, schema: Any, path: str, depth: int) -> dict[str, Any]:
        entries = self._entries(count, path, depth, lambda key: _property_schema(schema, key))
        entries.sort(key=lambda entry: entry[0])
        out: dict[str, Any] = {}
        encoded_body = False
        for _, key, value, _raw, is_base64 in entries:
            if key == "body_encoding" and encoded_body:
                continue
            out[key] = value
            if is_base64:
                out["body_encoding"] = "base64"
                encoded_body = True
        return out

    def _marked_array(self, count: int, schema: Any, path: str, depth: int) -> Any:
        item_schema = _item_schema(schema)
        entries = self._entries(count, path, depth, lambda key: item_schema)
        values: dict[int, Any] = {}
        for _, key, value, raw_key, _b64 in entries:
            if type(raw_key) is not int or raw_key < 1:
                if self._display:
                    return {key: value for _, key, value, _r, _b in sorted(entries, key=lambda e: e[0])}
                raise ConversionError(f"a table marked json.array has the key {key!r}", path)
            if raw_key > 2 * count + 1000:
                raise ConversionError("a table marked json.array is too sparse", path)
            values[raw_key] = value
        size = max(values, default=0)
        self._budget.text(size - len(values))  # the nulls
        return [values.get(index) for index in range(1, size + 1)]


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


def _sort_key(key: Any) -> tuple[int, Any]:
    kind = type(key)
    if kind is bytes:
        return (1, key)
    if kind is int or kind is float:
        return (0, key)
    return (2, str(_key_text(key)))


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
