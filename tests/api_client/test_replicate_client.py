"""ReplicateClient: building requests, decoding answers, and the typed error boundary."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from api_client import (
    NO_RETRY,
    Account,
    APIError,
    ArgumentError,
    ConfigurationError,
    NotFound,
    RateLimited,
    ReplicateClient,
    ReplicateError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from api_client.simulator import SimulatorTransport

TOKEN = "r8_secret_token_123"


def mock_client(handler, **kwargs) -> ReplicateClient:
    kwargs.setdefault("retry", NO_RETRY)
    return ReplicateClient(Account("default", TOKEN), transport=httpx.MockTransport(handler), **kwargs)


def answer(status: int, body=None, *, content_type="application/json", headers=None):
    def handler(request: httpx.Request) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, headers={"Content-Type": content_type, **(headers or {})}, content=content)

    return handler


# --- against the simulator -----------------------------------------------------------


def test_json_response_is_decoded(client):
    """A JSON answer comes back decoded, with its status and lower-case headers."""
    response = client.call("get_account")
    assert response.http_status == 200
    assert response.value["username"] == "luaq-sim"
    assert response.headers["ratelimit-remaining"] == "2999"


def test_any_name_form_or_operation_object_is_accepted(client, catalog):
    """The long name, short name, slug and the Operation itself all work."""
    for name in ("get_authenticated_account", "get_account", "replicate_get_account"):
        assert client.call(name).value["username"] == "luaq-sim"
    assert client.call(catalog["get_account"]).http_status == 200


def test_json_body_creates_a_prediction(client):
    """A JSON body reaches the simulator and the new prediction is returned."""
    response = client.call(
        "create_prediction",
        {
            "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
            "input": {"text": "Alice"},
        },
    )
    assert response.http_status == 201
    assert response.value["status"] == "starting"
    assert response.value["input"] == {"text": "Alice"}
    assert response.headers["ratelimit-remaining"] == "599"


def test_text_body_searches_models(client):
    """search_models sends its QUERY with a text/plain body."""
    results = client.call("search_models", {"body": "flux"}).value["results"]
    assert [m["name"] for m in results] == ["flux-schnell"]


def test_multipart_upload_creates_a_file(client):
    """create_file uploads multipart content and the file object describes it."""
    value = client.call(
        "create_file",
        {"content": b"hello world", "filename": "hi.txt", "metadata": {"source": "test"}},
    ).value
    assert value["name"] == "hi.txt"
    assert value["content_type"] == "text/plain"
    assert value["size"] == 11
    assert value["checksums"]["sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert value["metadata"] == {"source": "test"}


def test_non_json_response_is_body_and_content_type(client):
    """A Markdown README comes back as raw bytes with its content type."""
    value = client.call("get_model_readme", {"model_owner": "replicate", "model_name": "hello-world"}).value
    assert value["body"].startswith(b"# Hello World")
    assert value["content_type"].startswith("text/plain")


def test_empty_response_is_an_empty_table(client):
    """A 204 answer becomes {}."""
    file_id = client.call("create_file", {"content": "x"}).value["id"]
    response = client.call("delete_file", {"file_id": file_id})
    assert (response.http_status, response.value) == (204, {})


def test_not_found_is_a_typed_error_with_the_reference_message(client):
    """A 404 problem+json is NotFound and reads like the reference's error text."""
    with pytest.raises(NotFound) as caught:
        client.call("get_prediction", {"prediction_id": "nope"})
    error = caught.value
    assert str(error) == ("replicate.get_prediction: 404 Not Found: The requested resource could not be found.")
    assert (error.status, error.title, error.operation) == (404, None, "get_prediction")
    assert error.error_type == "api_error"


def test_invalid_version_is_validation_failed_with_its_title(client):
    """The real 422 for an unknown version keeps its title and detail."""
    with pytest.raises(ValidationFailed) as caught:
        client.call("create_prediction", {"version": "nope", "input": {}})
    assert caught.value.title == "Invalid version or not permitted"
    assert str(caught.value).startswith(
        "replicate.create_prediction: 422 Invalid version or not permitted: The specified"
    )


def test_wrong_token_is_unauthorized_and_the_token_never_shows(transport):
    """A bad token gives the real 401, and no error text or repr contains the token."""
    account = Account("default", TOKEN)
    with (
        ReplicateClient(account, transport=transport) as client,
        pytest.raises(Unauthorized) as caught,
    ):
        client.call("get_account")
        error = caught.value
        assert str(error) == (
            "replicate.get_account: 401 Unauthenticated: You did not pass a valid authentication token"
        )
        for text in (str(error), repr(error), repr(error.args), repr(client), repr(account)):
            assert TOKEN not in text


def test_missing_token_is_a_configuration_error(transport):
    """Without a token nothing is sent and the error says how to configure one."""
    with (
        ReplicateClient(Account("default"), transport=transport) as client,
        pytest.raises(ConfigurationError) as caught,
    ):
        client.call("get_account")
    assert str(caught.value) == (
        "no Replicate API token for account 'default': set REPLICATE_API_TOKEN (or "
        "REPLICATE_API_TOKEN_<NAME> for a named account), or use --simulate"
    )
    assert caught.value.error_type == "configuration_error"
    with (
        ReplicateClient(Account("work"), transport=transport) as client,
        pytest.raises(ConfigurationError, match="set REPLICATE_API_TOKEN_WORK, or use"),
    ):
        client.call("get_account")


def test_argument_errors_come_before_any_request(transport, simulator):
    """Invalid arguments fail without reaching the transport."""
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={})

    with (
        mock_client(handler) as client,
        pytest.raises(ArgumentError),
    ):
        client.call("get_prediction", {})
        with pytest.raises(ArgumentError, match="unknown function"):
            client.call("get_predictoin", {})
    assert seen == []


def test_simulator_throttling_is_rate_limited_with_retry_after(accounts, transport, simulator):
    """The simulator's 429 becomes RateLimited carrying retry_after (retries off)."""
    simulator.throttle(retry_after=7)
    with (
        ReplicateClient(accounts["default"], transport=transport, retry=NO_RETRY) as client,
        pytest.raises(RateLimited) as caught,
    ):
        client.call("get_account")
    assert caught.value.retry_after == 7
    assert caught.value.retries == [] and caught.value.http_requests == 1


def test_simulator_throttling_is_waited_out_by_the_default_policy(client, simulator, clock):
    """With the default policy the 429's retry_after is slept (on the fake clock) and the
    call succeeds, reporting the retry."""
    simulator.throttle(retry_after=7)
    response = client.call("get_account")
    assert response.http_status == 200
    assert clock.sleeps == [7]
    assert response.retries == [{"operation": "get_account", "attempt": 1, "http_status": 429, "waited_s": 7}]
    assert response.http_requests == 2


# --- against httpx.MockTransport handlers --------------------------------------------


def test_requests_carry_auth_accept_and_user_agent():
    """Every request has the bearer token, JSON accept header and luaq's user agent."""
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    with mock_client(handler) as client:
        client.call("list_models", {"sort_by": "model_created_at"})
    request = seen[0]
    assert request.method == "GET"
    assert str(request.url) == "https://api.replicate.com/v1/models?sort_by=model_created_at"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"].startswith("luaq/")


def test_json_and_text_bodies_are_encoded_with_their_content_types():
    """JSON bodies are JSON; search_models is a QUERY with a text/plain body."""
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(201, json={})

    with mock_client(handler) as client:
        client.call("create_prediction", {"version": "v", "input": {"text": "é"}, "prefer": "wait"})
        client.call("search_models", {"body": "hello"})
    create, search = seen
    assert create.headers["content-type"] == "application/json"
    assert json.loads(create.content) == {"version": "v", "input": {"text": "é"}}
    assert create.headers["prefer"] == "wait"
    assert (search.method, search.headers["content-type"], search.content) == (
        "QUERY",
        "text/plain",
        b"hello",
    )


def test_byte_strings_inside_json_bodies_are_sent_as_text():
    """Nested Lua byte strings (keys and values) are sent as JSON text; binary is refused."""
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(201, json={})

    with mock_client(handler) as client:
        client.call("create_prediction", {"version": "v", "input": {"a": {b"k": [b"v"]}}})
        with pytest.raises(ArgumentError, match="binary string cannot be sent"):
            client.call("create_prediction", {"version": "v", "input": {"a": b"\xff"}})
    assert json.loads(seen[0].content)["input"] == {"a": {"k": ["v"]}}
    assert len(seen) == 1


def test_multipart_parts_carry_filename_type_and_metadata():
    """The content part has the filename and type; the form fields repeat them."""
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(201, json={})

    with mock_client(handler) as client:
        client.call(
            "create_file",
            {"body": {"content": b"\x89PNG", "filename": "a.png", "metadata": {"k": 1}}},
        )
    body = seen[0].read()
    assert seen[0].headers["content-type"].startswith("multipart/form-data; boundary=")
    assert (
        b'Content-Disposition: form-data; name="content"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG'
    ) in body
    assert b'name="type"\r\n\r\nimage/png' in body
    assert b'name="metadata"\r\n\r\n{"k": 1}' in body


def test_invalid_json_response_falls_back_to_the_raw_body():
    """A JSON content type with a broken body is returned raw rather than crashing."""
    with mock_client(answer(200, b"{not json")) as client:
        value = client.call("get_account").value
    assert value == {"body": b"{not json", "content_type": "application/json"}


def test_html_413_becomes_an_api_error():
    """An HTML error page is an APIError; a title that only restates the status adds no detail."""
    html = b"<html><head><title>413 Request Entity Too Large</title></head><body>...</body></html>"
    with (
        mock_client(answer(413, html, content_type="text/html")) as client,
        pytest.raises(APIError) as caught,
    ):
        client.call("create_file", {"content": "x"})
    assert type(caught.value) is APIError
    assert str(caught.value) == "replicate.create_file: 413 Request Entity Too Large"
    assert caught.value.detail is None


def test_plain_text_error_detail_is_truncated():
    """A long non-JSON error body is cut to a readable excerpt."""
    with (
        mock_client(answer(502, b"upstream " * 100, content_type="text/plain")) as client,
        pytest.raises(APIError) as caught,
    ):
        client.call("get_account")
    assert caught.value.status == 502
    assert len(caught.value.detail) == 200 and caught.value.detail.endswith("…")


def test_html_page_title_becomes_the_detail():
    """An HTML page whose title says more than the status gives that title as detail."""
    html = b"<html><head><title>Bad gateway: upstream reset</title></head><body>x</body></html>"
    with (
        mock_client(answer(502, html, content_type="text/html")) as client,
        pytest.raises(APIError) as caught,
    ):
        client.call("get_account")
    assert str(caught.value) == "replicate.get_account: 502 Bad Gateway: Bad gateway: upstream reset"


def test_simulator_413_html_page_becomes_an_api_error(accounts, clock):
    """The simulator's real-looking HTML 413 reaches the caller as an APIError."""
    from api_client.simulator import Simulator

    simulator = Simulator(clock=clock, sleep=clock.sleep, max_upload_bytes=10)
    with (
        ReplicateClient(accounts["default"], transport=SimulatorTransport(simulator)) as client,
        pytest.raises(APIError) as caught,
    ):
        client.call("create_file", {"content": b"x" * 11})
    assert caught.value.status == 413
    assert str(caught.value) == "replicate.create_file: 413 Request Entity Too Large"


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ({"detail": "Request was throttled.", "status": 429, "retry_after": 5}, {}, 5.0),
        ({"detail": "Request was throttled."}, {"Retry-After": "3"}, 3.0),
        ({"detail": "Request was throttled. Your rate limit resets in ~30s."}, {}, 30.0),
        ({"detail": "Request was throttled. Expected available in 1 second."}, {}, 1.0),
        ({"detail": "Request was throttled."}, {}, None),
    ],
)
def test_rate_limited_reads_retry_after_from_body_header_or_detail(body, headers, expected):
    """retry_after comes from the body, else the Retry-After header, else the detail."""
    handler = answer(429, body, content_type="application/problem+json", headers=headers)
    with mock_client(handler) as client, pytest.raises(RateLimited) as caught:
        client.call("create_prediction", {"version": "v", "input": {}})
    assert caught.value.retry_after == expected


def test_retry_after_http_date_is_turned_into_seconds():
    """A Retry-After HTTP date in the future yields a positive delay."""
    handler = answer(
        429,
        {"detail": "slow down"},
        content_type="application/problem+json",
        headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"},
    )
    with mock_client(handler) as client, pytest.raises(RateLimited) as caught:
        client.call("get_account")
    assert caught.value.retry_after > 0


def test_other_statuses_map_to_the_base_api_error():
    """A 500 problem+json is a plain APIError with the status and reason phrase."""
    handler = answer(500, {"detail": "Search service error"})
    with mock_client(handler) as client, pytest.raises(APIError) as caught:
        client.call("search", {"query": "x"})
    assert type(caught.value) is APIError
    assert str(caught.value) == "replicate.search: 500 Internal Server Error: Search service error"


def test_a_token_echoed_by_the_server_is_redacted():
    """Even if an error body quoted the token, the error text would not."""
    handler = answer(401, {"detail": f"bad token {TOKEN}"}, content_type="application/problem+json")
    with mock_client(handler) as client, pytest.raises(Unauthorized) as caught:
        client.call("get_account")
    assert TOKEN not in str(caught.value)
    assert "[redacted]" in caught.value.detail


@pytest.mark.parametrize(
    ("exception", "message"),
    [
        (httpx.ConnectError("connection refused"), "could not reach Replicate: connection refused"),
        (httpx.ReadTimeout("timed out"), "request timed out (ReadTimeout)"),
    ],
)
def test_transport_failures_become_transport_errors(exception, message):
    """httpx exceptions are translated once, chained, into TransportError."""

    def handler(request):
        raise exception

    with mock_client(handler) as client, pytest.raises(TransportError) as caught:
        client.call("get_account")
    assert str(caught.value) == f"replicate.get_account: {message}"
    assert caught.value.__cause__ is exception
    assert caught.value.error_type == "transport_error"
    assert isinstance(caught.value, ReplicateError)


def test_call_timeout_caps_every_httpx_timeout():
    """A call timeout lowers each of connect/read/write/pool to at most that value."""
    seen = []

    def handler(request):
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    with mock_client(handler) as client:
        client.call("get_account", timeout=2.5)
        client.call("get_account")
    assert all(0 < value <= 2.5 for value in seen[0].values())
    assert seen[1]["read"] == 120.0


@pytest.mark.parametrize(
    ("prefer", "timeout", "sent"),
    [
        ("wait", 10, "wait=9"),
        ("wait=5", 10, "wait=5"),
        ("wait=30", 10.9, "wait=9"),
        ("wait", 1.5, None),
    ],
)
def test_prefer_wait_is_shortened_to_fit_the_call_timeout(prefer, timeout, sent):
    """The server is asked to wait no longer than the call may last."""
    seen = []

    def handler(request):
        seen.append(request.headers.get("prefer"))
        return httpx.Response(201, json={})

    with mock_client(handler) as client:
        client.call("create_prediction", {"version": "v", "input": {}, "Prefer": prefer}, timeout=timeout)
    assert seen == [sent]


class RecordingLimiter:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, float | None]] = []
        self.error = error

    def acquire(self, account: str, bucket: str, *, timeout: float | None) -> None:
        self.calls.append((account, bucket, timeout))
        if self.error:
            raise self.error


def test_the_limiter_is_asked_before_each_send_with_the_right_bucket():
    """Creating a prediction uses the "create" bucket, everything else "other"."""
    limiter = RecordingLimiter()
    with mock_client(answer(200, {}), limiter=limiter) as client:
        client.call("create_prediction", {"version": "v", "input": {}}, timeout=9)
        client.call("get_prediction", {"prediction_id": "p"})
    (account, bucket, timeout), other = limiter.calls
    assert (account, bucket) == ("default", "create") and 8.5 < timeout <= 9
    assert other == ("default", "other", None)


def test_a_limiter_refusal_stops_the_request():
    """When the limiter raises, nothing is sent and its error reaches the caller."""
    sent = []
    refusal = RateLimited(429, operation="get_account", detail="local limit", retry_after=2)

    def handler(request):
        sent.append(request)
        return httpx.Response(200, json={})

    with (
        mock_client(handler, limiter=RecordingLimiter(refusal)) as client,
        pytest.raises(RateLimited),
    ):
        client.call("get_account")
    assert sent == []


def test_an_abandoned_call_sends_nothing_more():
    """Inside abandon_when(check): nothing is sent once check() holds, even when it turns
    true during the limiter's wait, and the call raises CallAbandoned."""
    from api_client import CallAbandoned, abandon_when

    sent = []

    def handler(request):
        sent.append(request)
        return httpx.Response(200, json={})

    gave_up = []

    class GivingUpWhileWaiting:
        def acquire(self, account, bucket, *, timeout):
            gave_up.append(True)  # the caller stops waiting while this call waits for a slot

    with mock_client(handler, limiter=GivingUpWhileWaiting()) as client, abandon_when(lambda: bool(gave_up)):
        with pytest.raises(CallAbandoned) as raised:
            client.call("create_prediction", {"version": "v", "input": {}})
        assert raised.value.error_type == "cancelled" and "not sent" in str(raised.value)
        with pytest.raises(CallAbandoned):
            client.call("get_account")
    assert sent == []
    with mock_client(handler) as client:
        client.call("get_account")  # outside, calls go out as usual
    assert len(sent) == 1
