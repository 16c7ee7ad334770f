"""Stored files (uploads and generated attachments) and how a download answers.

Files live as BLOBs in the simulator's SQLite file (they are small), keyed by a ``fileid`` (``imagefileid``
in e-cology). A download is streamed in chunks with the file's Content-Type and a Content-Disposition carrying
the UTF-8 name twice: percent-encoded in ``filename`` (what e-cology sends to most browsers) and as RFC 5987
``filename*``.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from infra.simulators.common.sqlite import SqliteDb

FILE_ID_START = 90_001
DOWNLOAD_CHUNK = 64 * 1024
DOWNLOAD_PATH = "/weaver/weaver.file.FileDownload"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS files (
        fileid INTEGER PRIMARY KEY, filename TEXT NOT NULL, content_type TEXT NOT NULL, size INTEGER NOT NULL,
        data BLOB NOT NULL, created_ms INTEGER NOT NULL, uploader_id INTEGER)""",
)


@dataclass(frozen=True)
class FileMeta:
    fileid: int
    filename: str
    content_type: str
    size: int
    created_ms: int

    @property
    def download_url(self) -> str:
        return f"{DOWNLOAD_PATH}?fileid={self.fileid}&download=1"


def guess_type(filename: str, given: str | None = None) -> str:
    if given and given != "application/octet-stream":
        return given
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def content_disposition(filename: str) -> str:
    encoded = quote(filename, safe="")
    return f"attachment; filename=\"{encoded}\"; filename*=UTF-8''{encoded}"


class FileStore:
    def __init__(self, db: SqliteDb) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def add(
        self, filename: str, data: bytes, created_ms: int, content_type: str | None = None,
        uploader_id: int | None = None,
    ) -> FileMeta:  # fmt: skip
        fileid = self.db.next_sequence("fileid", start=FILE_ID_START)
        kind = guess_type(filename, content_type)
        self.db.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (fileid, filename, kind, len(data), data, created_ms, uploader_id),
        )
        return FileMeta(fileid, filename, kind, len(data), created_ms)

    def meta(self, fileid: int) -> FileMeta | None:
        row = self.db.query_one(
            "SELECT fileid, filename, content_type, size, created_ms FROM files WHERE fileid = ?", (fileid,)
        )
        return FileMeta(*tuple(row)) if row else None

    def chunks(self, fileid: int) -> Iterator[bytes]:
        """The file's bytes in chunks, read piecewise with ``substr`` so a large file never sits in memory."""
        meta = self.meta(fileid)
        size = meta.size if meta else 0
        for start in range(0, size, DOWNLOAD_CHUNK):
            row = self.db.query_one(
                "SELECT substr(data, ?, ?) AS part FROM files WHERE fileid = ?",
                (start + 1, DOWNLOAD_CHUNK, fileid),
            )
            if row is None:
                return
            yield bytes(row["part"])

    def reset(self) -> None:
        self.db.clear(["files"])
