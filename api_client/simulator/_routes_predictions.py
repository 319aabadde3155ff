"""Predictions, trainings and deployments."""

from __future__ import annotations

import math
import re
from typing import Any

from ._access import (
    Context,
    deployment_or_404,
    job_or_404,
    model_or_404,
    owners,
    require_owner,
    visible_jobs,
)
from ._http import (
    Problem,
    SimRequest,
    SimResponse,
    WaitFor,
    json_response,
    not_found,
    page,
    parse_timestamp,
    problem,
    unprocessable,
)
from ._render import deployment_json, job_json
from ._state import TERMINAL, Deployment, Job, Model

PREDICTION_FIELDS = ("input", "stream", "webhook", "webhook_events_filter")
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
MAX_WAIT = 60
MIN_CANCEL_AFTER = 5.0
INVALID_VERSION = (
    "Invalid version or not permitted",
    "The specified version does not exist (or perhaps you don't have permission to use it?)",
)


# --- predictions ---------------------------------------------------------------------


def create_prediction(ctx: Context, request: SimRequest) -> SimResponse | WaitFor:
    body = _prediction_body(request, with_version=True)
    model, version = _resolve_version(ctx, request, body["version"])
    return _start(ctx, request, body, model, version)


def create_model_prediction(ctx: Context, request: SimRequest) -> SimResponse | WaitFor:
    owner, name = request.params["model_owner"], request.params["model_name"]
    model = model_or_404(ctx, request, owner, name)
    body = _prediction_body(request, with_version=False)
    if not model.official:
        # Only official models run by name; others answer as for an unknown version
        # (replicate-python issue #320).
        raise Problem(problem(422, INVALID_VERSION[1], INVALID_VERSION[0]))
    return _start(ctx, request, body, model, "hidden")


def create_deployment_prediction(ctx: Context, request: SimRequest) -> SimResponse | WaitFor:
    owner, name = request.params["deployment_owner"], request.params["deployment_name"]
    deployment = deployment_or_404(ctx, request, owner, name)
    body = _prediction_body(request, with_version=False)
    model = ctx.state.models[deployment.model]
    return _start(ctx, request, body, model, deployment.version, deployment=f"{owner}/{name}")


def list_predictions(ctx: Context, request: SimRequest) -> SimResponse:
    jobs = visible_jobs(ctx, request, "prediction")
    after = _query_time(request, "created_after")
    before = _query_time(request, "created_before")
    source = request.query.get("source")
    if source is not None and source != "web":
        raise Problem(problem(400, "source must be 'web'"))
    jobs = [
        j
        for j in jobs
        if (after is None or j.created_at > after)
        and (before is None or j.created_at < before)
        and (source is None or j.source == source)
    ]
    return _job_page(ctx, request, "/predictions", jobs)


def get_prediction(ctx: Context, request: SimRequest) -> SimResponse | WaitFor:
    job = job_or_404(ctx, request, "prediction", request.params["prediction_id"])
    return _get_job(ctx, request, job)


def cancel_prediction(ctx: Context, request: SimRequest) -> SimResponse:
    job = job_or_404(ctx, request, "prediction", request.params["prediction_id"])
    return _cancel(ctx, request, job)


# --- trainings -----------------------------------------------------------------------


def create_training(ctx: Context, request: SimRequest) -> SimResponse:
    owner, name = request.params["model_owner"], request.params["model_name"]
    model = model_or_404(ctx, request, owner, name)
    version = model.version(request.params["version_id"])
    if version is None:
        raise Problem(not_found())
    body = request.json_body()
    if not isinstance(body, dict):
        raise Problem(unprocessable([("(root)", "Invalid type. Expected: object")]))
    errors = [(f, f"{f} is required") for f in ("destination", "input") if f not in body]
    if "input" in body and not isinstance(body["input"], dict):
        errors.append(("input", "Invalid type. Expected: object"))
    if errors:
        raise Problem(unprocessable(errors))
    destination = ctx.state.models.get(str(body["destination"]))
    if destination is None or destination.owner not in owners(request.user):
        raise Problem(problem(404, "The specified training destination does not exist"))
    job = _new_job(ctx, request, "training", model, version.id, body["input"])
    job.destination = destination.ref
    job.webhook = body.get("webhook")
    return json_response(201, job_json(job, ctx.now(), request.base_url))


def list_trainings(ctx: Context, request: SimRequest) -> SimResponse:
    return _job_page(ctx, request, "/trainings", visible_jobs(ctx, request, "training"))


def get_training(ctx: Context, request: SimRequest) -> SimResponse | WaitFor:
    job = job_or_404(ctx, request, "training", request.params["training_id"])
    return _get_job(ctx, request, job)


def cancel_training(ctx: Context, request: SimRequest) -> SimResponse:
    job = job_or_404(ctx, request, "training", request.params["training_id"])
    return _cancel(ctx, request, job)


# --- deployments ---------------------------------------------------------------------


def list_deployments(ctx: Context, request: SimRequest) -> SimResponse:
    deployments = [d for d in ctx.state.deployments.values() if d.owner in owners(request.user)]
    deployments.sort(key=lambda d: d.created_at, reverse=True)
    return page(request, "/deployments", [deployment_json(d) for d in deployments], ctx.page_size)


def get_deployment(ctx: Context, request: SimRequest) -> SimResponse:
    owner, name = request.params["deployment_owner"], request.params["deployment_name"]
    return json_response(200, deployment_json(deployment_or_404(ctx, request, owner, name)))


def create_deployment(ctx: Context, request: SimRequest) -> SimResponse:
    body = request.json_body()
    required = ("name", "model", "version", "hardware", "min_instances", "max_instances")
    errors = _deployment_errors(ctx, body, required)
    if errors:
        raise Problem(unprocessable(errors))
    model = ctx.state.models.get(body["model"])
    if model is None or model.version(body["version"]) is None:
        raise Problem(problem(404, "The specified model or version does not exist"))
    key = f"{request.user}/{body['name']}"
    if key in ctx.state.deployments:
        raise Problem(problem(409, "A deployment with this name already exists."))
    deployment = Deployment(
        owner=request.user,
        name=body["name"],
        model=model.ref,
        version=model.version(body["version"]).id,
        hardware=body["hardware"],
        min_instances=body["min_instances"],
        max_instances=body["max_instances"],
        created_at=ctx.now(),
        created_by=request.user,
    )
    ctx.state.deployments[key] = deployment
    return json_response(200, deployment_json(deployment))


def update_deployment(ctx: Context, request: SimRequest) -> SimResponse:
    owner, name = request.params["deployment_owner"], request.params["deployment_name"]
    deployment = deployment_or_404(ctx, request, owner, name)
    body = request.json_body() or {}
    errors = _deployment_errors(ctx, body, ())
    if errors:
        raise Problem(unprocessable(errors))
    if "version" in body:
        version = ctx.state.models[deployment.model].version(body["version"])
        if version is None:
            raise Problem(unprocessable([("version", "version does not exist")]))
        deployment.version = version.id
    for field in ("hardware", "min_instances", "max_instances"):
        if field in body:
            setattr(deployment, field, body[field])
    deployment.release += 1
    deployment.created_at = ctx.now()
    deployment.created_by = request.user
    return json_response(200, deployment_json(deployment))


def delete_deployment(ctx: Context, request: SimRequest) -> SimResponse:
    owner, name = request.params["deployment_owner"], request.params["deployment_name"]
    deployment = deployment_or_404(ctx, request, owner, name)
    require_owner(request, deployment.owner, "deployment")
    del ctx.state.deployments[f"{owner}/{name}"]
    return SimResponse(204, {}, b"")


ROUTES = [
    ("POST", "/predictions", create_prediction),
    ("GET", "/predictions", list_predictions),
    ("GET", "/predictions/{prediction_id}", get_prediction),
    ("POST", "/predictions/{prediction_id}/cancel", cancel_prediction),
    ("POST", "/models/{model_owner}/{model_name}/predictions", create_model_prediction),
    ("POST", "/models/{model_owner}/{model_name}/versions/{version_id}/trainings", create_training),
    ("GET", "/trainings", list_trainings),
    ("GET", "/trainings/{training_id}", get_training),
    ("POST", "/trainings/{training_id}/cancel", cancel_training),
    ("GET", "/deployments", list_deployments),
    ("POST", "/deployments", create_deployment),
    ("GET", "/deployments/{deployment_owner}/{deployment_name}", get_deployment),
    ("PATCH", "/deployments/{deployment_owner}/{deployment_name}", update_deployment),
    ("DELETE", "/deployments/{deployment_owner}/{deployment_name}", delete_deployment),
    (
        "POST",
        "/deployments/{deployment_owner}/{deployment_name}/predictions",
        create_deployment_prediction,
    ),
]


# --- helpers -------------------------------------------------------------------------


def _prediction_body(request: SimRequest, *, with_version: bool) -> dict[str, Any]:
    """The request body checked like Replicate's PredictionRequest schema
    (``additionalProperties: false``)."""
    body = request.json_body()
    if not isinstance(body, dict):
        raise Problem(unprocessable([("(root)", "Invalid type. Expected: object")]))
    allowed = (*PREDICTION_FIELDS, "version") if with_version else PREDICTION_FIELDS
    errors = [("(root)", f"Additional property {key} is not allowed") for key in body if key not in allowed]
    required = ("version", "input") if with_version else ("input",)
    errors += [("(root)", f"{key} is required") for key in required if key not in body]
    if "input" in body and not isinstance(body["input"], dict):
        errors.append(("input", "Invalid type. Expected: object"))
    events = body.get("webhook_events_filter", [])
    if not isinstance(events, list) or any(e not in WEBHOOK_EVENTS for e in events):
        errors.append(("webhook_events_filter", f"must be a list of {', '.join(WEBHOOK_EVENTS)}"))
    if errors:
        raise Problem(unprocessable(errors))
    return body


def _resolve_version(ctx: Context, request: SimRequest, ref: Any) -> tuple[Model, str]:
    """A ``version`` field (``owner/name``, ``owner/name:id`` or a bare id) resolved."""
    invalid = Problem(problem(422, INVALID_VERSION[1], INVALID_VERSION[0]))
    if not isinstance(ref, str):
        raise invalid
    model_ref, _, version_id = ref.partition(":")
    if "/" in model_ref:
        model = ctx.state.models.get(model_ref)
        if model is None or (model.visibility != "public" and model.owner != request.user):
            raise invalid
        if not version_id:
            if not model.official:
                raise invalid
            return model, "hidden"
        version = model.version(version_id)
        if version is None:
            raise invalid
        return model, version.id
    found = ctx.state.find_version(ref)
    if found is None or found[0].official:
        raise invalid
    return found[0], found[1].id


def _start(
    ctx: Context,
    request: SimRequest,
    body: dict[str, Any],
    model: Model,
    version: str,
    deployment: str | None = None,
) -> SimResponse | WaitFor:
    _check_model_input(model, body["input"])
    deadline_after = _cancel_after(request.headers.get("cancel-after"))
    job = _new_job(ctx, request, "prediction", model, version, body["input"])
    job.deployment = deployment
    job.webhook = body.get("webhook")
    if deadline_after is not None:
        job.deadline = job.created_at + deadline_after
    model.run_count += 1
    wait = _prefer_wait(request.headers.get("prefer"))
    if wait is not None:
        return WaitFor(job.id, wait, 201, {"Preference-Applied": "wait"})
    return json_response(201, job_json(job, ctx.now(), request.base_url))


def _new_job(ctx, request, kind, model: Model, version: str, inputs: dict[str, Any]) -> Job:
    job = Job(
        id=ctx.state.new_id(),
        kind=kind,
        owner=request.user,
        model=model.ref,
        model_kind=model.kind,
        version=version,
        input=inputs,
        created_at=ctx.now(),
        duration=ctx.prediction_seconds,
    )
    if ctx.keep_queued and kind == "prediction":
        job.queued_until = math.inf
    ctx.state.jobs[job.id] = job
    return job


def _get_job(ctx: Context, request: SimRequest, job: Job) -> SimResponse | WaitFor:
    """The job as it stands; with ``Prefer: wait[=n]`` held until it finishes (or n s)."""
    wait = _prefer_wait(request.headers.get("prefer"))
    if wait is not None and job.status_at(ctx.now()) not in TERMINAL:
        return WaitFor(job.id, wait, 200, {"Preference-Applied": "wait"})
    return json_response(200, job_json(job, ctx.now(), request.base_url))


def _cancel(ctx: Context, request: SimRequest, job: Job) -> SimResponse:
    now = ctx.now()
    if job.status_at(now) not in TERMINAL:
        job.canceled_at = now
    return json_response(200, job_json(job, now, request.base_url))


def _job_page(ctx: Context, request: SimRequest, path: str, jobs: list[Job]) -> SimResponse:
    now = ctx.now()
    return page(request, path, [job_json(j, now, request.base_url) for j in jobs], ctx.page_size)


def _check_model_input(model: Model, inputs: dict[str, Any]) -> None:
    if not model.versions:
        return
    schema = model.versions[0].openapi_schema["components"]["schemas"]["Input"]
    errors = [("input", f"{name} is required") for name in schema["required"] if name not in inputs]
    for name, value in inputs.items():
        expected = schema["properties"].get(name, {}).get("type")
        if expected == "string" and not isinstance(value, str):
            errors.append((f"input.{name}", "Invalid type. Expected: string"))
        if expected == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            errors.append((f"input.{name}", "Invalid type. Expected: integer"))
    if errors:
        raise Problem(unprocessable(errors))


def _prefer_wait(value: str | None) -> float | None:
    """Seconds to hold the request for ``Prefer: wait[=n]``; None when not asked."""
    match = re.fullmatch(r"\s*wait(?:=(\d+))?\s*", value or "")
    if not match:
        return None
    seconds = int(match.group(1) or MAX_WAIT)
    return float(min(seconds, MAX_WAIT)) if seconds > 0 else None


def _cancel_after(value: str | None) -> float | None:
    """``Cancel-After`` (``30``, ``30s``, ``5m``, ``1h30m45s``) in seconds."""
    if value is None:
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        seconds = float(text)
    else:
        match = re.fullmatch(r"(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text)
        if not match:
            raise Problem(problem(400, f"Invalid Cancel-After duration: {value!r}"))
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds < MIN_CANCEL_AFTER:
        raise Problem(problem(400, "Cancel-After must be at least 5 seconds"))
    return seconds


def _query_time(request: SimRequest, name: str) -> float | None:
    value = request.query.get(name)
    if value is None:
        return None
    parsed = parse_timestamp(value)
    if parsed is None:
        raise Problem(problem(400, f"{name} must be an ISO 8601 date-time"))
    return parsed


def _deployment_errors(ctx: Context, body: Any, required: tuple[str, ...]) -> list[tuple[str, str]]:
    if not isinstance(body, dict):
        return [("(root)", "Invalid type. Expected: object")]
    errors = [("(root)", f"{name} is required") for name in required if name not in body]
    skus = {h["sku"] for h in ctx.state.hardware}
    if "hardware" in body and body["hardware"] not in skus:
        errors.append(("hardware", f"must be one of {', '.join(sorted(skus))}"))
    for name, high in (("min_instances", 5), ("max_instances", 20)):
        value = body.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
            errors.append((name, f"must be an integer between 0 and {high}"))
    for name in ("name", "model", "version"):
        if name in body and not isinstance(body[name], str):
            errors.append((name, "Invalid type. Expected: string"))
    return errors
