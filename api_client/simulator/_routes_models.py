"""Models, versions, collections, hardware and search."""

from __future__ import annotations

from typing import Any

from ._access import Context, model_or_404, owners, require_owner
from ._data import input_schema
from ._http import (
    Problem,
    SimRequest,
    SimResponse,
    json_response,
    not_found,
    page,
    problem,
    unprocessable,
)
from ._render import collection_item_json, collection_json, job_json, model_json, version_json
from ._state import Job, Model

MODEL_FIELDS = ("description", "github_url", "paper_url", "license_url", "cover_image_url")
UPDATABLE_FIELDS = (
    "description",
    "readme",
    "github_url",
    "paper_url",
    "weights_url",
    "license_url",
)
OFFICIAL_VERSIONS_DETAIL = "This model is an official model and does not expose a list of versions."
DOC_PAGES = [
    {
        "name": "Create a prediction",
        "href": "https://replicate.com/docs/topics/predictions/create-a-prediction",
    },
    {"name": "Official models", "href": "https://replicate.com/docs/topics/models/official-models"},
    {"name": "Rate limits", "href": "https://replicate.com/docs/topics/predictions/rate-limits"},
    {"name": "Webhooks", "href": "https://replicate.com/docs/topics/webhooks"},
]


def list_models(ctx: Context, request: SimRequest) -> SimResponse:
    sort_by = request.query.get("sort_by", "latest_version_created_at")
    direction = request.query.get("sort_direction", "desc")
    if sort_by not in ("model_created_at", "latest_version_created_at"):
        raise Problem(problem(400, f"Invalid sort_by: {sort_by!r}"))
    if direction not in ("asc", "desc"):
        raise Problem(problem(400, f"Invalid sort_direction: {direction!r}"))

    def key(model: Model) -> float:
        if sort_by == "model_created_at" or not model.versions:
            return model.created_at
        return model.versions[0].created_at

    models = sorted(_public(ctx), key=key, reverse=direction == "desc")
    return page(request, "/models", [model_json(m) for m in models], ctx.page_size)


def search_models(ctx: Context, request: SimRequest) -> SimResponse:
    query = request.body.decode("utf-8", "replace").strip()
    if not query:
        raise Problem(problem(400, "A search query is required in the request body."))
    scored = [(score, m) for m in _public(ctx) if (score := _score(m, query)) > 0]
    scored.sort(key=lambda item: (-item[0], item[1].ref))
    return page(request, "/models", [model_json(m) for _, m in scored], ctx.page_size)


def get_model(ctx: Context, request: SimRequest) -> SimResponse:
    return json_response(200, model_json(_model(ctx, request)))


def create_model(ctx: Context, request: SimRequest) -> SimResponse:
    body = request.json_body()
    if not isinstance(body, dict):
        raise Problem(unprocessable([("(root)", "Invalid type. Expected: object")]))
    errors = [
        ("(root)", f"{name} is required") for name in ("owner", "name", "visibility", "hardware") if name not in body
    ]
    if body.get("visibility", "public") not in ("public", "private"):
        errors.append(("visibility", "must be one of public, private"))
    skus = {h["sku"] for h in ctx.state.hardware}
    if "hardware" in body and body["hardware"] not in skus:
        errors.append(("hardware", f"must be one of {', '.join(sorted(skus))}"))
    if errors:
        raise Problem(unprocessable(errors))
    if body["owner"] not in owners(request.user):
        raise Problem(problem(403, "The owner must be the user or organization making the request."))
    ref = f"{body['owner']}/{body['name']}"
    if ref in ctx.state.models:
        raise Problem(problem(409, "A model with that name already exists."))
    model = Model(
        owner=body["owner"],
        name=str(body["name"]),
        description=body.get("description"),
        kind="hello",
        created_at=ctx.now(),
        visibility=body["visibility"],
        hardware=body["hardware"],
    )
    for field in MODEL_FIELDS:
        if field in body:
            setattr(model, field, body[field])
    ctx.state.add_model(model)
    return json_response(201, model_json(model))


def update_model(ctx: Context, request: SimRequest) -> SimResponse:
    model = _model(ctx, request)
    require_owner(request, model.owner, "model")
    body = request.json_body() or {}
    if not isinstance(body, dict):
        raise Problem(unprocessable([("(root)", "Invalid type. Expected: object")]))
    for field in UPDATABLE_FIELDS:
        if field in body:
            setattr(model, field, body[field])
    return json_response(200, model_json(model))


def delete_model(ctx: Context, request: SimRequest) -> SimResponse:
    model = _model(ctx, request)
    require_owner(request, model.owner, "model")
    if model.visibility != "private":
        raise Problem(problem(403, "You can only delete private models."))
    if model.versions:
        raise Problem(problem(409, "You can only delete models that have no versions."))
    del ctx.state.models[model.ref]
    return SimResponse(204, {}, b"")


def list_model_examples(ctx: Context, request: SimRequest) -> SimResponse:
    model = _model(ctx, request)
    examples = []
    if model.versions and not model.official:
        example = _example(ctx, model)
        examples.append(job_json(example, ctx.now(), request.base_url))
    path = f"/models/{model.ref}/examples"
    return page(request, path, examples, ctx.page_size)


def get_model_readme(ctx: Context, request: SimRequest) -> SimResponse:
    model = _model(ctx, request)
    if not model.readme:
        raise Problem(not_found())
    return SimResponse(200, {"Content-Type": "text/plain; charset=utf-8"}, model.readme.encode())


def list_model_versions(ctx: Context, request: SimRequest) -> SimResponse:
    model = _model(ctx, request)
    if model.official:
        raise Problem(problem(404, OFFICIAL_VERSIONS_DETAIL, "Not found"))
    versions = [version_json(v) for v in model.versions]
    return page(request, f"/models/{model.ref}/versions", versions, ctx.page_size)


def get_model_version(ctx: Context, request: SimRequest) -> SimResponse:
    model = _model(ctx, request)
    version = model.version(request.params["version_id"])
    if version is None:
        raise Problem(not_found())
    return json_response(200, version_json(version))


def delete_model_version(ctx: Context, request: SimRequest) -> SimResponse:
    model = _model(ctx, request)
    version = model.version(request.params["version_id"])
    if version is None:
        raise Problem(not_found())
    require_owner(request, model.owner, "model")
    if model.visibility != "private":
        raise Problem(problem(403, "You can only delete versions from private models."))
    model.versions.remove(version)
    return SimResponse(202, {}, b"")


def list_collections(ctx: Context, request: SimRequest) -> SimResponse:
    items = [collection_item_json(c) for c in ctx.state.collections.values()]
    return page(request, "/collections", items, ctx.page_size)


def get_collection(ctx: Context, request: SimRequest) -> SimResponse:
    collection = ctx.state.collections.get(request.params["collection_slug"])
    if collection is None:
        raise Problem(not_found())
    models = [ctx.state.models[ref] for ref in collection.models if ref in ctx.state.models]
    return json_response(200, collection_json(collection, models))


def list_hardware(ctx: Context, request: SimRequest) -> SimResponse:
    return json_response(200, ctx.state.hardware)


def search(ctx: Context, request: SimRequest) -> SimResponse:
    query = request.query.get("query", "").strip()
    if not query:
        # The real endpoint answers plain JSON here, not problem+json.
        return json_response(400, {"detail": 'Query parameter "query" is required'})
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 50:
        return json_response(400, {"detail": "limit must be between 1 and 50"})
    scored = sorted(
        ((s, m) for m in _public(ctx) if (s := _score(m, query)) > 0),
        key=lambda item: (-item[0], item[1].ref),
    )[:limit]
    top = max((s for s, _ in scored), default=1)
    words = query.lower().split()
    return json_response(
        200,
        {
            "query": query,
            "models": [
                {
                    "model": model_json(m),
                    "metadata": {
                        "generated_description": m.description,
                        "tags": [m.kind, "official" if m.official else "community"],
                        "score": round(s / top, 3),
                    },
                }
                for s, m in scored
            ],
            "collections": [
                {**collection_item_json(c), "models": list(c.models)}
                for c in ctx.state.collections.values()
                if any(w in f"{c.name} {c.description} {c.slug}".lower() for w in words)
            ][:limit],
            "pages": [p for p in DOC_PAGES if any(w in p["name"].lower() for w in words)],
        },
    )


ROUTES = [
    ("GET", "/models", list_models),
    ("QUERY", "/models", search_models),
    ("POST", "/models", create_model),
    ("GET", "/models/{model_owner}/{model_name}", get_model),
    ("PATCH", "/models/{model_owner}/{model_name}", update_model),
    ("DELETE", "/models/{model_owner}/{model_name}", delete_model),
    ("GET", "/models/{model_owner}/{model_name}/examples", list_model_examples),
    ("GET", "/models/{model_owner}/{model_name}/readme", get_model_readme),
    ("GET", "/models/{model_owner}/{model_name}/versions", list_model_versions),
    ("GET", "/models/{model_owner}/{model_name}/versions/{version_id}", get_model_version),
    ("DELETE", "/models/{model_owner}/{model_name}/versions/{version_id}", delete_model_version),
    ("GET", "/collections", list_collections),
    ("GET", "/collections/{collection_slug}", get_collection),
    ("GET", "/hardware", list_hardware),
    ("GET", "/search", search),
]


def _model(ctx: Context, request: SimRequest) -> Model:
    return model_or_404(ctx, request, request.params["model_owner"], request.params["model_name"])


def _public(ctx: Context) -> list[Model]:
    return [m for m in ctx.state.models.values() if m.visibility == "public"]


def _score(model: Model, query: str) -> int:
    text = f"{model.ref} {model.description or ''} {model.kind}".lower()
    if model.kind in ("image", "video"):
        text += f" {model.kind} generation text-to-{model.kind}"
    return sum(text.count(word) for word in query.lower().split())


def _example(ctx: Context, model: Model) -> Job:
    """The model's example prediction: finished, made when the version was pushed."""
    version = model.versions[0]
    schema = input_schema(model.kind)["components"]["schemas"]["Input"]
    inputs: dict[str, Any] = {
        name: "Alice" if name == "text" else "an astronaut riding a horse" for name in schema["required"]
    }
    return Job(
        id=f"example-{model.name}",
        kind="prediction",
        owner=None,
        model=model.ref,
        model_kind=model.kind,
        version=version.id,
        input=inputs,
        created_at=version.created_at,
        duration=1.0,
        source="web",
    )
