"""The ZOHO simulator's streaming multipart parser: any chunking, UTF-8 names, size limit."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import httpx
import pytest

from infra.simulators.zoho.multipart import FilePart, TooLarge, boundary_of, parse_multipart


def _body(files: dict[str, tuple[str, bytes]], data: dict[str, str]) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.read(), request.headers["content-type"]


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _parse(body: bytes, content_type: str, size: int, limit: int = 10**9) -> tuple[dict[str, str], dict[str, bytes]]:
    sinks: dict[str, io.BytesIO] = {}

    def open_sink(part: FilePart) -> io.BytesIO:
        sinks[part.filename] = io.BytesIO()
        return sinks[part.filename]

    form = asyncio.run(parse_multipart(_chunks(body, size), boundary_of(content_type), open_sink, max_file_bytes=limit))
    assert [f.size for f in form.files] == [len(s.getvalue()) for s in sinks.values()]
    return form.fields, {name: sink.getvalue() for name, sink in sinks.items()}


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, 1 << 20])
def test_files_and_fields_survive_any_chunking(chunk: int) -> None:
    payload = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"
    body, content_type = _body({"file": ("报价单 v1.pdf", payload)}, {"attachmentUrl": "https://e.com/a?b=1"})

    fields, files = _parse(body, content_type, chunk)

    assert fields == {"attachmentUrl": "https://e.com/a?b=1"}
    assert files == {"报价单 v1.pdf": payload}


def test_rfc5987_file_names_are_decoded() -> None:
    body = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E5%90%88%E5%90%8C.txt\r\n\r\n"
        b"hello\r\n--XyZ--\r\n"
    )
    _, files = _parse(body, "multipart/form-data; boundary=XyZ", 5)
    assert files == {"合同.txt": b"hello"}


def test_a_file_over_the_limit_is_refused() -> None:
    body, content_type = _body({"file": ("big.bin", b"x" * 5000)}, {})
    with pytest.raises(TooLarge):
        _parse(body, content_type, 512, limit=4096)
