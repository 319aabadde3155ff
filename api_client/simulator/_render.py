"""Records as Replicate's JSON shapes (modelled on replicate-observed-responses.json)."""

from __future__ import annotations

import hashlib
from typing import Any

from ._http import timestamp
from ._state import TERMINAL, Collection, Deployment, File, Job, Model, Version

WEB_URL = "https://replicate.com"
DELIVERY_URL = "https://replicate.delivery/xezq"
STREAM_URL = "https://stream.replicate.com/v1/files"


def account_json(username: str) -> dict[str, Any]:
    return {
        "type": "organization" if username == "example-org" else "user",
        "username": username,
        "name": f"{username} (luaq simulator)",
        "avatar_url": f"https://cdn.replicate.com/avatars/{username}.png",
        "github_url": None,
    }


def version_json(version: Version) -> dict[str, Any]:
    return {
        "id": version.id,
        "created_at": timestamp(version.created_at),
        "cog_version": version.cog_version,
        "openapi_schema": version.openapi_schema,
    }


def model_json(model: Model) -> dict[str, Any]:
    return {
        "url": f"{WEB_URL}/{model.ref}",
        "owner": model.owner,
        "name": model.name,
        "description": model.description,
        "visibility": model.visibility,
        "github_url": model.github_url,
        "paper_url": model.paper_url,
        "license_url": model.license_url,
        "run_count": model.run_count,
        "cover_image_url": model.cover_image_url,
        "default_example": None,
        "latest_version": version_json(model.versions[0]) if model.versions else None,
        "is_official": model.official,
    }


def job_json(job: Job, now: float, base_url: str) -> dict[str, Any]:
    """A prediction or training as it stands at ``now``."""
    status = job.status_at(now)
    collection = "trainings" if job.kind == "training" else "predictions"
    get_url = f"{base_url}/{collection}/{job.id}"
    body: dict[str, Any] = {
        "id": job.id,
        "model": job.model,
        "version": job.version,
        "input": job.input,
        "logs": _logs(status),
        "output": _output(job) if status == "succeeded" else None,
        "data_removed": False,
        "error": job.input.get("simulate_error") if status == "failed" else None,
        "status": status,
        "created_at": timestamp(job.created_at),
    }
    if status != "starting" and (status not in ("aborted", "canceled") or _started(job, now)):
        body["started_at"] = timestamp(job.started_at)
    finished = job.finished_at(now)
    if finished is not None:
        body["completed_at"] = timestamp(finished)
    body["source"] = job.source
    if status in TERMINAL:
        total = round((finished or now) - job.created_at, 6)
        if _started(job, now):
            predict = max((finished or now) - job.started_at, 0.0)
            body["metrics"] = {"predict_time": round(predict, 6), "total_time": total}
        else:  # aborted or canceled before it started: it never ran
            body["metrics"] = {"total_time": total}
    body["urls"] = {
        "get": get_url,
        "cancel": f"{get_url}/cancel",
        "web": f"{WEB_URL}/p/{job.id}",
    }
    if job.kind == "prediction":
        body["urls"]["stream"] = f"{STREAM_URL}/{job.id}"
    if job.deployment:
        body["deployment"] = job.deployment
    if job.deadline is not None:
        body["deadline"] = timestamp(job.deadline)
    return body


def file_json(file: File, base_url: str) -> dict[str, Any]:
    md5 = hashlib.md5(file.content).hexdigest()
    return {
        "id": file.id,
        "name": file.name,
        "content_type": file.content_type,
        "size": len(file.content),
        "etag": md5,
        "checksums": {"sha256": hashlib.sha256(file.content).hexdigest(), "md5": md5},
        "metadata": file.metadata,
        "created_at": timestamp(file.created_at),
        "expires_at": timestamp(file.expires_at),
        "urls": {"get": f"{base_url}/files/{file.id}"},
    }


def deployment_json(deployment: Deployment) -> dict[str, Any]:
    return {
        "owner": deployment.owner,
        "name": deployment.name,
        "current_release": {
            "number": deployment.release,
            "model": deployment.model,
            "version": deployment.version,
            "created_at": timestamp(deployment.created_at),
            "created_by": account_json(deployment.created_by),
            "configuration": {
                "hardware": deployment.hardware,
                "min_instances": deployment.min_instances,
                "max_instances": deployment.max_instances,
            },
        },
    }


def collection_item_json(collection: Collection) -> dict[str, Any]:
    return {
        "name": collection.name,
        "slug": collection.slug,
        "description": collection.description,
    }


def collection_json(collection: Collection, models: list[Model]) -> dict[str, Any]:
    return {
        **collection_item_json(collection),
        "full_description": collection.full_description,
        "models": [model_json(m) for m in models],
    }


def _started(job: Job, now: float) -> bool:
    finished = job.finished_at(now)
    return (finished if finished is not None else now) >= job.started_at


def _logs(status: str) -> str:
    if status == "starting":
        return ""
    if status in ("succeeded", "failed"):
        return "Running prediction...\nDone.\n"
    return "Running prediction...\n"


def _output(job: Job) -> Any:
    """A deterministic output for the job's model."""
    if job.kind == "training":
        return {
            "version": hashlib.sha256(job.id.encode()).hexdigest(),
            "weights": f"{DELIVERY_URL}/{job.id}/trained_model.tar",
        }
    match job.model_kind:
        case "hello":
            return "hello " + str(job.input.get("text", ""))
        case "image":
            count = job.input.get("num_outputs", 1)
            count = min(max(count, 1), 4) if isinstance(count, int) else 1
            return [f"{DELIVERY_URL}/{job.id}/out-{i}.webp" for i in range(count)]
        case "video":
            return f"{DELIVERY_URL}/{job.id}/output.mp4"
    words = f"Simulated reply to: {job.input.get('prompt', '')}".split(" ")
    return [w + " " for w in words[:-1]] + words[-1:]
