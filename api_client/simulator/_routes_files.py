"""Files, the account, and the default webhook secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ._access import Context, file_or_404
from ._http import Problem, SimRequest, SimResponse, json_response, page, problem, unprocessable
from ._multipart import parse_multipart
from ._render import account_json, file_json
from ._state import File

MAX_FILENAME_BYTES = 255
# Replicate's front proxy answers oversized uploads with an HTML page, not JSON.
TOO_LARGE_HTML = (
    b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    b"<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def download_signature(key: bytes, owner: str, file_id: str, expiry: int | str) -> str:
    """base64(HMAC-SHA256(key, "{owner} {id} {expiry}")), as files.download expects."""
    digest = hmac.new(key, f"{owner} {file_id} {expiry}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def create_file(ctx: Context, request: SimRequest) -> SimResponse:
    if len(request.body) > ctx.max_upload_bytes + 64 * 1024:
        return _too_large()
    try:
        parts = parse_multipart(request.headers.get("content-type", ""), request.body)
    except ValueError as exc:
        raise Problem(problem(400, f"Invalid multipart/form-data body: {exc}")) from None
    content = parts.get("content")
    if content is None:
        raise Problem(unprocessable([("content", "content is required")]))
    if len(content.data) > ctx.max_upload_bytes:
        return _too_large()
    filename = _text(parts, "filename") or content.filename or "upload"
    if len(filename.encode("utf-8")) > MAX_FILENAME_BYTES:
        raise Problem(unprocessable([("filename", "must be at most 255 bytes")]))
    content_type = _text(parts, "type") or content.content_type or "application/octet-stream"
    try:
        metadata = json.loads(_text(parts, "metadata") or "{}")
    except ValueError:
        raise Problem(unprocessable([("metadata", "must be valid JSON")])) from None
    if not isinstance(metadata, dict):
        raise Problem(unprocessable([("metadata", "must be a JSON object")]))
    file = File(
        id=ctx.state.new_id(),
        owner=request.user,
        name=filename,
        content_type=content_type,
        content=content.data,
        metadata=metadata,
        created_at=ctx.now(),
    )
    ctx.state.files[file.id] = file
    return json_response(201, file_json(file, request.base_url))


def list_files(ctx: Context, request: SimRequest) -> SimResponse:
    now = ctx.now()
    files = [f for f in ctx.state.files.values() if f.owner == request.user and now < f.expires_at]
    files.sort(key=lambda f: f.created_at, reverse=True)
    items = [file_json(f, request.base_url) for f in files]
    return page(request, "/files", items, ctx.page_size)


def get_file(ctx: Context, request: SimRequest) -> SimResponse:
    file = file_or_404(ctx, request, request.params["file_id"])
    return json_response(200, file_json(file, request.base_url))


def delete_file(ctx: Context, request: SimRequest) -> SimResponse:
    file = file_or_404(ctx, request, request.params["file_id"])
    del ctx.state.files[file.id]
    return SimResponse(204, {}, b"")


def download_file(ctx: Context, request: SimRequest) -> SimResponse:
    file_id = request.params["file_id"]
    missing = [n for n in ("owner", "expiry", "signature") if not request.query.get(n)]
    if missing:
        raise Problem(problem(400, f"Missing query parameter: {missing[0]}"))
    owner, expiry = request.query["owner"], request.query["expiry"]
    expected = download_signature(ctx.signing_key(), owner, file_id, expiry)
    file = ctx.state.files.get(file_id)
    if (
        file is None
        or not hmac.compare_digest(expected, request.query["signature"])
        or not expiry.isdigit()
        or int(expiry) < ctx.now()
        or file.owner not in (None, owner)
        or ctx.now() >= file.expires_at
    ):
        raise Problem(problem(404, "File not found"))
    return SimResponse(200, {"Content-Type": "application/octet-stream"}, file.content)


def get_account(ctx: Context, request: SimRequest) -> SimResponse:
    return json_response(200, account_json(request.user))


def get_default_webhook_secret(ctx: Context, request: SimRequest) -> SimResponse:
    digest = hashlib.sha256(b"luaq-sim-webhook:" + ctx.signing_key() + request.user.encode())
    return json_response(200, {"key": "whsec_" + base64.b64encode(digest.digest()[:24]).decode()})


ROUTES = [
    ("GET", "/files", list_files),
    ("POST", "/files", create_file),
    ("GET", "/files/{file_id}", get_file),
    ("DELETE", "/files/{file_id}", delete_file),
    ("GET", "/files/{file_id}/download", download_file),
    ("GET", "/account", get_account),
    ("GET", "/webhooks/default/secret", get_default_webhook_secret),
]


def _text(parts, name: str) -> str | None:
    part = parts.get(name)
    return part.data.decode("utf-8", "replace") if part is not None else None


def _too_large() -> SimResponse:
    return SimResponse(413, {"Content-Type": "text/html"}, TOO_LARGE_HTML)
