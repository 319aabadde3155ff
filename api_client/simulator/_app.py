"""The simulator: an offline Replicate API, answering one request at a time.

``Simulator.handle`` records, authenticates, rate-limits, routes and answers every one of
the 37 operations; ``SimulatorTransport`` reaches it in-process from httpx, ``serve`` over
HTTP. All state sits behind one lock; only ``latency`` and ``Prefer: wait`` sleep, and they
do so outside the lock.

Knobs for tests and benchmarks: ``requests`` (every request received, newest last),
``inject(...)`` (canned failures, including transport faults), ``throttle(...)``,
``rate_limits`` / ``set_rate_limits(...)`` (token buckets per account), ``latency``,
``keep_queued`` / ``release(...)`` (predictions that never start until released),
``prediction_seconds`` and an injectable ``clock``/``sleep``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from . import _routes_files, _routes_models, _routes_predictions
from ._data import demo_state
from ._http import (
    Problem,
    SimRequest,
    SimResponse,
    WaitFor,
    json_response,
    not_found,
    problem,
)
from ._limits import RateLimits, TokenBuckets
from ._record import RECORDED_BODY_BYTES, Fault, Injection, RecordedRequest, redact_headers
from ._render import job_json
from ._routes_files import download_signature
from ._state import TERMINAL

__all__ = ["DEFAULT_PUBLIC_BASE_URL", "MAX_UPLOAD_BYTES", "RateLimits", "Simulator"]

DEFAULT_PUBLIC_BASE_URL = "https://api.replicate.com/v1"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
SIMULATOR_TOKEN_PREFIX = "r8_sim_"
DEFAULT_USERNAME = "luaq-sim"
# How often a held request (Prefer: wait) looks at its prediction again.
WAIT_POLL_SECONDS = 0.25
# Replicate's published limits: 600 creates and 3000 other requests a minute per account.
REPLICATE_RATE_LIMITS = RateLimits()
# How many requests ``Simulator.requests`` keeps (the oldest go first).
DEFAULT_RECORD_LIMIT = 10_000
UNAUTHENTICATED = ("Unauthenticated", "You did not pass a valid authentication token")

Route = Callable[..., SimResponse | WaitFor]
_ROUTES: list[tuple[str, str, Route]] = [
    *_routes_predictions.ROUTES,
    *_routes_models.ROUTES,
    *_routes_files.ROUTES,
]
_CREATE_ROUTES = {
    _routes_predictions.create_prediction,
    _routes_predictions.create_model_prediction,
    _routes_predictions.create_deployment_prediction,
    _routes_predictions.create_training,
}
# The real download URL is signed and needs no token (see the files.download example).
_NO_AUTH_ROUTES = {_routes_files.download_file}


class Simulator:
    """An in-memory Replicate with demo data (see ``_data``).

    ``tokens`` maps extra accepted tokens to usernames; any ``Bearer r8_sim_<name>`` is
    also accepted (``default`` is user ``luaq-sim``, others ``luaq-sim-<name>``).
    A prediction starts, processes and succeeds within ``prediction_seconds`` of its
    creation (of its release, with ``keep_queued``), measured by ``clock``; ``sleep`` is
    what ``Prefer: wait`` and ``latency`` wait with. ``public_base_url`` prefixes the URLs
    in responses (None: taken from the Host header). ``rate_limits`` are every account's
    token buckets (None: unlimited); ``latency`` is added to every request, in seconds;
    ``record_requests`` bounds ``requests``.
    """

    def __init__(
        self,
        *,
        tokens: Mapping[str, str] | None = None,
        prediction_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        public_base_url: str | None = DEFAULT_PUBLIC_BASE_URL,
        page_size: int = 100,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        rate_limits: RateLimits | None = REPLICATE_RATE_LIMITS,
        latency: float = 0.0,
        keep_queued: bool = False,
        record_requests: int = DEFAULT_RECORD_LIMIT,
    ) -> None:
        self.prediction_seconds = prediction_seconds
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.page_size = page_size
        self.max_upload_bytes = max_upload_bytes
        self.rate_limits = rate_limits
        self.latency = latency
        self.keep_queued = keep_queued
        self.requests: deque[RecordedRequest] = deque(maxlen=record_requests)
        self.request_count = 0
        self._tokens = dict(tokens or {})
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()
        self._throttled: list[float] = []
        self._injections: list[Injection] = []
        self._user_limits: dict[str, RateLimits | None] = {}
        self._buckets = TokenBuckets()
        self.state = demo_state(clock())

    def now(self) -> float:
        return self._clock()

    def signing_key(self) -> bytes:
        return b"luaq-simulator-files-signing-key"

    def sign_download(self, file_id: str, owner: str, expiry: int) -> str:
        """The ``signature`` that makes ``download_file`` answer for this file."""
        return download_signature(self.signing_key(), owner, file_id, expiry)

    def throttle(self, count: int = 1, retry_after: float = 5) -> None:
        """Answer the next ``count`` authenticated requests with Replicate's 429."""
        with self._lock:
            self._throttled.extend([retry_after] * count)

    def inject(
        self,
        target: str,
        status: int = 500,
        body: Any = None,
        count: int | None = 1,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        fault: Fault | None = None,
    ) -> None:
        """Answer the next ``count`` requests matching ``target`` (None: all of them) with
        ``status`` and ``body`` instead of handling them.

        ``target`` is ``"*"``, a method (``"GET"``), a method and path (``"POST
        /predictions"``, ``"GET /predictions/{prediction_id}"`` or a concrete path), a path
        alone, or an operation's short name (``"create_prediction"``). ``body`` is a dict
        (sent as problem+json for errors), text or bytes (``content_type``, default
        text/plain); None gives a problem+json naming the status. ``fault="connect"``
        makes the transport fail before the request is processed (``httpx.ConnectError``);
        ``fault="timeout"`` processes it and then loses the answer (``httpx.ReadTimeout``).
        Injected answers come after authentication, before rate limits.
        """
        injection = Injection.build(
            target,
            status,
            body,
            count=count,
            headers=dict(headers or {}),
            content_type=content_type,
            fault=fault,
        )
        with self._lock:
            self._injections.append(injection)

    def clear_injections(self) -> None:
        with self._lock:
            self._injections.clear()
            self._throttled.clear()

    def set_rate_limits(self, limits: RateLimits | None, *, user: str | None = None) -> None:
        """Change the token buckets of every account, or of one user (``luaq-sim``,
        ``luaq-sim-work``, ...); None lifts the limits. The buckets changed start full again."""
        with self._lock:
            if user is None:
                self.rate_limits = limits
                self._user_limits.clear()
            else:
                self._user_limits[user] = limits
            self._buckets.reset(user)

    def release(self, prediction_id: str | None = None) -> None:
        """Let a prediction held by ``keep_queued`` start now (all of them with None)."""
        with self._lock:
            now = self.now()
            for job in self.state.jobs.values():
                if math.isinf(job.queued_until or 0) and prediction_id in (None, job.id):
                    job.queued_until = now

    def username(self, token: str) -> str | None:
        """The user a token belongs to, or None when it is not valid."""
        if token in self._tokens:
            return self._tokens[token]
        if token.startswith(SIMULATOR_TOKEN_PREFIX) and len(token) > len(SIMULATOR_TOKEN_PREFIX):
            name = token.removeprefix(SIMULATOR_TOKEN_PREFIX)
            return DEFAULT_USERNAME if name == "default" else f"{DEFAULT_USERNAME}-{name}"
        return None

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> SimResponse:
        """Answer one request. ``path`` is the raw (percent-encoded) path, ``/v1/...``;
        a query string in it is merged with ``query``."""
        raw_path, _, raw_query = path.partition("?")
        merged = dict(parse_qsl(raw_query, keep_blank_values=True))
        merged.update(query or {})
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        record = RecordedRequest(
            method.upper(),
            raw_path,
            merged,
            redact_headers(lowered),
            bytes(body[:RECORDED_BODY_BYTES]),
            self.now(),
            body_size=len(body),
        )
        with self._lock:
            self.requests.append(record)
            self.request_count += 1
        if self.latency > 0:
            self._sleep(self.latency)
        response = self._answer(record, raw_path, merged, lowered, body)
        record.status = response.status
        record.fault = response.headers.get("x-luaq-sim-fault")
        return response

    def _answer(
        self, record: RecordedRequest, raw_path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> SimResponse:
        segments = [unquote(s) for s in raw_path.split("/") if s]
        if segments[:1] != ["v1"]:
            return not_found()
        base_url = self.public_base_url or f"http://{headers.get('host', '127.0.0.1')}/v1"
        request = SimRequest(record.method, segments[1:], query, headers, body, base_url)
        route = self._route(request)
        if isinstance(route, SimResponse):
            return route
        record.route = route.__name__
        user = self.username(_bearer(headers.get("authorization", "")))
        if user is None and route not in _NO_AUTH_ROUTES:
            return problem(401, UNAUTHENTICATED[1], UNAUTHENTICATED[0])
        record.user = user
        request.user = user or ""
        bucket = "create" if route in _CREATE_ROUTES else "other"
        lost: SimResponse | None = None
        with self._lock:
            injected = self._take_injection(request.method, request.segments, route.__name__)
            if injected is not None:
                if injected.fault != "timeout":
                    return injected.response()
                lost = injected.response()
            if route not in _NO_AUTH_ROUTES:
                if self._throttled:
                    return _throttled(self._throttled.pop(0))
                remaining = self._take_token(request.user, bucket)
                if isinstance(remaining, SimResponse):
                    return remaining
            else:
                remaining = None
            try:
                result = route(self, request)
            except Problem as exc:
                result = exc.response
        if isinstance(result, WaitFor):
            result = self._wait(result, request)
        if lost is not None:
            return lost
        if remaining is None:
            return result
        limit_headers = {"ratelimit-remaining": str(remaining), "ratelimit-reset": "1"}
        return result._replace(headers={**result.headers, **limit_headers})

    def _take_injection(self, method: str, segments: list[str], route: str) -> Injection | None:
        for injection in self._injections:
            if injection.matches(method, segments, route):
                if injection.count is not None:
                    injection.count -= 1
                    if injection.count <= 0:
                        self._injections.remove(injection)
                return injection
        return None

    def _take_token(self, user: str, bucket: str) -> int | SimResponse:
        """Tokens left after taking one from the user's bucket, or the 429 answer."""
        limits = self._user_limits.get(user, self.rate_limits)
        if limits is None:
            return 599 if bucket == "create" else 2999
        decision = self._buckets.take(user, "create" if bucket == "create" else "other", limits, self.now())
        if decision.allowed:
            return decision.remaining
        response = _throttled(max(1, math.ceil(decision.retry_after)))
        return response._replace(headers={**response.headers, "ratelimit-remaining": "0", "ratelimit-reset": "1"})

    def _route(self, request: SimRequest) -> Route | SimResponse:
        """The handler for the request (its path params set), or a 404/405 answer."""
        path_matched = False
        for method, pattern, handler in _ROUTES:
            params = _match(pattern, request.segments)
            if params is None:
                continue
            path_matched = True
            if method == request.method:
                request.params = params
                return handler
        if path_matched:
            return problem(405, "Method Not Allowed")
        return not_found()

    def _wait(self, wait: WaitFor, request: SimRequest) -> SimResponse:
        waited = 0.0
        while True:
            with self._lock:
                job = self.state.jobs[wait.job_id]
                now = self.now()
                if job.status_at(now) in TERMINAL or waited >= wait.seconds:
                    body = job_json(job, now, request.base_url)
                    return json_response(wait.status, body, wait.headers)
                stop = job.stop()
                finish = min(job.ends_at, stop[0]) if stop else job.ends_at
            step = min(WAIT_POLL_SECONDS, wait.seconds - waited, max(finish - now, 0.001))
            self._sleep(step)
            # Counted by what was asked of sleep(), so a clock that does not move cannot
            # hold the request forever.
            waited += step


def _match(pattern: str, segments: list[str]) -> dict[str, str] | None:
    parts = [p for p in pattern.split("/") if p]
    if len(parts) != len(segments):
        return None
    params = {}
    for part, segment in zip(parts, segments, strict=True):
        if part.startswith("{"):
            params[part[1:-1]] = segment
        elif part != segment:
            return None
    return params


def _bearer(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    # Some of Replicate's own examples still send "Token"; accept it too.
    return token.strip() if scheme.lower() in ("bearer", "token") else ""


def _throttled(retry_after: float) -> SimResponse:
    seconds = int(retry_after) if float(retry_after).is_integer() else retry_after
    response = problem(
        429,
        f"Request was throttled. Your rate limit resets in ~{seconds}s.",
        retry_after=seconds,
    )
    return response._replace(headers={**response.headers, "Retry-After": str(seconds)})


def download_url(base_url: str, file_id: str, owner: str, expiry: int, signature: str) -> str:
    """A complete signed download URL (for tests and docs)."""
    query = urlencode({"owner": owner, "expiry": expiry, "signature": signature})
    return f"{base_url}/files/{file_id}/download?{query}"
