"""A small streaming ``multipart/form-data`` parser: file parts go straight to disk, chunk by chunk.

Starlette's own form parser needs ``python-multipart``, which the project does not depend on; this one reads
``request.stream()``, keeps at most one network chunk plus the boundary in memory, and writes each file part
to a sink the caller opens. Plain fields are kept in memory up to ``MAX_FIELD_BYTES``. File names are decoded
from ``filename*=UTF-8''...`` (RFC 5987/2231) or, as browsers and httpx send them, raw UTF-8 in ``filename``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import BinaryIO, cast
from urllib.parse import unquote

MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class MultipartError(ValueError):
    pass


class TooLarge(MultipartError):
    pass


@dataclass
class FilePart:
    name: str
    filename: str
    content_type: str | None
    size: int = 0


@dataclass
class ParsedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)


def boundary_of(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise MultipartError("not multipart/form-data")
    for name, value in _PARAM.findall(";" + params):
        if name.lower() == "boundary":
            return cast(bytes, value.strip('"').encode("latin-1"))
    raise MultipartError("no boundary")


def _disposition(header: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, raw in _PARAM.findall(header[header.find(";") :] if ";" in header else ""):
        value = raw.strip()
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[name.lower()] = value
    if "filename*" in params:
        charset, _, rest = params["filename*"].partition("'")
        _, _, encoded = rest.partition("'")
        params["filename"] = unquote(encoded, encoding=charset or "utf-8", errors="replace")
    return params


async def parse_multipart(
    chunks: AsyncIterator[bytes],
    boundary: bytes,
    open_sink: Callable[[FilePart], BinaryIO],
    *,
    max_file_bytes: int,
) -> ParsedForm:
    """Parse the body; ``open_sink(part)`` returns a writable binary file for each file part (caller closes)."""
    form = ParsedForm()
    delimiter = b"\r\n--" + boundary
    buffer = bytearray(b"\r\n")  # so the first boundary looks like every later one
    state = "preamble"
    part: FilePart | None = None
    sink: BinaryIO | None = None
    value = bytearray()
    name = ""

    def emit(data: bytes) -> None:
        nonlocal part
        if not data:
            return
        if part is not None and sink is not None:
            part.size += len(data)
            if part.size > max_file_bytes:
                raise TooLarge(f"file larger than {max_file_bytes} bytes")
            sink.write(data)
        else:
            value.extend(data)
            if len(value) > MAX_FIELD_BYTES:
                raise TooLarge("form field too large")

    async for chunk in chunks:
        buffer.extend(chunk)
        while True:
            if state == "preamble":
                at = buffer.find(delimiter)
                if at < 0:
                    del buffer[: max(0, len(buffer) - len(delimiter))]
                    break
                del buffer[: at + len(delimiter)]
                state = "after_boundary"
            if state == "after_boundary":
                if len(buffer) < 2:
                    break
                if buffer[:2] == b"--":
                    return form
                if buffer[:2] != b"\r\n":
                    raise MultipartError("malformed boundary line")
                del buffer[:2]
                state = "headers"
            if state == "headers":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEADER_BYTES:
                        raise MultipartError("part headers too large")
                    break
                headers = bytes(buffer[:end]).decode("utf-8", errors="replace").split("\r\n")
                del buffer[: end + 4]
                parsed = {}
                for line in headers:
                    key, _, header_value = line.partition(":")
                    parsed[key.strip().lower()] = header_value.strip()
                params = _disposition(parsed.get("content-disposition", ""))
                name = params.get("name", "")
                value = bytearray()
                if "filename" in params:
                    part = FilePart(name, params["filename"], parsed.get("content-type"))
                    sink = open_sink(part)
                    form.files.append(part)
                else:
                    part, sink = None, None
                state = "body"
            if state == "body":
                at = buffer.find(delimiter)
                if at < 0:
                    keep = len(delimiter) + 1
                    if len(buffer) > keep:
                        emit(bytes(buffer[:-keep]))
                        del buffer[:-keep]
                    break
                emit(bytes(buffer[:at]))
                del buffer[: at + len(delimiter)]
                if part is None:
                    form.fields[name] = value.decode("utf-8", errors="replace")
                part, sink = None, None
                state = "after_boundary"
    raise MultipartError("body ended before the closing boundary")
