"""Helpers beyond the 37 operations: ``run``, ``wait``, ``paginate`` and ``verify_webhook``.

They are functions of ``app.integrations.replicate`` like the operations (the sandbox knows
nothing about them), executed here in Python. Every HTTP request they make is an ordinary
operation sent through the account's client, so the limiter and the retry policy apply to
each one; a :class:`Session` counts the requests and collects their retries for
``CallOutcome.extra``.

Waiting (``wait``, and ``run`` unless ``wait = false``) first asks Replicate to hold a
``GET`` with ``Prefer: wait=N`` (N fitting the time left), then polls with exponential
backoff (0.5 s doubling to 5 s), sleeping with the provider's injected ``sleep``. It stops
at a terminal status (succeeded, failed, canceled, aborted) or at its deadline: its own
``timeout`` or the job's remaining wall clock, whichever comes first, and then returns the
prediction as it stands.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._catalog import Catalog, Operation
from ._client import ReplicateClient, Response
from ._errors import ArgumentError, ReplicateError
from ._jsonschema import conform
from ._names import APP_NAME, slug_for
from ._retry import RetryRecord
from ._webhooks import verify_webhook

__all__ = ["HELPERS", "TERMINAL_STATUSES", "Helper", "Session"]

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
FIRST_POLL_INTERVAL = 0.5
MAX_POLL_INTERVAL = 5.0
# Time kept back for the last GET when a deadline cuts a pause short.
POLL_RESERVE = 0.25
MIN_CANCEL_AFTER = 5
DEFAULT_MAX_PAGES = 100
# The simulator's stand-in for a version id, used in the reference's examples.
DEMO_VERSION_ID = "replicate-version-id"

_MODEL_REF = re.compile(r"^(?P<owner>[^/:\s]+)/(?P<name>[^/:\s]+)(?::(?P<version>[^/:\s]+))?$")
_VERSION_ID = re.compile(r"^[0-9a-fA-F]{64}$")


class Session:
    """The HTTP side of one helper call: one client, one deadline, counted requests."""

    def __init__(self, client: ReplicateClient, clock: Callable[[], float], deadline: float | None) -> None:
        self.client = client
        self.clock = clock
        self.deadline = deadline
        self.http_requests = 0
        self.http_status: int | None = None  # of the last response
        self.retries: list[RetryRecord] = []
        self.rate_limit_wait_ms = 0.0
        self.throttled = 0

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def call(self, operation: str, args: Mapping[str, Any], *, extra_headers: Mapping[str, str] | None = None) -> Any:
        """Perform one operation within the deadline; its value. Errors carry every
        request and retry of the session so far."""
        try:
            response: Response = self.client.call(
                operation, args, timeout=self.time_left(), extra_headers=extra_headers
            )
        except ReplicateError as exc:
            self.http_requests += exc.http_requests
            self.retries.extend(exc.retries)
            self.rate_limit_wait_ms += exc.rate_limit_wait_ms
            self.throttled += exc.throttled
            exc.http_requests, exc.retries = self.http_requests, list(self.retries)
            exc.rate_limit_wait_ms, exc.throttled = round(self.rate_limit_wait_ms, 3), self.throttled
            raise
        self.http_requests += response.http_requests
        self.http_status = response.http_status
        self.retries.extend(response.retries)
        self.rate_limit_wait_ms += response.rate_limit_wait_ms
        self.throttled += response.throttled
        return response.value


@dataclass(frozen=True)
class Context:
    """What a helper may use: the catalog, a session factory, the provider's clock and sleep."""

    catalog: Catalog
    session: Callable[[float | None], Session]
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    timeout: float | None  # the job's remaining wall clock


@dataclass(frozen=True)
class Helper:
    """One helper function: its Lua names, docs material and implementation."""

    short_name: str
    title: str
    kind: Literal["read", "write"]
    args_schema: Mapping[str, Any]
    description: str
    returns: str
    example: str
    http: str  # the requests it makes, for its docs page
    run: Callable[[Context, dict[str, Any]], tuple[Any, Session | None]] = field(repr=False)
    creates: bool = False  # it creates a prediction or training (see Operation.creates)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.short_name, slug_for(self.short_name))

    @property
    def label(self) -> str:
        return f"{APP_NAME}.{self.short_name}"


# --- run --------------------------------------------------------------------------------


def _run(ctx: Context, args: dict[str, Any]) -> tuple[Any, Session | None]:
    label = f"{APP_NAME}.run"
    operation, call_args = _run_request(args, label)
    wait = args.get("wait", True)
    own_timeout = args.get("timeout")
    limits = [own_timeout]
    if wait is not True and wait is not False:
        if wait <= 0:
            raise ArgumentError(
                f"argument 'wait' for {label} must be true, false or a positive number", argument="wait"
            )
        limits.append(wait)
    session = ctx.session(_deadline(ctx, *limits))
    if own_timeout is not None:
        call_args["Cancel-After"] = f"{max(MIN_CANCEL_AFTER, math.ceil(own_timeout))}s"
    if wait is not False:
        call_args["Prefer"] = "wait" if wait is True else f"wait={max(1, min(60, math.ceil(wait)))}"
    prediction = session.call(operation, call_args)
    if wait is not False:
        prediction = _wait_for(ctx, session, prediction, "get_prediction", args.get("interval"), prefer_first=False)
    return prediction, session


def _run_request(args: dict[str, Any], label: str) -> tuple[str, dict[str, Any]]:
    """The operation and arguments that create the prediction ``args["ref"]`` names."""
    ref = args["ref"].strip()
    body: dict[str, Any] = {"input": args.get("input", {})}
    for name in ("webhook", "webhook_events_filter"):
        if name in args:
            body[name] = args[name]
    match = _MODEL_REF.match(ref)
    if match and match.group("version") is None:
        return "create_model_prediction", {"model_owner": match["owner"], "model_name": match["name"], **body}
    if match:
        return "create_prediction", {"version": match["version"], **body}
    if _VERSION_ID.match(ref) or ref == DEMO_VERSION_ID:
        return "create_prediction", {"version": ref, **body}
    raise ArgumentError(
        f"argument 'ref' for {label} must be \"owner/name\" (an official model), "
        f'"owner/name:<version id>" or a bare 64-character version id, got {ref!r}',
        argument="ref",
    )


# --- wait -------------------------------------------------------------------------------


def _wait(ctx: Context, args: dict[str, Any]) -> tuple[Any, Session | None]:
    label = f"{APP_NAME}.wait"
    target = args["prediction"]
    operation = "get_prediction"
    if isinstance(target, Mapping):
        if not isinstance(target.get("id"), str) or not target["id"]:
            raise ArgumentError(
                f"argument 'prediction' for {label} must be a prediction (a table with an id) or its id",
                argument="prediction",
            )
        if "/trainings/" in str((target.get("urls") or {}).get("get", "")):
            operation = "get_training"
    elif not target:
        raise ArgumentError(f"argument 'prediction' for {label} cannot be empty", argument="prediction")
    session = ctx.session(_deadline(ctx, args.get("timeout")))
    if isinstance(target, Mapping) and target.get("status") in TERMINAL_STATUSES:
        return dict(target), session
    current = target if isinstance(target, Mapping) else {"id": target}
    prediction = _wait_for(ctx, session, current, operation, args.get("interval"), prefer_first=True)
    return prediction, session


def _wait_for(
    ctx: Context,
    session: Session,
    prediction: Any,
    operation: str,
    interval: float | None,
    *,
    prefer_first: bool,
) -> Any:
    """Poll until ``prediction`` is terminal or the session's deadline comes."""
    id_arg = "training_id" if operation == "get_training" else "prediction_id"
    if not isinstance(prediction, Mapping) or not isinstance(prediction.get("id"), str):
        return prediction  # nothing to poll (an unexpected answer is returned as it is)
    ident = {id_arg: prediction["id"]}
    if prefer_first and not _terminal(prediction):
        prediction = session.call(operation, ident, extra_headers={"Prefer": "wait"})
    pause = interval if interval is not None else FIRST_POLL_INTERVAL
    while not _terminal(prediction):
        left = session.time_left()
        if left is not None and left <= POLL_RESERVE:
            break
        step = pause if left is None else min(pause, left - POLL_RESERVE)
        if step > 0:
            ctx.sleep(step)
        if interval is None:
            pause = min(pause * 2, MAX_POLL_INTERVAL)
        prediction = session.call(operation, ident)
    return prediction


def _terminal(prediction: Any) -> bool:
    return isinstance(prediction, Mapping) and prediction.get("status") in TERMINAL_STATUSES


def _deadline(ctx: Context, *limits: float | None) -> float | None:
    given = [limit for limit in (*limits, ctx.timeout) if limit is not None]
    return ctx.clock() + min(given) if given else None


# --- paginate ---------------------------------------------------------------------------


def _paginate(ctx: Context, args: dict[str, Any]) -> tuple[Any, Session | None]:
    label = f"{APP_NAME}.paginate"
    operation = _paginated_operation(ctx.catalog, args["operation"], label)
    call_args = dict(args.get("args") or {})
    max_pages = args.get("max_pages", DEFAULT_MAX_PAGES)
    if max_pages < 1:
        raise ArgumentError(f"argument 'max_pages' for {label} must be at least 1", argument="max_pages")
    session = ctx.session(_deadline(ctx))
    results: list[Any] = []
    for _ in range(max_pages):
        page = session.call(operation.short_name, call_args)
        if not isinstance(page, Mapping):
            break
        results.extend(page.get("results") or [])
        next_url = page.get("next")
        if not isinstance(next_url, str) or not next_url:
            break
        call_args["cursor"] = next_url
    return results, session


def _paginated_operation(catalog: Catalog, name: str, label: str) -> Operation:
    try:
        operation = catalog.resolve(name)
    except ArgumentError as exc:
        raise ArgumentError(f"argument 'operation' for {label}: {exc}", argument="operation") from None
    if not operation.paginated or operation.kind != "read":  # paginate is a read: it never writes
        names = ", ".join(op.short_name for op in catalog if op.paginated)
        raise ArgumentError(
            f"argument 'operation' for {label}: {operation.short_name} does not return pages (paginated: {names})",
            argument="operation",
        )
    return operation


# --- verify_webhook ---------------------------------------------------------------------


def _verify_webhook(ctx: Context, args: dict[str, Any]) -> tuple[Any, Session | None]:
    valid = verify_webhook(args["headers"], args["body"], args["secret"], tolerance=args.get("tolerance"))
    return valid, None


# --- the table --------------------------------------------------------------------------

_SECONDS = {"type": "number", "minimum": 0}
_EVENTS = {"type": "array", "items": {"type": "string", "enum": ["start", "output", "logs", "completed"]}}

HELPERS: tuple[Helper, ...] = (
    Helper(
        short_name="run",
        title="Run a model and wait for its output",
        kind="write",
        args_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["ref"],
            "properties": {
                "ref": {
                    "type": "string",
                    "description": '"owner/name" (an official model), "owner/name:<version id>" or a bare version id.',
                },
                "input": {"type": "object", "description": "The model's input."},
                "wait": {
                    "type": ["boolean", "number"],
                    "description": "true (default): wait for the final prediction; false: return it as created; "
                    "a number: wait at most that many seconds.",
                },
                "timeout": {
                    **_SECONDS,
                    "description": "Stop waiting after this many seconds, and have Replicate cancel the "
                    "prediction then too (Cancel-After, at least 5 s).",
                },
                "interval": {
                    **_SECONDS,
                    "description": "Poll at this fixed interval instead of backing off from 0.5 s to 5 s.",
                },
                "webhook": {"type": "string", "description": "An HTTPS URL for webhooks about the prediction."},
                "webhook_events_filter": {**_EVENTS, "description": "Which events trigger webhooks."},
            },
        },
        description=(
            '"owner/name" runs an official model (POST /v1/models/{owner}/{name}/predictions); '
            '"owner/name:<version>" or a bare version id runs that version (POST /v1/predictions). '
            "It asks Replicate to hold the request (Prefer: wait), then polls until the prediction "
            "succeeded, failed, was canceled or aborted, or until its deadline: timeout, wait (a number) "
            "or the job's remaining wall clock, whichever comes first."
        ),
        returns="The prediction (status, output, error, metrics, ...); check status: a failed prediction is "
        "returned, not raised, and one still running when the deadline came is returned as it stands.",
        example='local prediction = app.integrations.replicate.run({ ref = "black-forest-labs/flux-schnell", '
        'input = { prompt = "a quiet forest trail" } })',
        http="POST /v1/predictions or /v1/models/{owner}/{name}/predictions, then GET /v1/predictions/{id}",
        run=_run,
        creates=True,
    ),
    Helper(
        short_name="wait",
        title="Wait for a prediction to finish",
        kind="read",
        args_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["prediction"],
            "properties": {
                "prediction": {
                    "type": ["object", "string"],
                    "description": "The prediction (or training) table, or a prediction id.",
                },
                "timeout": {
                    **_SECONDS,
                    "description": "Give up after this many seconds (default: the job's remaining wall clock).",
                },
                "interval": {
                    **_SECONDS,
                    "description": "Poll at this fixed interval instead of backing off from 0.5 s to 5 s.",
                },
            },
        },
        description=(
            "First a GET with Prefer: wait=N (N fitting the time left), then polling with exponential "
            "backoff (0.5 s doubling up to 5 s) until the status is succeeded, failed, canceled or aborted. "
            "Time spent waiting counts against the job's wall clock, not its instruction budget."
        ),
        returns="The prediction as it stands at the end; its status is not terminal when the timeout came first.",
        example='local done = app.integrations.replicate.wait({ prediction = "prediction-id", timeout = 30 })',
        http="GET /v1/predictions/{id} (or /v1/trainings/{id}), repeated",
        run=_wait,
    ),
    Helper(
        short_name="paginate",
        title="Fetch every page of a list",
        kind="read",
        args_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["operation"],
            "properties": {
                "operation": {"type": "string", "description": "A paginated function, e.g. list_predictions."},
                "args": {"type": "object", "description": "Its arguments (cursor included, to start later)."},
                "max_pages": {
                    "type": "integer",
                    "minimum": 1,
                    "description": f"Stop after this many pages (default {DEFAULT_MAX_PAGES}).",
                },
            },
        },
        description=(
            "Calls the function, then follows each page's next URL (as its cursor argument) until there "
            "is none or max_pages pages were fetched."
        ),
        returns="One list of every page's results, in order.",
        example='local all = app.integrations.replicate.paginate({ operation = "list_predictions", max_pages = 5 })',
        http="the operation's own request, once per page",
        run=_paginate,
    ),
    Helper(
        short_name="verify_webhook",
        title="Verify a webhook's signature",
        kind="read",
        args_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["headers", "body", "secret"],
            "properties": {
                "headers": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "The request's headers: webhook-id, webhook-timestamp, webhook-signature.",
                },
                "body": {"type": "string", "description": "The raw request body, exactly as received."},
                "secret": {"type": "string", "description": "The signing secret (whsec_...)."},
                "tolerance": {
                    **_SECONDS,
                    "description": "Also reject a webhook-timestamp further than this many seconds from now.",
                },
            },
        },
        description=(
            'Checks webhook-signature: HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" under the '
            "secret from get_default_webhook_secret. No HTTP request is made."
        ),
        returns="true when a signature matches (and the timestamp is within tolerance), false otherwise.",
        example="local ok = app.integrations.replicate.verify_webhook({ headers = request.headers, "
        'body = request.body, secret = "whsec_..." })',
        http="none",
        run=_verify_webhook,
    ),
)


def validate_helper_args(helper: Helper, args: Mapping[str, Any] | None) -> dict[str, Any]:
    """``args`` checked against the helper's schema (ArgumentError naming the problem)."""
    try:
        checked = conform(dict(args or {}), helper.args_schema, "", helper.label)
    except ArgumentError as exc:
        exc.operation = exc.operation or helper.short_name
        raise
    return dict(checked)
