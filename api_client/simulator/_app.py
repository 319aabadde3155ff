"""The simulator: an offline Replicate API, answering one request at a time.

``Simulator.handle`` authenticates, routes and answers every one of the 37 operations;
``SimulatorTransport`` reaches it in-process from httpx, ``serve`` over HTTP. All state
sits behind one lock; only ``Prefer: wait`` sleeps, and it does so outside the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
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
from ._render import job_json
from ._routes_files import download_signature
from ._state import TERMINAL

__all__ = ["DEFAULT_PUBLIC_BASE_URL", "MAX_UPLOAD_BYTES", "Simulator"]

DEFAULT_PUBLIC_BASE_URL = "https://api.replicate.com/v1"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
SIMULATOR_TOKEN_PREFIX = "r8_sim_"
DEFAULT_USERNAME = "luaq-sim"
# How often a held request (Prefer: wait) looks at its prediction again.
WAIT_POLL_SECONDS = 0.25
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
    creation, measured by ``clock``; ``sleep`` is what ``Prefer: wait`` waits with.
    ``public_base_url`` prefixes the URLs in responses (None: taken from the Host header).
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
    ) -> None:
        self.prediction_seconds = prediction_seconds
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.page_size = page_size
        self.max_upload_bytes = max_upload_bytes
        self._tokens = dict(tokens or {})
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()
        self._throttled: list[float] = []
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
        segments = [unquote(s) for s in raw_path.split("/") if s]
        if segments[:1] != ["v1"]:
            return not_found()
        base_url = self.public_base_url or f"http://{lowered.get('host', '127.0.0.1')}/v1"
        request = SimRequest(method.upper(), segments[1:], merged, lowered, body, base_url)
        route = self._route(request)
        if isinstance(route, SimResponse):
            return route
        user = self.username(_bearer(lowered.get("authorization", "")))
        if user is None and route not in _NO_AUTH_ROUTES:
            return problem(401, UNAUTHENTICATED[1], UNAUTHENTICATED[0])
        request.user = user or ""
        with self._lock:
            if self._throttled and route not in _NO_AUTH_ROUTES:
                return _throttled(self._throttled.pop(0))
            try:
                result = route(self, request)
            except Problem as exc:
                result = exc.response
        if isinstance(result, WaitFor):
            result = self._wait(result, request)
        remaining = "599" if route in _CREATE_ROUTES else "2999"
        return result._replace(headers={**result.headers, "ratelimit-remaining": remaining, "ratelimit-reset": "1"})

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
