"""Documentation pages generated from the catalog: one per function, plus the overview.

Examples use values the offline simulator knows (``prediction-id``, ``replicate/hello-world``,
``example-org/image-worker``) so that they run as written under ``--simulate``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._catalog import Catalog, Operation, Parameter
from ._names import APP_NAME, header_spellings

if TYPE_CHECKING:
    from ._helpers import Helper

__all__ = ["function_doc", "helper_doc", "lua_example", "overview_doc", "short_description"]

NAMESPACE = f"app.integrations.{APP_NAME}"

# Example values by argument name, then by (operationId, argument name).
EXAMPLE_VALUES: dict[str, Any] = {
    "prediction_id": "prediction-id",
    "training_id": "training-id",
    "file_id": "file-id",
    "model_owner": "replicate",
    "model_name": "hello-world",
    "version_id": "replicate-version-id",
    "deployment_owner": "example-org",
    "deployment_name": "image-worker",
    "collection_slug": "text-to-image",
    "owner": "luaq-sim",
    "signature": "signature",
    "destination": "example-org/hello-world-tuned",
    "hardware": "gpu-t4",
}
OPERATION_EXAMPLE_VALUES: dict[tuple[str, str], Any] = {
    ("models.predictions.create", "model_owner"): "black-forest-labs",
    ("models.predictions.create", "model_name"): "flux-schnell",
    ("models.predictions.create", "input"): {"prompt": "a quiet forest trail"},
    ("deployments.predictions.create", "input"): {"prompt": "a quiet forest trail"},
    ("deployments.create", "name"): "my-image-worker",
    ("deployments.create", "model"): "replicate/hello-world",
    ("deployments.create", "version"): "replicate-version-id",
    ("deployments.create", "max_instances"): 1,
    ("files.download", "expiry"): 1708515345,
    ("models.create", "owner"): "luaq-sim",
    ("trainings.create", "input"): {"train_data": "https://example.com/data.zip"},
    ("files.create", "content"): "data:text/plain;base64,aGVsbG8=",
    ("files.create", "filename"): "hello.txt",
    ("models.search", "body"): "image generation",
}
# Optional arguments worth showing in an example anyway.
EXTRA_EXAMPLE_ARGS: dict[str, tuple[str, ...]] = {"files.create": ("filename",)}

_DESCRIPTION_CHARS = 160
_NOISE = re.compile(
    r"^(example (curl )?request|example request body|the response will be|"
    r"the request will wait|for a complete overview)",
    re.IGNORECASE,
)


def function_doc(operation: Operation) -> str:
    """The full documentation page of one function."""
    lines = [
        f"# {APP_NAME}.{operation.short_name} — {operation.summary}",
        "",
        f"Lua: {NAMESPACE}.{operation.short_name}(args)",
        "Names: " + ", ".join(operation.names) + " (all call the same function; "
        f"{NAMESPACE}.<account>.{operation.short_name} uses a named account)",
        f"Operation: {operation.kind} ({operation.method} /v1{operation.path})",
        "",
        short_description(operation),
        "",
        *_parameters_section(operation),
        *_body_section(operation),
        "## Example",
        "",
        "```lua",
        lua_example(operation),
        "```",
    ]
    return "\n".join(lines).rstrip() + "\n"


def helper_doc(helper: Helper) -> str:
    """The documentation page of a helper (run, wait, paginate, verify_webhook)."""
    required = set(helper.args_schema.get("required", ()))
    rows = ["| name | type | required | description |", "|---|---|---|---|"]
    for name, schema in helper.args_schema.get("properties", {}).items():
        rows.append(
            f"| {name} | {_type(schema)} | {'yes' if name in required else 'no'} | "
            f"{_cell_all(schema.get('description'))} |"
        )
    lines = [
        f"# {APP_NAME}.{helper.short_name} — {helper.title}",
        "",
        f"Lua: {NAMESPACE}.{helper.short_name}(args)",
        "Names: " + ", ".join(helper.names) + " (both call the same function; "
        f"{NAMESPACE}.<account>.{helper.short_name} uses a named account)",
        f"Operation: {helper.kind} (a luaq helper; HTTP: {helper.http})",
        "",
        helper.description,
        "",
        "## Arguments",
        "",
        *rows,
        "",
        "## Returns",
        "",
        helper.returns,
        "",
        "## Example",
        "",
        "```lua",
        helper.example,
        "```",
    ]
    return "\n".join(lines).rstrip() + "\n"


def overview_doc(catalog: Catalog, accounts: Sequence[str], helpers: Sequence[Helper] = ()) -> str:
    """The namespace page: name forms, accounts, calling conventions, every function."""
    width_short = max(len(op.short_name) for op in catalog) + 2
    width_long = max(len(op.long_name) for op in catalog) + 2
    functions = [
        f"{op.short_name:<{width_short}}{op.long_name:<{width_long}}{op.kind:<7}{op.summary}" for op in catalog
    ]
    helper_lines = [f"{h.short_name:<{width_short}}{h.names[-1]:<{width_long}}{h.kind:<7}{h.title}" for h in helpers]
    if helper_lines:
        helper_lines = [
            "",
            "## Helpers",
            "",
            "Beyond the operations (each also callable as replicate_<name>):",
            "",
            f"{'name':<{width_short}}{'slug':<{width_long}}{'kind':<7}summary",
            *helper_lines,
        ]
    return "\n".join(
        [
            "# Replicate Lua Reference",
            "",
            f"Namespace: {NAMESPACE}",
            f"Accounts: {', '.join(accounts)} ({NAMESPACE}.<account>.<function>; "
            "without an account, `default` is used)",
            "",
            "Every function answers to three names: the long name derived from the "
            "operation's summary (get_authenticated_account), the short documented name "
            "(get_account) and the full slug (replicate_get_account).",
            "",
            "## Calling conventions",
            "",
            f'- One table argument: {NAMESPACE}.get_prediction({{ prediction_id = "prediction-id" }}).',
            "- Path and query parameters by name; headers (Prefer, Cancel-After) by exact "
            "name, snake_case (cancel_after) or lower-case (cancel-after).",
            "- The request body as body = { ... } or as the remaining fields.",
            "- Arguments are checked before any request: a missing or unknown argument is an "
            "error naming it, with the nearest valid name.",
            "- JSON responses come back as tables (lists are 1-based); other responses as "
            "{ body = <string>, content_type = <string> }; empty responses as {}.",
            "- API errors are catchable (pcall) error values with status, title, detail and "
            'operation; their text reads like "replicate.get_prediction: 404 Not Found: ...".',
            "- read functions (GET/QUERY) always run; write functions need the job to allow writes (luaq --force).",
            "- create_file content is the bytes themselves, a data: URL, or the name of a file "
            "attached at submission; workers never read host paths.",
            "- Paginated functions take cursor = page.next to fetch the next page; paginate "
            '{ operation = "list_predictions" } fetches them all.',
            "- Reads are retried on 429, 5xx and network errors, writes only when Replicate provably "
            "did not act (429, connection refused); waits honour retry_after and never outlast the job.",
            "",
            "## Functions",
            "",
            f"{'short name':<{width_short}}{'long name':<{width_long}}{'kind':<7}summary",
            *functions,
            *helper_lines,
            "",
            f'Read one function\'s page with docs.read("{APP_NAME}.<name>").',
            "",
        ]
    )


def short_description(operation: Operation) -> str:
    """The first meaningful paragraph of the description, without cURL examples."""
    text = re.sub(r"```.*?```", "\n\n", operation.description, flags=re.DOTALL)
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(_plain(paragraph).split())
        if paragraph and not _NOISE.match(paragraph) and not paragraph.endswith(":"):
            return paragraph
    return operation.summary + "."


def lua_example(operation: Operation) -> str:
    """A Lua call built from the required arguments (runs as written in the simulator)."""
    args = _example_args(operation)
    call = f"local result = {NAMESPACE}.{operation.short_name}("
    one_line = f"{call}{_lua(args)})"
    if len(one_line) <= 100 or not args:
        return one_line
    fields = [f"  {_lua_key(k)} = {_lua(v)}," for k, v in args.items()]
    return "\n".join([call + "{", *fields, "})"])


def _parameters_section(operation: Operation) -> list[str]:
    if not operation.parameters:
        return [
            "## Parameters",
            "",
            f"This function takes no parameters: {operation.short_name}({{}}).",
            "",
        ]
    rows = ["| name | in | type | required | description |", "|---|---|---|---|---|"]
    for p in operation.parameters:
        description = _cell(p.description or p.schema.get("description"))
        rows.append(
            f"| {_param_names(p)} | {p.location} | {_type(p.schema)} | "
            f"{'yes' if p.required else 'no'} | {description} |"
        )
    return ["## Parameters", "", *rows, ""]


def _body_section(operation: Operation) -> list[str]:
    body = operation.body
    if body is None:
        return []
    if not body.is_object:
        return [
            f"## Body ({body.content_type})",
            "",
            "Pass it as body = <string>.",
            "",
            "| name | type | required | description |",
            "|---|---|---|---|",
            f"| body | {_type(body.schema)} | {'yes' if body.required else 'no'} | "
            f"{_cell(body.schema.get('description'))} |",
            "",
        ]
    rows = ["| name | type | required | description |", "|---|---|---|---|"]
    required = set(body.required_fields)
    for name, schema in body.fields.items():
        rows.append(
            f"| {name} | {_type(schema)} | {'yes' if name in required else 'no'} | {_cell(schema.get('description'))} |"
        )
    intro = "Pass the fields as body = { ... } or directly in the argument table."
    if body.content_type == "multipart/form-data":
        intro += (
            " `content` is the bytes themselves, a data: URL, or the name of a file "
            "attached to the job; `filename` and `type` default from it."
        )
    return [f"## Body fields ({body.content_type})", "", intro, "", *rows, ""]


def _param_names(p: Parameter) -> str:
    if p.location == "header":
        return " / ".join(header_spellings(p.name))
    return p.name


def _example_args(operation: Operation) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for p in operation.parameters:
        if p.required:
            args[p.name] = _example_value(operation, p.name, p.schema)
    body = operation.body
    if body is None:
        return args
    if not body.is_object:
        args["body"] = _example_value(operation, "body", body.schema)
        return args
    wanted = (*body.required_fields, *EXTRA_EXAMPLE_ARGS.get(operation.operation_id, ()))
    for name in dict.fromkeys(wanted):
        args[name] = _example_value(operation, name, body.fields.get(name, {}))
    return args


def _example_value(operation: Operation, name: str, schema: Mapping[str, Any]) -> Any:
    key = (operation.operation_id, name)
    if key in OPERATION_EXAMPLE_VALUES:
        return OPERATION_EXAMPLE_VALUES[key]
    if name in EXAMPLE_VALUES:
        return EXAMPLE_VALUES[name]
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    match schema.get("type"):
        case "integer" | "number":
            return schema.get("minimum", 1)
        case "boolean":
            return True
        case "object":
            return {}
        case "array":
            return []
    return name.replace("_", "-")


def _lua(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "json.null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _lua_string(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_lua_key(k)} = {_lua(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Iterable):
        items = [_lua(v) for v in value]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return _lua_string(str(value))


def _lua_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_]\w*", key) else f"[{_lua_string(key)}]"


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        kind = f"array of {_type(schema.get('items', {}))}"
    elif schema.get("format") == "binary":
        kind = "string (bytes)"
    elif schema.get("format"):
        kind = f"{kind} ({schema['format']})"
    if schema.get("enum"):
        kind += " (" + " \\| ".join(str(v) for v in schema["enum"]) + ")"
    if schema.get("nullable"):
        kind += " or null"
    return kind


def _plain(text: str) -> str:
    """Markdown links reduced to their text."""
    return re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)


def _cell_all(text: str | None) -> str:
    """A table cell holding all of ``text`` (for descriptions written for the cell)."""
    return " ".join((text or "").split()).replace("|", "\\|")


def _cell(text: str | None) -> str:
    if not text:
        return ""
    text = " ".join(_plain(re.sub(r"```.*?```", " ", text, flags=re.DOTALL)).split())
    sentence = re.match(r"(.+?[.!?])(\s|$)", text)
    if sentence:
        text = sentence.group(1)
    if len(text) > _DESCRIPTION_CHARS:
        text = text[: _DESCRIPTION_CHARS - 1] + "…"
    return text.replace("|", "\\|")
