"""Who may see what: lookups that answer 404/403 the way Replicate does.

Every simulated account is a member of the shared organisation ``example-org``, so the
demo deployment and its models are usable from any token. Records whose owner is None
(the demo prediction, training and file) are visible to everyone.
"""

from __future__ import annotations

from typing import Protocol

from ._data import SHARED_ORG
from ._http import Problem, SimRequest, not_found, problem
from ._state import Deployment, File, Job, Model, State


class Context(Protocol):
    """What routes need from the simulator."""

    state: State
    prediction_seconds: float
    page_size: int
    max_upload_bytes: int
    keep_queued: bool

    def now(self) -> float: ...

    def signing_key(self) -> bytes: ...


def owners(user: str) -> set[str]:
    """The owners whose resources ``user`` may change."""
    return {user, SHARED_ORG}


def require_owner(request: SimRequest, owner: str, what: str) -> None:
    if owner not in owners(request.user):
        raise Problem(problem(403, f"You do not have permission to change this {what}."))


def model_or_404(ctx: Context, request: SimRequest, owner: str, name: str) -> Model:
    model = ctx.state.models.get(f"{owner}/{name}")
    if model is None or (model.visibility != "public" and owner not in owners(request.user)):
        raise Problem(not_found())
    return model


def job_or_404(ctx: Context, request: SimRequest, kind: str, job_id: str) -> Job:
    job = ctx.state.jobs.get(job_id)
    if job is None or job.kind != kind or job.owner not in (None, request.user):
        raise Problem(not_found())
    return job


def visible_jobs(ctx: Context, request: SimRequest, kind: str) -> list[Job]:
    """The account's jobs of ``kind``, newest first."""
    jobs = [j for j in ctx.state.jobs.values() if j.kind == kind and j.owner == request.user]
    return sorted(jobs, key=lambda j: j.created_at, reverse=True)


def deployment_or_404(ctx: Context, request: SimRequest, owner: str, name: str) -> Deployment:
    deployment = ctx.state.deployments.get(f"{owner}/{name}")
    if deployment is None or owner not in owners(request.user):
        raise Problem(not_found())
    return deployment


def file_or_404(ctx: Context, request: SimRequest, file_id: str) -> File:
    file = ctx.state.files.get(file_id)
    if file is None or file.owner not in (None, request.user) or ctx.now() >= file.expires_at:
        raise Problem(problem(404, "File not found"))
    return file
