"""Where the bytes of an upload (``create_file``'s ``content``) come from.

A Lua string arrives as ``bytes`` or ``str`` and means, in this order:

1. a ``data:`` URL: its decoded bytes (and its MIME type as the default ``type``);
2. the name of a file attached to the job: that attachment's bytes;
3. something that looks like a host path (``/``, ``./``, ``../``, ``~``): read only when it
   resolves, symlinks followed, inside a directory allowed with ``--allow-read``;
   otherwise an ArgumentError: workers never read their own filesystem for a script;
4. anything else: the string itself.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from ._errors import ArgumentError

__all__ = ["MAX_UPLOAD_BYTES", "FileSource", "Upload"]

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
DEFAULT_FILENAME = "upload"
DEFAULT_TYPE = "application/octet-stream"
_PATH_PREFIXES = ("/", "./", "../", "~")
_MAX_PATH_BYTES = 4096


@dataclass(frozen=True)
class Upload:
    """The resolved parts of a ``create_file`` request."""

    content: bytes
    filename: str
    content_type: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileSource:
    """What a job may upload besides the bytes it holds: its attachments, and (only for
    ``luaq run`` on the user's machine) files inside the ``allow_read`` directories."""

    attachments: Mapping[str, bytes] = field(default_factory=dict)
    allow_read: Sequence[str | os.PathLike[str]] = ()
    max_bytes: int = MAX_UPLOAD_BYTES

    def resolve(self, fields: Mapping[str, Any], label: str = "replicate.create_file") -> Upload:
        """The upload described by ``create_file``'s validated body fields."""
        content, filename, content_type = self._content(fields["content"], label)
        if len(content) > self.max_bytes:
            raise _too_large(len(content), self.max_bytes, label)
        filename = fields.get("filename") or filename or DEFAULT_FILENAME
        content_type = (
            fields.get("type") or content_type or mimetypes.guess_type(filename, strict=False)[0] or DEFAULT_TYPE
        )
        return Upload(content, filename, content_type, fields.get("metadata") or {})

    def _content(self, value: bytes | str, label: str) -> tuple[bytes, str | None, str | None]:
        """(bytes, default filename, default content type) for a ``content`` value."""
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if raw[:5].lower() == b"data:":
            data, mime = _decode_data_url(raw, label)
            return data, None, mime
        text = _as_text(raw)
        if text is not None and text in self.attachments:
            return bytes(self.attachments[text]), os.path.basename(text), None
        if text is not None and _looks_like_path(text):
            return self._read_allowed(text, label), os.path.basename(text), None
        return raw, None, None

    def _read_allowed(self, text: str, label: str) -> bytes:
        real = os.path.realpath(os.path.expanduser(text))
        if not any(_inside(real, directory) for directory in self.allow_read):
            raise ArgumentError(_host_path_message(text, bool(self.allow_read)), argument="content")
        try:
            size = os.path.getsize(real)
            if size > self.max_bytes:
                raise _too_large(size, self.max_bytes, label)
            with open(real, "rb") as handle:
                return handle.read(self.max_bytes + 1)
        except OSError as exc:
            raise ArgumentError(
                f"content {text!r} for {label} cannot be read: {exc.strerror or exc}",
                argument="content",
            ) from exc


def _decode_data_url(raw: bytes, label: str) -> tuple[bytes, str | None]:
    header, sep, payload = raw[5:].partition(b",")
    if not sep:
        raise ArgumentError(f"content for {label} is a data: URL without a comma", argument="content")
    params = header.decode("ascii", "replace").split(";")
    mime = params[0].strip() or None
    if any(p.strip().lower() == "base64" for p in params[1:]):
        try:
            return base64.b64decode(payload, validate=False), mime
        except (binascii.Error, ValueError) as exc:
            raise ArgumentError(f"content for {label} is a data: URL with invalid base64", argument="content") from exc
    return unquote_to_bytes(payload), mime


def _as_text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(_PATH_PREFIXES)
        and "\n" not in text
        and "\0" not in text
        and len(text.encode("utf-8")) < _MAX_PATH_BYTES
    )


def _inside(real: str, directory: str | os.PathLike[str]) -> bool:
    root = os.path.realpath(os.path.expanduser(os.fspath(directory)))
    return os.path.commonpath([real, root]) == root


def _host_path_message(text: str, some_allowed: bool) -> str:
    where = (
        "it is outside the directories allowed with `luaq run --allow-read DIR`"
        if some_allowed
        else "luaq never reads host files unless `luaq run --allow-read DIR` allows that directory"
    )
    return (
        f"content {text!r} looks like a path on the host; {where}. Pass the bytes "
        "themselves, a data: URL, or attach the file at submission "
        "(luaq submit --file NAME=PATH)"
    )


def _too_large(size: int, limit: int, label: str) -> ArgumentError:
    mib = 1024 * 1024
    bound = f"{limit // mib} MiB" if limit % mib == 0 else f"{limit} bytes"
    return ArgumentError(
        f"content for {label} is {size} bytes; files must be less than {bound}",
        argument="content",
    )
