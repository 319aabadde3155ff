"""A small validator for the JSON-schema subset Replicate's OpenAPI schema uses.

Supported: ``type`` (a name or a list; ``nullable``), ``properties``, ``required``,
``additionalProperties: false``, ``enum``, ``items``, ``minimum``/``maximum``,
``maxLength``, ``pattern``. Values arrive converted from Lua, so :func:`conform` also
normalises them: an empty list where an object is expected becomes ``{}`` (and the
reverse), an integral float becomes an int, and text given as bytes becomes ``str``
unless the schema says ``format: binary``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import ArgumentError

__all__ = ["conform", "describe_type", "describe_value", "unknown_argument"]

_TYPE_WORDS = {
    "object": "a table with named fields (object)",
    "array": "a list (array)",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "nil (json.null)",
}


def conform(value: Any, schema: Mapping[str, Any], where: str, label: str) -> Any:
    """``value`` checked against ``schema`` and normalised; ArgumentError otherwise.

    ``where`` names the value in messages (``input``, ``body.webhook_events_filter[1]``);
    ``label`` names the operation (``replicate.create_prediction``).
    """
    if value is None:
        if _allows_null(schema):
            return None
        raise _type_error(value, schema, where, label)
    types = _types(schema)
    if types is None:
        return value
    for type_name in types:
        converted = _as_type(value, type_name, schema)
        if converted is not _MISMATCH:
            break
    else:
        raise _type_error(value, schema, where, label)
    _check_enum(converted, schema, where, label)
    if type_name == "object":
        return _conform_object(converted, schema, where, label)
    if type_name == "array":
        items = schema.get("items", {})
        return [
            conform(item, items, f"{where}[{index}]", label)
            # Lua lists are 1-based, so messages count from 1.
            for index, item in enumerate(converted, start=1)
        ]
    if type_name in ("integer", "number"):
        _check_range(converted, schema, where, label)
    if type_name == "string":
        _check_string(converted, schema, where, label)
    return converted


def unknown_argument(name: str, candidates: Iterable[str], label: str, noun="argument"):
    """The ArgumentError for an unknown argument, naming the nearest valid names."""
    candidates = sorted(set(candidates))
    message = f"unknown {noun} {name!r} for {label}"
    # Compare the last segments (body.extra vs body.stream), so that a shared prefix does
    # not make every candidate look close.
    prefix, _, leaf = name.rpartition(".")
    leaves = {c.rpartition(".")[2]: c for c in candidates if c.rpartition(".")[0] == prefix}
    close = [leaves[m] for m in difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.6)]
    if close:
        message += f"; did you mean {close[0]!r}?"
    elif candidates:
        message += "; valid: " + ", ".join(candidates)
    else:
        message += "; it takes no arguments"
    return ArgumentError(message, argument=name)


def describe_type(schema: Mapping[str, Any]) -> str:
    """The expected type in words, for messages: ``a string``, ``an integer or nil``."""
    types = _types(schema) or ["any value"]
    words = [_TYPE_WORDS.get(t, t) for t in types]
    if _allows_null(schema) and "null" not in types:
        words.append(_TYPE_WORDS["null"])
    return " or ".join(words)


def describe_value(value: Any) -> str:
    """A value's type in Lua terms, for messages."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str | bytes | bytearray):
        return "a string"
    if isinstance(value, Mapping):
        return "a table with named fields (object)"
    if isinstance(value, list | tuple):
        return "a list (array)"
    return type(value).__name__


_MISMATCH = object()


def _types(schema: Mapping[str, Any]) -> list[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    return [declared] if isinstance(declared, str) else list(declared)


def _allows_null(schema: Mapping[str, Any]) -> bool:
    types = _types(schema)
    return bool(schema.get("nullable")) or types is None or "null" in types


def _as_type(value: Any, type_name: str, schema: Mapping[str, Any]) -> Any:
    """``value`` as ``type_name``, or ``_MISMATCH``."""
    match type_name:
        case "object":
            if isinstance(value, Mapping):
                return value
            if isinstance(value, list | tuple) and not value:
                return {}
        case "array":
            if isinstance(value, list | tuple):
                return value
            if isinstance(value, Mapping) and not value:
                return []
        case "string":
            if isinstance(value, str):
                return value
            if isinstance(value, bytes | bytearray):
                if schema.get("format") == "binary":
                    return bytes(value)
                try:
                    return bytes(value).decode("utf-8")
                except UnicodeDecodeError:
                    return _MISMATCH
        case "integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        case "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
        case "boolean":
            if isinstance(value, bool):
                return value
        case "null":
            pass
    return _MISMATCH


def _conform_object(value: Mapping, schema: Mapping[str, Any], where: str, label: str) -> dict:
    properties: Mapping[str, Any] = schema.get("properties", {})
    result: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if not isinstance(key, str):
            raise ArgumentError(
                f"argument {where or 'arguments'!r} for {label} must have string keys, got key {key!r}",
                argument=where or None,
            )
        child = f"{where}.{key}" if where else key
        if key in properties:
            result[key] = conform(item, properties[key], child, label)
        elif schema.get("additionalProperties") is False:
            raise unknown_argument(child, _prefixed(where, properties), label)
        else:
            result[key] = item
    for key in schema.get("required", ()):
        if result.get(key) is None:
            child = f"{where}.{key}" if where else key
            raise ArgumentError(f"missing required argument {child!r} for {label}", argument=child)
    return result


def _prefixed(where: str, names: Iterable[str]) -> list[str]:
    return [f"{where}.{name}" if where else name for name in names]


def _check_enum(value: Any, schema: Mapping[str, Any], where: str, label: str) -> None:
    allowed = schema.get("enum")
    if allowed is not None and value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ArgumentError(
            f"argument {where!r} for {label} must be one of {choices}, got {value!r}",
            argument=where,
        )


def _check_range(value: float, schema: Mapping[str, Any], where: str, label: str) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and value < low:
        bound = f"at least {low}"
    elif high is not None and value > high:
        bound = f"at most {high}"
    else:
        return
    raise ArgumentError(f"argument {where!r} for {label} must be {bound}, got {value!r}", argument=where)


def _check_string(value: str | bytes, schema: Mapping[str, Any], where: str, label: str) -> None:
    limit = schema.get("maxLength")
    if limit is not None and len(value) > limit:
        raise ArgumentError(
            f"argument {where!r} for {label} must be at most {limit} characters long, got {len(value)}",
            argument=where,
        )
    pattern = schema.get("pattern")
    if pattern is not None and isinstance(value, str) and not re.search(pattern, value):
        example = schema.get("example")
        hint = f" (for example {example!r})" if example else ""
        raise ArgumentError(
            f"argument {where!r} for {label} must match {pattern}{hint}, got {value!r}",
            argument=where,
        )


def _type_error(value: Any, schema: Mapping[str, Any], where: str, label: str) -> ArgumentError:
    name = where or "arguments"
    if isinstance(value, bytes | bytearray) and "string" in (_types(schema) or ()):
        return ArgumentError(f"argument {name!r} for {label} must be UTF-8 text", argument=where or None)
    return ArgumentError(
        f"argument {name!r} for {label} must be {describe_type(schema)}, got {describe_value(value)}",
        argument=where or None,
    )
