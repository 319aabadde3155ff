"""The simulator's records and the prediction lifecycle.

A prediction (or training) never changes on its own: its status is computed from the
time since it was created, so an injected clock drives it::

    0 ─── starting ─── 20% of duration ─── processing ─── duration ─── succeeded
                                                                    └─ failed (simulate_error)

A cancel before the end makes it ``canceled``; a ``Cancel-After`` deadline that passes
before it started makes it ``aborted``, after it started ``canceled``. A job created while
the simulator keeps predictions queued has ``queued_until`` = infinity: it stays
``starting`` until released (its timeline then starts at the release).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
STARTING_SHARE = 0.2

ModelKind = Literal["hello", "image", "text", "video"]


@dataclass
class Version:
    id: str
    created_at: float
    cog_version: str
    openapi_schema: dict[str, Any]
    aliases: tuple[str, ...] = ()


@dataclass
class Model:
    owner: str
    name: str
    description: str
    kind: ModelKind
    created_at: float
    visibility: str = "public"
    hardware: str = "gpu-t4"
    official: bool = False
    run_count: int = 0
    github_url: str | None = None
    paper_url: str | None = None
    license_url: str | None = None
    weights_url: str | None = None
    cover_image_url: str | None = None
    readme: str | None = None
    versions: list[Version] = field(default_factory=list)  # newest first

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.name}"

    def version(self, version_id: str) -> Version | None:
        for version in self.versions:
            if version_id == version.id or version_id in version.aliases:
                return version
        return None


@dataclass
class Deployment:
    owner: str
    name: str
    model: str
    version: str
    hardware: str
    min_instances: int
    max_instances: int
    created_at: float
    created_by: str
    release: int = 1


@dataclass
class Job:
    """A prediction or a training. ``owner`` None means visible to every account."""

    id: str
    kind: Literal["prediction", "training"]
    owner: str | None
    model: str
    model_kind: ModelKind
    version: str
    input: dict[str, Any]
    created_at: float
    duration: float
    source: str = "api"
    deployment: str | None = None
    destination: str | None = None
    webhook: str | None = None
    deadline: float | None = None
    canceled_at: float | None = None
    queued_until: float | None = None

    @property
    def _begins(self) -> float:
        if self.queued_until is None:
            return self.created_at
        return max(self.created_at, self.queued_until)

    @property
    def started_at(self) -> float:
        return self._begins + STARTING_SHARE * self.duration

    @property
    def ends_at(self) -> float:
        return self._begins + self.duration

    def stop(self) -> tuple[float, str] | None:
        """When and how it stops early (cancel or deadline), if it does."""
        stops = []
        if self.canceled_at is not None:
            stops.append((self.canceled_at, "canceled"))
        if self.deadline is not None:
            reason = "aborted" if self.deadline < self.started_at else "canceled"
            stops.append((self.deadline, reason))
        early = [s for s in stops if s[0] < self.ends_at]
        return min(early) if early else None

    def status_at(self, now: float) -> str:
        stop = self.stop()
        if stop is not None and now >= stop[0]:
            return stop[1]
        if now >= self.ends_at:
            return "failed" if self.input.get("simulate_error") else "succeeded"
        return "processing" if now >= self.started_at else "starting"

    def finished_at(self, now: float) -> float | None:
        if self.status_at(now) not in TERMINAL:
            return None
        stop = self.stop()
        return stop[0] if stop is not None and now >= stop[0] else self.ends_at


@dataclass
class File:
    id: str
    owner: str | None
    name: str
    content_type: str
    content: bytes
    metadata: dict[str, Any]
    created_at: float

    @property
    def expires_at(self) -> float:
        return self.created_at + 24 * 3600


@dataclass
class Collection:
    slug: str
    name: str
    description: str
    models: list[str]
    full_description: str | None = None


@dataclass
class State:
    """Everything the simulator knows. Callers hold the simulator's lock."""

    models: dict[str, Model] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)  # oldest first
    files: dict[str, File] = field(default_factory=dict)
    collections: dict[str, Collection] = field(default_factory=dict)
    hardware: list[dict[str, str]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=itertools.count)
    # Ids differ from one simulator to the next (a restarted `luaq simulator` does not hand
    # out the ids of the predictions it made before), and never repeat within one.
    _salt: str = field(default_factory=lambda: secrets.token_hex(8))

    def new_id(self) -> str:
        """A new id that looks like Replicate's (26 base32 characters)."""
        digest = hashlib.sha256(f"luaq-sim:{self._salt}:{next(self._ids)}".encode()).digest()
        return base64.b32encode(digest).decode().lower()[:26]

    def add_model(self, model: Model) -> Model:
        self.models[model.ref] = model
        return model

    def find_version(self, version_id: str) -> tuple[Model, Version] | None:
        for model in self.models.values():
            version = model.version(version_id)
            if version is not None:
                return model, version
        return None
