"""The HTTP client: one ``call(operation, args)`` builds, validates and sends any operation.

The send path is layered, one concern each::

    call            resolve the operation, validate args, check the token
    _build          turn the prepared request into an httpx.Request (JSON, text, multipart)
    _send           the single send point: attempts, the RetryPolicy between them, the deadline
    _transmit       send one attempt through the transport, translate httpx errors
    _decode         turn the response into a value or a typed APIError

Before each attempt ``_send`` asks the limiter for a rate token and holds an in-flight slot
while the request is out; a 429 from Replicate is reported back to a limiter that wants to
know (``throttled``); a call that creates a prediction or training is counted against the
limiter's spend caps once, before its first attempt (``spend``; see ``_limiter``).
"""

from __future__ import annotations

import http.cookiejar
import json
import math
import re
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from ._abandon import raise_if_abandoned
from ._accounts import DEFAULT_ACCOUNT, Account
from ._catalog import Catalog, Operation, load_catalog
from ._errors import APIError, ArgumentError, ConfigurationError, ReplicateError, TransportError
from ._files import FileSource
from ._limiter import Limiter, NullLimiter
from ._retry import RetryPolicy, RetryRecord, retry_record
from ._retry_after import retry_after_seconds
from ._validation import NO_BODY, PreparedRequest, prepare_request
from ._version import __version__

__all__ = ["DEFAULT_TIMEOUT", "ReplicateClient", "Response"]

# Prefer: wait may hold a request for 60 s, so reads get well beyond that.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
USER_AGENT = f"luaq/{__version__} httpx/{httpx.__version__}"
_ERROR_EXCERPT_CHARS = 200
_ERROR_DETAIL_CHARS = 2000
# httpx exceptions raised before any byte of the request was sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Response:
    """A successful call: the decoded value, the HTTP status, the response headers
    (lower-case names), the attempts retried before it (``RetryRecord`` dicts), the
    number of HTTP requests the call sent, the milliseconds it waited for the limiter
    (rate tokens and in-flight slots) and how many 429 answers it got on the way."""

    value: Any
    http_status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    retries: list[RetryRecord] = field(default_factory=list)
    http_requests: int = 1
    rate_limit_wait_ms: float = 0.0
    throttled: int = 0


def new_http_client(transport: httpx.BaseTransport | None = None, *, max_connections: int | None = 100,
                    verify: ssl.SSLContext | bool = True) -> httpx.Client:  # fmt: skip
    """The HTTP client Replicate calls go through. Each request carries its own timeout
    and ``Authorization``; cookies are never kept, so one client can be shared by every
    job and account of a process without carrying anything from one to the next.
    ``verify``: pass one ``httpx.create_ssl_context()`` to many clients to build (and
    hold) the certificate store once."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections or 100)
    return httpx.Client(transport=transport, timeout=DEFAULT_TIMEOUT, limits=limits, cookies=_NoCookies(),
                        verify=verify)  # fmt: skip


class _NoCookies(http.cookiejar.CookieJar):
    def __init__(self) -> None:
        super().__init__(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class ReplicateClient:
    """Calls Replicate operations for one account.

    ``transport`` picks where requests go (the network by default; a
    ``SimulatorTransport`` or ``httpx.MockTransport`` in tests and ``--simulate``).
    ``files`` says what ``create_file`` may upload beyond the bytes it is given;
    ``retry`` decides which failed attempts are sent again (its clock also measures the
    call's ``timeout``).
    """

    def __init__(
        self,
        account: Account,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        limiter: Limiter | None = None,
        files: FileSource | None = None,
        catalog: Catalog | None = None,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.account = account
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._limiter: Limiter = limiter or NullLimiter()
        self.retry = retry or RetryPolicy()
        self._files = files or FileSource()
        self._catalog = catalog or load_catalog()
        # A shared ``http`` client (a worker process's connection pool) is not closed here.
        self._owns_http = http is None
        self._http = http if http is not None else new_http_client(transport)

    def __repr__(self) -> str:
        return f"ReplicateClient(account={self.account.name!r}, base_url={self.account.base_url!r})"

    def __enter__(self) -> ReplicateClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def call(
        self,
        operation: str | Operation,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Perform ``operation`` (an Operation or any of its names) with ``args``.

        ``timeout`` caps the whole call in seconds (limiter waits and retries included).
        ``extra_headers`` are sent as well (``Prefer`` is shortened to fit ``timeout``).
        Raises ArgumentError before sending anything, ConfigurationError without a token,
        TransportError without a response, APIError (or a subclass) on 4xx/5xx; errors
        raised after sending carry ``retries`` and ``http_requests``.
        """
        started = self.retry.clock()
        if not isinstance(operation, Operation):
            operation = self._catalog.resolve(operation)
        raise_if_abandoned(operation.label)
        prepared = prepare_request(operation, args)
        if extra_headers:
            prepared = replace(prepared, headers={**prepared.headers, **extra_headers})
        token = self._token()
        request = self._build(prepared, token, timeout)
        if operation.creates:
            self._spend(operation)
        return self._send(operation, request, token, timeout, started)

    def _token(self) -> str:
        if self.account.token:
            return self.account.token
        variable = self.account.token_variable()
        if self.account.name == DEFAULT_ACCOUNT:
            where = f"set {variable} (or REPLICATE_API_TOKEN_<NAME> for a named account)"
        else:
            where = f"set {variable}"
        raise ConfigurationError(
            f"no Replicate API token for account {self.account.name!r}: {where}, or use --simulate"
        )

    def _build(self, prepared: PreparedRequest, token: str, timeout: float | None) -> httpx.Request:
        operation = prepared.operation
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **prepared.headers,
        }
        if timeout is not None and "Prefer" in headers:
            prefer = _prefer_within(headers.pop("Prefer"), timeout)
            if prefer:
                headers["Prefer"] = prefer
        content: bytes | None = None
        files = data = None
        if prepared.body is not NO_BODY:
            kind = operation.body.content_type if operation.body else "application/json"
            if kind == "multipart/form-data":
                upload = self._files.resolve(prepared.body, operation.label)
                files = {"content": (upload.filename, upload.content, upload.content_type)}
                data = {
                    "filename": upload.filename,
                    "type": upload.content_type,
                    "metadata": _json_bytes(upload.metadata, operation.label).decode("utf-8"),
                }
            elif kind == "text/plain":
                content = prepared.body.encode("utf-8")
                headers["Content-Type"] = "text/plain"
            else:
                content = _json_bytes(prepared.body, operation.label)
                headers["Content-Type"] = "application/json"
        return self._http.build_request(
            operation.method,
            self.account.base_url.rstrip("/") + prepared.path,
            params=prepared.query,
            headers=headers,
            content=content,
            files=files,
            data=data,
            timeout=_capped(self._timeout, timeout),
        )

    def _send(
        self, operation: Operation, request: httpx.Request, token: str, timeout: float | None, started: float
    ) -> Response:
        """Send ``request``, retrying as the policy allows, within ``timeout`` of ``started``."""
        policy = self.retry
        retries: list[RetryRecord] = []
        sent = throttled = 0
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                waited += self._limiter.acquire(self.account.name, operation.rate_bucket,
                                                timeout=_left(policy, started, timeout)) or 0.0  # fmt: skip
                with self._in_flight(_left(policy, started, timeout)) as slot_wait:
                    waited += slot_wait or 0.0
                    raise_if_abandoned(operation.label)  # the waits above may have outlived the caller
                    sent += 1
                    if retries:
                        _shorten_prefer(request, _left(policy, started, timeout))
                    response = self._transmit(operation, request, token, _left(policy, started, timeout))
            except ReplicateError as exc:
                if isinstance(exc, APIError) and exc.status == 429:
                    throttled += 1
                exc.retries, exc.http_requests = retries, sent
                exc.rate_limit_wait_ms, exc.throttled = _ms(waited), throttled
                if sent < attempt:  # the limiter refused: it already waited all it could
                    raise
                self._report_throttle(operation, exc)
                wait = policy.wait_before_retry(
                    exc,
                    attempt=attempt,
                    read=operation.kind == "read",
                    time_left=_left(policy, started, timeout),
                )
                if wait is None:
                    raise
                retries.append(retry_record(operation.short_name, attempt, exc, wait))
                if wait > 0:
                    policy.sleep(wait)
                continue
            return replace(response, retries=retries, http_requests=sent, rate_limit_wait_ms=_ms(waited),
                           throttled=throttled)  # fmt: skip

    def _transmit(self, operation: Operation, request: httpx.Request, token: str, time_left: float | None) -> Response:
        if time_left is not None:
            request.extensions["timeout"] = _capped(self._timeout, max(time_left, 0.001)).as_dict()
        with _transport_errors(operation, token):
            response = self._http.send(request)
        return _decode(operation, response, token)

    def _in_flight(self, time_left: float | None) -> AbstractContextManager[float | None]:
        hold = getattr(self._limiter, "in_flight", None)
        return hold(self.account.name, timeout=time_left) if callable(hold) else nullcontext()

    def _spend(self, operation: Operation) -> None:
        spend = getattr(self._limiter, "spend", None)
        if callable(spend):
            spend(self.account.name, operation.short_name)

    def _report_throttle(self, operation: Operation, exc: ReplicateError) -> None:
        throttled = getattr(self._limiter, "throttled", None)
        if isinstance(exc, APIError) and exc.status == 429 and callable(throttled):
            throttled(self.account.name, operation.rate_bucket, exc.retry_after)


def _shorten_prefer(request: httpx.Request, time_left: float | None) -> None:
    """A retry has less time left than the first attempt: ask the server to wait less."""
    if time_left is None or "prefer" not in request.headers:
        return
    prefer = _prefer_within(request.headers["prefer"], time_left)
    if prefer:
        request.headers["prefer"] = prefer
    else:
        del request.headers["prefer"]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _left(policy: RetryPolicy, started: float, timeout: float | None) -> float | None:
    return None if timeout is None else timeout - (policy.clock() - started)


@contextmanager
def _transport_errors(operation: Operation, token: str) -> Iterator[None]:
    """The one boundary where httpx exceptions become TransportError."""
    try:
        yield
    except httpx.TimeoutException as exc:
        message = f"{operation.label}: request timed out ({type(exc).__name__})"
        raise TransportError(
            message, operation=operation.short_name, sent=_sent(exc), reason=type(exc).__name__
        ) from exc
    except httpx.RequestError as exc:
        reason = _redact(str(exc), token) or type(exc).__name__
        message = f"{operation.label}: could not reach Replicate: {reason}"
        raise TransportError(
            message, operation=operation.short_name, sent=_sent(exc), reason=type(exc).__name__
        ) from exc


def _sent(exc: httpx.RequestError) -> bool | None:
    """False when the request provably never left; None when it may have."""
    return False if isinstance(exc, _NOT_SENT) else None


def _decode(operation: Operation, response: httpx.Response, token: str) -> Response:
    response.read()
    headers = {name.lower(): value for name, value in response.headers.items()}
    if response.status_code >= 400:
        raise _api_error(operation, response, token)
    return Response(_value(response), response.status_code, headers)


def _value(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return {}
    content_type = response.headers.get("content-type", "")
    if _is_json(content_type):
        try:
            return json.loads(response.content)
        except ValueError:
            pass
    return {"body": response.content, "content_type": content_type}


def _api_error(operation: Operation, response: httpx.Response, token: str) -> APIError:
    status = response.status_code
    problem = _problem(response)
    if problem is not None:
        title = _truncate(_text(problem.get("title")), _ERROR_EXCERPT_CHARS)
        detail = _truncate(_text(problem.get("detail")) or _text(problem.get("error")), _ERROR_DETAIL_CHARS)
        body_retry_after = problem.get("retry_after")
    else:
        title, body_retry_after = None, None
        detail = _excerpt(response)
        if detail and detail.lower() in (response.reason_phrase.lower(), f"{status} {response.reason_phrase}".lower()):
            detail = None  # an HTML page whose title only restates the status
    retry_after = retry_after_seconds(body_retry_after, response.headers.get("retry-after"), detail, now=time.time())
    return APIError.for_status(status)(
        status,
        operation=operation.short_name,
        title=_redact(title, token),
        detail=_redact(detail, token),
        retry_after=retry_after,
    )


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    if not _is_json(response.headers.get("content-type", "")):
        return None
    try:
        value = json.loads(response.content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _excerpt(response: httpx.Response) -> str | None:
    """A short, readable excerpt of a non-JSON error body (HTML pages included)."""
    text = response.content[:65536].decode("utf-8", "replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    else:
        text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.IGNORECASE | re.DOTALL)
        text = re.sub(r"<[^>]+>", " ", text)
    return _truncate(" ".join(text.split()), _ERROR_EXCERPT_CHARS) or None


def _truncate(text: str | None, limit: int) -> str | None:
    if text and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _redact(text: str | None, token: str) -> str | None:
    if text and token and token in text:
        return text.replace(token, "[redacted]")
    return text


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _json_bytes(body: Any, label: str) -> bytes:
    return json.dumps(_jsonable(body, label), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _jsonable(value: Any, label: str) -> Any:
    """``value`` with Lua byte strings (values and keys) turned into text."""
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ArgumentError(
                f"{label}: a binary string cannot be sent in a JSON body; "
                "upload it with create_file or pass a data: URL"
            ) from None
    if isinstance(value, Mapping):
        return {_jsonable(k, label): _jsonable(v, label) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, label) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ArgumentError(f"{label}: cannot send a {type(value).__name__} as JSON")


def _capped(base: httpx.Timeout, limit: float | None) -> httpx.Timeout:
    if limit is None:
        return base

    def cap(value: float | None) -> float:
        return limit if value is None else min(value, limit)

    return httpx.Timeout(connect=cap(base.connect), read=cap(base.read), write=cap(base.write), pool=cap(base.pool))


def _prefer_within(prefer: str, timeout: float) -> str | None:
    """``Prefer: wait[=n]`` shortened so the server answers before ``timeout`` runs out
    (with a second to spare); None when there is no time left to wait at all."""
    match = re.fullmatch(r"wait(?:=(\d+))?", prefer.strip())
    if not match:
        return prefer
    wanted = int(match.group(1) or 60)
    allowed = math.floor(timeout - 1)
    if wanted <= allowed:
        return prefer
    return f"wait={allowed}" if allowed >= 1 else None
