"""Request-body parsing without ``python-multipart``: URL-encoded forms, ``multipart/form-data``, JSON.

Starlette's ``request.form()`` needs the ``python-multipart`` package, which the project does not depend on.
Simulators only see small bodies from tests and connectors, so a plain in-memory parser is enough. File names
may come raw UTF-8 (browsers, httpx), percent-encoded, or as RFC 5987 ``filename*=UTF-8''...``;
all three work.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class FormError(ValueError):
    """The body does not parse as what its ``Content-Type`` says."""


@dataclass(frozen=True)
class UploadedFile:
    field_name: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedBody:
    """Form fields (last value wins), uploaded files, and the JSON value if the body was JSON."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    json: Any = None
    is_json: bool = False


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a header value into its main part and parameters (RFC 5987 values decoded).

    ``'form-data; name="a"; filename*=UTF-8''%E5%90%88'``
    → ``('form-data', {'name': 'a', 'filename': '合'})``.
    """
    main, _, _ = value.partition(";")
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        key = key.lower()
        text = raw.strip()
        if text.startswith('"') and text.endswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        if key.endswith("*"):
            charset, _, rest = text.partition("'")
            _, _, encoded = rest.partition("'")
            params[key[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="replace")
        elif key not in params:  # an RFC 5987 value given earlier wins over the plain one
            params[key] = text
    return main.strip().lower(), params


def _decode_header(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_multipart(body: bytes, content_type: str) -> ParsedBody:
    _, params = header_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise FormError("multipart body without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    parsed = ParsedBody()
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise FormError("multipart body has no parts")
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        part = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        part = part[:-2] if part.endswith(b"\r\n") else part
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            raise FormError("multipart part without a header/body separator")
        headers: dict[str, str] = {}
        for line in head.split(b"\r\n"):
            name, colon, value = _decode_header(line).partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition, disp_params = header_params(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in disp_params:
            raise FormError("multipart part without Content-Disposition: form-data; name=...")
        if "filename" in disp_params:
            filename = disp_params["filename"]
            if "%" in filename:
                filename = unquote(filename)
            parsed.files.append(
                UploadedFile(
                    field_name=disp_params["name"],
                    filename=filename,
                    content_type=headers.get("content-type", "application/octet-stream"),
                    data=data,
                )
            )
        else:
            parsed.fields[disp_params["name"]] = data.decode("utf-8", errors="replace")
    return parsed


def parse_body(body: bytes, content_type: str | None) -> ParsedBody:
    """Parse by ``Content-Type``; a body without one is tried as JSON, then as a URL-encoded form."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return parse_multipart(body, content_type or "")
    text = body.decode("utf-8", errors="replace")
    if kind == "application/json" or (not kind and text.lstrip()[:1] in ("{", "[")):
        if not text.strip():
            return ParsedBody(is_json=True)
        try:
            return ParsedBody(json=json.loads(text), is_json=True)
        except json.JSONDecodeError as exc:
            raise FormError(f"body is not valid JSON: {exc}") from exc
    return ParsedBody(fields=dict(parse_qsl(text, keep_blank_values=True)))
