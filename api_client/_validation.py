"""Map the single Lua table argument onto a request, validating it first.

Path and query parameters are taken by name; header parameters (``Prefer``,
``Cancel-After``) by their exact name, snake_case or lower-case, each consumed once so
it never leaks into the body. The body is ``args.body`` when given, otherwise the
remaining fields. Everything is checked against the schema before any request is made.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ._catalog import Operation, Parameter
from ._errors import ArgumentError
from ._jsonschema import conform, unknown_argument
from ._names import header_spellings

__all__ = ["NO_BODY", "PreparedRequest", "prepare_request"]


class _NoBody:
    def __repr__(self) -> str:
        return "NO_BODY"

    def __bool__(self) -> bool:
        return False


NO_BODY: Any = _NoBody()
"""The body of a request that sends none (``None`` would mean JSON null)."""


@dataclass(frozen=True)
class PreparedRequest:
    """A validated call: the path with its values encoded, query, headers and body.

    ``body`` is a JSON value for ``application/json``, a ``str`` for ``text/plain``, the
    field dict for ``multipart/form-data`` (``content`` still unresolved), or ``NO_BODY``.
    """

    operation: Operation
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = NO_BODY


def prepare_request(operation: Operation, args: Mapping[str, Any] | None) -> PreparedRequest:
    """Validate ``args`` for ``operation`` and split them into path, query, headers, body."""
    try:
        return _prepare(operation, args)
    except ArgumentError as exc:
        exc.operation = exc.operation or operation.short_name
        raise


def _prepare(operation: Operation, args: Mapping[str, Any] | None) -> PreparedRequest:
    label = operation.label
    remaining = _arguments(args, label)
    path_values = {
        p.name: _path_segment(p, _param_text(_take(p, remaining, label)), label) for p in operation.path_params
    }
    query: dict[str, str] = {}
    for p in operation.query_params:
        value = _take(p, remaining, label)
        if value is not None:
            query[p.name] = _cursor(value, label) if p.name == "cursor" else _param_text(value)
    headers = {}
    for p in operation.header_params:
        value = _take_header(p, remaining, label)
        if value is not None:
            headers[p.name] = _param_text(value)
    body = _body(operation, remaining, label)
    path = re.sub(r"\{(\w+)\}", lambda m: quote(path_values[m.group(1)], safe=""), operation.path)
    return PreparedRequest(operation, path, query, headers, body)


def argument_names(operation: Operation) -> list[str]:
    """Every top-level argument name ``operation`` accepts."""
    names = [p.name for p in operation.path_params + operation.query_params]
    for p in operation.header_params:
        names.extend(header_spellings(p.name))
    if operation.body is not None:
        names.extend(operation.body.fields)
        names.append("body")
    return names


def _arguments(args: Mapping[str, Any] | None, label: str) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise ArgumentError(f"{label} takes one table argument with named fields, got {type(args).__name__}")
    arguments: dict[str, Any] = {}
    for key, value in args.items():
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if not isinstance(key, str):
            raise ArgumentError(
                f"{label} takes named arguments ({{ name = value }}), got a positional value at {key!r}"
            )
        arguments[key] = value
    return arguments


def _take(p: Parameter, remaining: dict[str, Any], label: str) -> Any:
    value = remaining.pop(p.name, None)
    if value is None:
        if p.required:
            raise ArgumentError(_missing(p.name, remaining, label), argument=p.name)
        return None
    return conform(_stringish(value, p), p.schema, p.name, label)


def _path_segment(p: Parameter, value: str, label: str) -> str:
    # quote() leaves "." and ".." alone, and HTTP clients resolve them: "/models/../.."
    # would reach another endpoint with the account's token.
    if value in ("", ".", ".."):
        raise ArgumentError(f"argument {p.name!r} for {label} cannot be {value!r}", argument=p.name)
    return value


def _missing(name: str, remaining: Mapping[str, Any], label: str) -> str:
    """The message for a missing argument, pointing at a misspelt one when it was given."""
    misspelt = difflib.get_close_matches(name, list(remaining), n=1, cutoff=0.6)
    hint = f" (got unknown argument {misspelt[0]!r}: did you mean {name!r}?)" if misspelt else ""
    return f"missing required argument {name!r} for {label}{hint}"


def _take_header(p: Parameter, remaining: dict[str, Any], label: str) -> Any:
    given = [s for s in header_spellings(p.name) if s in remaining]
    if len(given) > 1:
        spellings = " and ".join(repr(s) for s in given)
        raise ArgumentError(f"argument {p.name!r} for {label} is given twice (as {spellings})", argument=p.name)
    if not given:
        if p.required:
            raise ArgumentError(_missing(p.name, remaining, label), argument=p.name)
        return None
    value = remaining.pop(given[0])
    if value is None:
        return None
    return conform(_stringish(value, p), p.schema, p.name, label)


def _stringish(value: Any, p: Parameter) -> Any:
    # Path, query and header values all end up as text, so a Lua number given for a
    # string parameter (cancel_after = 30, version_id = 5) is taken as its digits.
    if p.schema.get("type") == "string" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cursor(value: str, label: str) -> str:
    """The cursor of a page URL, or the value itself when it is already a cursor."""
    if "://" not in value and "cursor=" not in value:
        return value
    cursors = parse_qs(urlsplit(value).query).get("cursor")
    if not cursors:
        raise ArgumentError(f"argument 'cursor' for {label} is a URL without a cursor: {value!r}", argument="cursor")
    return cursors[0]


def _body(operation: Operation, remaining: dict[str, Any], label: str) -> Any:
    spec = operation.body
    if spec is None:
        if remaining:
            raise unknown_argument(next(iter(remaining)), argument_names(operation), label)
        return NO_BODY
    if "body" in remaining:
        body = remaining.pop("body")
        if remaining:
            raise unknown_argument(next(iter(remaining)), argument_names(operation), label)
        if body is None and not spec.required:
            return NO_BODY
        where = "body"
    elif spec.is_object:
        if spec.schema.get("additionalProperties") is False:
            for key in remaining:
                if key not in spec.fields:
                    raise unknown_argument(key, argument_names(operation), label)
        body, where = remaining, ""
        if not body and not spec.required and not spec.required_fields:
            return NO_BODY
    else:
        if remaining:
            raise unknown_argument(next(iter(remaining)), argument_names(operation), label)
        if spec.required:
            raise ArgumentError(
                f"missing required argument 'body' for {label} ({_body_hint(spec.schema)}, passed as body = ...)",
                argument="body",
            )
        return NO_BODY
    if body is None:
        raise ArgumentError(f"missing required argument 'body' for {label}", argument="body")
    return conform(body, spec.schema, where, label)


def _body_hint(schema: Mapping[str, Any]) -> str:
    description = (schema.get("description") or "the request body").rstrip(".")
    return f"{description[0].lower()}{description[1:]}, a {schema.get('type', 'value')}"
