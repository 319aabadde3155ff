"""A small ``multipart/form-data`` parser for the simulated ``POST /files``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r';\s*([\w*-]+)="?((?<=")[^"]*|[^";]*)"?')


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """The parts of a form by field name; ValueError when the body is malformed."""
    params = dict(_PARAM.findall(";" + content_type.split(";", 1)[-1]))
    boundary = params.get("boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise ValueError("expected multipart/form-data with a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise ValueError("no parts")
    parts: dict[str, Part] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without headers")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = dict(_PARAM.findall(";" + headers.get("content-disposition", "").split(";", 1)[-1]))
        if "name" not in disposition:
            raise ValueError("part without a name")
        parts[disposition["name"]] = Part(
            name=disposition["name"],
            filename=disposition.get("filename"),
            content_type=headers.get("content-type"),
            data=data.removesuffix(b"\r\n"),
        )
    return parts
