"""What tests and benchmarks use to drive the simulator: recorded requests and injected failures."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ._http import JSON, PROBLEM_JSON, SimResponse, reason_phrase

__all__ = ["FAULT_HEADER", "Injection", "RecordedRequest"]

# A response carrying this header is not an answer but a transport failure the transport
# (or the HTTP server) reproduces: "connect" (never processed) or "timeout" (processed,
# the answer lost).
FAULT_HEADER = "x-luaq-sim-fault"
# Bodies are recorded up to this size, so that a long-lived simulator stays small.
RECORDED_BODY_BYTES = 1024 * 1024
Fault = Literal["connect", "timeout"]


@dataclass
class RecordedRequest:
    """One request as the simulator received it.

    ``path`` is the raw (percent-encoded) path without the query; ``headers`` have
    lower-case names, the credentials of ``authorization`` replaced by ``[redacted]``;
    ``body`` is the first ``RECORDED_BODY_BYTES`` of the body, ``body_size`` its length;
    ``time`` is the simulator's clock; ``user`` the authenticated user (None when the token
    was refused or not needed); ``route`` the operation that answered (its short name, e.g.
    ``create_prediction``; None for an unknown path); ``status`` the answer's status;
    ``fault`` the injected transport fault, if any.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    time: float
    body_size: int = 0
    route: str | None = None
    user: str | None = None
    status: int | None = None
    fault: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    redacted = dict(headers)
    if "authorization" in redacted:
        scheme, _, _ = redacted["authorization"].strip().partition(" ")
        redacted["authorization"] = f"{scheme} [redacted]"
    return redacted


@dataclass
class Injection:
    """A canned answer (or transport fault) for the next ``count`` matching requests
    (``count`` None: every one)."""

    target: str
    status: int
    body: bytes
    headers: dict[str, str]
    count: int | None = 1
    fault: Fault | None = None
    _method: str | None = field(default=None, repr=False)
    _path: list[str] | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        target: str,
        status: int,
        body: Any,
        *,
        count: int | None,
        headers: dict[str, str] | None,
        content_type: str | None,
        fault: Fault | None,
    ) -> Injection:
        if isinstance(body, bytes | bytearray):
            content, default_type = bytes(body), "text/plain"
        elif isinstance(body, str):
            content, default_type = body.encode("utf-8"), "text/plain"
        elif body is None and status >= 400:
            value = {"detail": reason_phrase(status) or f"Error {status}", "status": status}
            content, default_type = json.dumps(value).encode(), PROBLEM_JSON
        elif body is None:
            content, default_type = b"", JSON
        else:
            content = json.dumps(body).encode()
            default_type = PROBLEM_JSON if status >= 400 else JSON
        all_headers = {"Content-Type": content_type or default_type, **(headers or {})}
        if fault is not None:
            all_headers[FAULT_HEADER] = fault
        method, path = _parse_target(target)
        return cls(target, status, content, all_headers, count, fault, method, path)

    def matches(self, method: str, segments: list[str], route: str | None) -> bool:
        if self.target == "*":
            return True
        if self._path is None and self._method is None:
            return route == self.target
        if self._method is not None and self._method != method:
            return False
        return self._path is None or _path_matches(self._path, segments)

    def response(self) -> SimResponse:
        return SimResponse(self.status, dict(self.headers), self.body)


def _parse_target(target: str) -> tuple[str | None, list[str] | None]:
    """``"*"``, ``"GET"``, ``"POST /predictions"``, ``"/predictions/{id}"`` or an
    operation's short name (``create_prediction``) as (method, path segments)."""
    text = target.strip()
    if text == "*":
        return None, None
    method, _, path = text.partition(" ")
    if not path and method.startswith("/"):
        method, path = "", method
    if path:
        segments = [s for s in path.strip().split("?")[0].split("/") if s]
        if segments[:1] == ["v1"]:
            segments = segments[1:]
        return (method.upper() or None), segments
    if re.fullmatch(r"[A-Z]+", method):
        return method, None
    return None, None


def _path_matches(pattern: list[str], segments: list[str]) -> bool:
    if len(pattern) != len(segments):
        return False
    return all(p.startswith("{") or p == s for p, s in zip(pattern, segments, strict=True))
