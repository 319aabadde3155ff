"""Requests, responses and the shared answers of the simulated API."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import urlencode

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
NOT_FOUND_DETAIL = "The requested resource could not be found."


class SimResponse(NamedTuple):
    """What the simulator answers: unpacks as ``status, headers, body``."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SimRequest:
    """One request as the routes see it. ``segments`` are the percent-decoded path parts
    after ``/v1``; ``headers`` have lower-case names; ``user`` is set once authenticated."""

    method: str
    segments: list[str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    user: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def json_body(self) -> Any:
        """The body decoded as JSON; raises ``Problem`` (400) if it is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise Problem(problem(400, "The request body is not valid JSON.")) from None

    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        url = f"{self.base_url}{path}"
        return f"{url}?{urlencode(query)}" if query else url


class Problem(Exception):
    """Raised inside a route to answer with ``response`` at once."""

    def __init__(self, response: SimResponse) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, value: Any, headers: Mapping[str, str] | None = None) -> SimResponse:
    body = json.dumps(value).encode("utf-8")
    return SimResponse(status, {"Content-Type": JSON, **(headers or {})}, body)


def problem(status: int, detail: str, title: str | None = None, **extra: Any) -> SimResponse:
    """An ``application/problem+json`` answer, fields in Replicate's order."""
    body: dict[str, Any] = {}
    if title:
        body["title"] = title
    body["detail"] = detail
    body["status"] = status
    body.update(extra)
    return SimResponse(status, {"Content-Type": PROBLEM_JSON}, json.dumps(body).encode("utf-8"))


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def not_found() -> SimResponse:
    return problem(404, NOT_FOUND_DETAIL)


def unprocessable(errors: Sequence[tuple[str, str]], title: str = "Input validation failed"):
    """A 422 in Replicate's validation style: ``- field: message`` lines."""
    detail = "".join(f"- {where}: {message}\n" for where, message in errors)
    fields = [{"field": where, "description": message} for where, message in errors]
    return problem(422, detail, title, invalid_fields=fields)


def timestamp(seconds: float) -> str:
    """Replicate's timestamp format: ``2024-08-22T12:26:51.079000Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def page(request: SimRequest, path: str, items: Sequence[Any], size: int) -> SimResponse:
    """One page of ``items``: ``{next, previous, results}`` with absolute cursor URLs."""
    offset = _offset(request.query.get("cursor"))
    query = {k: v for k, v in request.query.items() if k != "cursor"}

    def link(start: int) -> str:
        return request.url(path, {**query, "cursor": _cursor(start)})

    next_url = link(offset + size) if offset + size < len(items) else None
    previous_url = link(max(offset - size, 0)) if offset > 0 else None
    results = list(items[offset : offset + size])
    return json_response(200, {"next": next_url, "previous": previous_url, "results": results})


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o={offset}".encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset = int(text.removeprefix("o="))
    except ValueError:
        raise Problem(problem(400, "Invalid cursor.")) from None
    if offset < 0:
        raise Problem(problem(400, "Invalid cursor."))
    return offset


@dataclass(frozen=True)
class WaitFor:
    """A route's answer that first waits (outside the lock) for a job to finish, for at
    most ``seconds``, then renders it: how ``Prefer: wait`` holds a request open."""

    job_id: str
    seconds: float
    status: int = 201
    headers: dict[str, str] = field(default_factory=dict)
