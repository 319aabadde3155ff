"""Unexpected answers never crash the client: every 4xx/5xx body becomes a typed APIError
with a readable, bounded message; odd success bodies come back as values."""

from __future__ import annotations

import json

import httpx
import pytest

from api_client import NO_RETRY, Account, APIError, ReplicateClient

ERROR_BODIES = [
    pytest.param(500, b"", "application/json", "replicate.get_account: 500 Internal Server Error", id="empty-500"),
    pytest.param(500, b"", "", "replicate.get_account: 500 Internal Server Error", id="empty-no-type"),
    pytest.param(
        502, b"{not json", "application/json", "replicate.get_account: 502 Bad Gateway: {not json", id="invalid-json"
    ),
    pytest.param(
        400,
        b'[{"detail": "a"}, 2]',
        "application/json",
        'replicate.get_account: 400 Bad Request: [{"detail": "a"}, 2]',
        id="json-array",
    ),
    pytest.param(422, b'"just a string"', "application/problem+json", None, id="json-string"),
    pytest.param(
        422,
        b'{"detail": {"field": "input", "why": "missing"}, "title": 7}',
        "application/problem+json",
        'replicate.get_account: 422 7: {"field": "input", "why": "missing"}',
        id="non-string-fields",
    ),
    pytest.param(
        400,
        b'{"error": "bad cursor"}',
        "application/json",
        "replicate.get_account: 400 Bad Request: bad cursor",
        id="error",
    ),
    pytest.param(418, b"\xff\xfe\x00binary", "application/octet-stream", None, id="binary"),
    pytest.param(
        599, b"<html><body><h1>Oops</h1></body></html>", "text/html", "replicate.get_account: 599: Oops", id="html"
    ),
    pytest.param(
        503,
        b"<html><script>var x = 1;</script><p>maintenance</p></html>",
        "text/html; charset=utf-8",
        "replicate.get_account: 503 Service Unavailable: maintenance",
        id="html-script",
    ),
]


def client_for(status: int, body: bytes, content_type: str) -> ReplicateClient:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return httpx.Response(status, headers=headers, content=body)

    return ReplicateClient(Account("default", "r8_token"), transport=httpx.MockTransport(handler), retry=NO_RETRY)


@pytest.mark.parametrize(("status", "body", "content_type", "message"), ERROR_BODIES)
def test_any_error_body_becomes_an_api_error(status, body, content_type, message):
    """Empty, invalid, non-object, non-string and non-JSON bodies all give an APIError."""
    with client_for(status, body, content_type) as client, pytest.raises(APIError) as caught:
        client.call("get_account")
    assert caught.value.status == status
    assert str(caught.value).startswith(f"replicate.get_account: {status}")
    if message is not None:
        assert str(caught.value) == message


@pytest.mark.parametrize("content_type", ["application/problem+json", "text/plain", "text/html"])
def test_huge_error_bodies_give_a_bounded_detail(content_type):
    """A multi-megabyte error body is cut to a short detail."""
    text = "overloaded " * 500_000
    body = json.dumps({"detail": text, "title": "T" * 5000}).encode() if "json" in content_type else text.encode()
    with client_for(500, body, content_type) as client, pytest.raises(APIError) as caught:
        client.call("get_account")
    assert len(str(caught.value)) <= 2300
    assert caught.value.detail.endswith("…")
    if caught.value.title:
        assert len(caught.value.title) <= 200


@pytest.mark.parametrize(
    ("status", "body", "content_type", "value"),
    [
        (200, b"[1, 2]", "application/json", [1, 2]),
        (200, b"null", "application/json", None),
        (200, b"", "application/json", {}),
        (204, b"", "", {}),
        (200, b"{broken", "application/json", {"body": b"{broken", "content_type": "application/json"}),
        (200, b"plain", "", {"body": b"plain", "content_type": ""}),
    ],
)
def test_odd_success_bodies_come_back_as_values(status, body, content_type, value):
    """A success with a surprising body is returned, not raised."""
    with client_for(status, body, content_type) as client:
        assert client.call("get_account").value == value
