"""The operation catalog: one row per operation of the vendored ``openapi.json``.

Lua names, docs pages, argument validation and the HTTP client all read these rows, so
they cannot drift apart.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from ._errors import ArgumentError
from ._names import APP_NAME, SHORT_NAMES, derive_long_name, header_spellings, slug_for

__all__ = ["Catalog", "Operation", "Parameter", "RequestBody", "load_catalog"]

Kind = Literal["read", "write"]
Location = Literal["path", "query", "header"]

READ_METHODS = frozenset({"GET", "QUERY"})
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")
# Operations that count against Replicate's "create a prediction" rate limit.
CREATE_OPERATIONS = frozenset(
    {
        "predictions.create",
        "models.predictions.create",
        "deployments.predictions.create",
        "trainings.create",
    }
)
# Replicate pages carry absolute next/previous URLs with ?cursor=...; the schema has no
# cursor parameter, so luaq adds one to every paginated operation to let scripts page.
CURSOR_PARAMETER_SCHEMA = {
    "type": "string",
    "description": (
        "luaq addition: the cursor of another page; pass a page's `next` or `previous` "
        "URL (or just its cursor value) to fetch that page."
    ),
}


@dataclass(frozen=True)
class Parameter:
    """A path, query or header parameter, its schema resolved."""

    name: str
    location: Location
    required: bool
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class RequestBody:
    """The request body: its content type, whether it is required, its resolved schema."""

    content_type: str
    required: bool
    schema: Mapping[str, Any]

    @property
    def is_object(self) -> bool:
        return self.schema.get("type") == "object"

    @property
    def fields(self) -> Mapping[str, Any]:
        """Top-level fields of an object body (empty for a text body)."""
        return self.schema.get("properties", {}) if self.is_object else {}

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(self.schema.get("required", ())) if self.is_object else ()


# eq=False: operations compare and hash by identity (their schemas are dicts), so they
# can key dicts and sets.
@dataclass(frozen=True, eq=False)
class Operation:
    """One Replicate API operation."""

    operation_id: str
    method: str
    path: str
    summary: str
    description: str
    long_name: str
    short_name: str
    slug: str
    kind: Kind
    path_params: tuple[Parameter, ...]
    query_params: tuple[Parameter, ...]
    header_params: tuple[Parameter, ...]
    body: RequestBody | None
    args_schema: Mapping[str, Any]
    rate_bucket: Literal["create", "other"] = "other"
    paginated: bool = False

    @property
    def creates(self) -> bool:
        """Whether a call creates a prediction or a training (billed work): counted against
        Replicate's create rate and luaq's prediction caps."""
        return self.rate_bucket == "create"

    @property
    def names(self) -> tuple[str, ...]:
        """Every Lua name, long name first, duplicates removed."""
        return tuple(dict.fromkeys((self.long_name, self.short_name, self.slug)))

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return self.path_params + self.query_params + self.header_params

    @property
    def label(self) -> str:
        """How messages name the operation: ``replicate.get_prediction``."""
        return f"{APP_NAME}.{self.short_name}"


class Catalog:
    """All operations, addressable by any of their Lua names or their operationId."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self.operations: tuple[Operation, ...] = tuple(operations)
        self._by_name: dict[str, Operation] = {}
        for operation in self.operations:
            for name in (*operation.names, operation.operation_id):
                other = self._by_name.setdefault(name, operation)
                if other is not operation:
                    raise ValueError(
                        f"operation name collision: {name!r} names both "
                        f"{other.operation_id} and {operation.operation_id}"
                    )

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Catalog:
        return cls(_operations_from_spec(spec))

    def get(self, name: str) -> Operation | None:
        """The operation named ``name`` (long name, short name, slug or operationId)."""
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> Operation:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def __len__(self) -> int:
        return len(self.operations)

    def lua_names(self) -> list[str]:
        """Every callable Lua name (long, short and slug forms)."""
        return [name for operation in self.operations for name in operation.names]

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """The Lua names closest to ``name``, best first."""
        return difflib.get_close_matches(name, self.lua_names(), n=n, cutoff=0.6)

    def resolve(self, name: str) -> Operation:
        """Like :meth:`get`, but an unknown name is an ArgumentError with suggestions."""
        operation = self.get(name)
        if operation is not None:
            return operation
        message = f"unknown function {name!r} for {APP_NAME}"
        suggestions = self.suggest(name)
        if suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        raise ArgumentError(message, argument=name)


@functools.cache
def load_catalog() -> Catalog:
    """The catalog of the vendored schema (built once per process)."""
    text = resources.files("api_client").joinpath("data/openapi.json").read_text("utf-8")
    return Catalog.from_spec(json.loads(text))


def _operations_from_spec(spec: Mapping[str, Any]) -> Iterator[Operation]:
    resolve = functools.partial(_resolve_refs, spec)
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, raw in item.items():
            if method not in HTTP_METHODS:
                continue
            parameters = [resolve(p) for p in (*shared, *raw.get("parameters", ()))]
            yield _operation(method.upper(), path, raw, parameters, resolve)


Resolver = Callable[[Any], Any]


def _operation(
    method: str,
    path: str,
    raw: Mapping[str, Any],
    parameters: list[Mapping[str, Any]],
    resolve: Resolver,
) -> Operation:
    operation_id = raw["operationId"]
    by_location: dict[str, list[Parameter]] = {"path": [], "query": [], "header": []}
    for p in parameters:
        by_location[p["in"]].append(
            Parameter(
                name=p["name"],
                location=p["in"],
                required=bool(p.get("required", p["in"] == "path")),
                schema=p.get("schema", {}),
                description=(p.get("description") or "").strip(),
            )
        )
    paginated = _is_page(resolve(_success_schema(raw)))
    if paginated:
        by_location["query"].append(Parameter("cursor", "query", False, CURSOR_PARAMETER_SCHEMA, ""))
    body = _request_body(raw.get("requestBody"), resolve)
    summary = raw.get("summary", "").strip()
    short_name = SHORT_NAMES[operation_id]
    path_params = tuple(by_location["path"])
    query_params = tuple(by_location["query"])
    header_params = tuple(by_location["header"])
    return Operation(
        operation_id=operation_id,
        method=method,
        path=path,
        summary=summary,
        description=(raw.get("description") or "").strip(),
        long_name=derive_long_name(summary),
        short_name=short_name,
        slug=slug_for(short_name),
        kind="read" if method in READ_METHODS else "write",
        path_params=path_params,
        query_params=query_params,
        header_params=header_params,
        body=body,
        args_schema=_args_schema(path_params + query_params + header_params, body),
        rate_bucket="create" if operation_id in CREATE_OPERATIONS else "other",
        paginated=paginated,
    )


def _request_body(raw: Mapping[str, Any] | None, resolve: Resolver) -> RequestBody | None:
    if not raw:
        return None
    content_type, media = next(iter(raw["content"].items()))
    return RequestBody(content_type, bool(raw.get("required")), resolve(media.get("schema", {})))


def _success_schema(raw: Mapping[str, Any]) -> Any:
    for status, response in raw.get("responses", {}).items():
        if str(status).startswith("2"):
            media = (response.get("content") or {}).get("application/json")
            if media:
                return media.get("schema", {})
    return {}


def _is_page(schema: Mapping[str, Any]) -> bool:
    properties = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    return {"next", "previous", "results"} <= properties.keys()


def _args_schema(parameters: tuple[Parameter, ...], body: RequestBody | None) -> dict[str, Any]:
    """The JSON schema of the single Lua table argument: every parameter (headers under
    each accepted spelling), every body field, and ``body``. It is closed (no other
    argument is accepted) unless the remaining fields form an open body."""
    properties: dict[str, Any] = {}
    for p in parameters:
        schema = _with_description(p.schema, p.description)
        names = header_spellings(p.name) if p.location == "header" else (p.name,)
        for name in names:
            properties.setdefault(name, schema)
    open_body = False
    if body is not None:
        for name, schema in body.fields.items():
            properties.setdefault(name, schema)
        properties["body"] = body.schema
        open_body = body.is_object and body.schema.get("additionalProperties") is not False
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [p.name for p in parameters if p.required],
    }
    if not open_body:
        schema["additionalProperties"] = False
    return schema


def _with_description(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    merged = dict(schema)
    if description and "description" not in merged:
        merged["description"] = description
    return merged


def _resolve_refs(spec: Mapping[str, Any], node: Any, _seen: tuple[str, ...] = ()) -> Any:
    """A copy of ``node`` with every local ``$ref`` replaced by its target."""
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in _seen:
                raise ValueError(f"recursive $ref {ref}")
            target: Any = spec
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            return _resolve_refs(spec, target, (*_seen, ref))
        return {key: _resolve_refs(spec, value, _seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_refs(spec, value, _seen) for value in node]
    return node
