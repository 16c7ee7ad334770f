"""Attachments of records: metadata in SQLite, file bytes on disk under ``<state dir>/attachments/``.

An upload is streamed to a temporary file in that folder and renamed into place once complete, so a broken
upload leaves nothing behind and no file is ever held in memory. A link attachment (``attachmentUrl``) stores
only the URL (``$type: "Link URL"``); the simulator does not fetch it. Files over ``max_bytes`` (20 MB, as on
the real CRM) are refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.zoho.timefmt import ZohoClock

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS attachments (
        id TEXT PRIMARY KEY, module TEXT NOT NULL, record_id TEXT NOT NULL, parent_name TEXT,
        file_name TEXT NOT NULL, size INTEGER NOT NULL, kind TEXT NOT NULL, link_url TEXT,
        content_type TEXT, created_ms INTEGER NOT NULL, created_by TEXT NOT NULL, owner TEXT NOT NULL,
        deleted_ms INTEGER)""",
    "CREATE INDEX IF NOT EXISTS attachments_by_record ON attachments (module, record_id, created_ms)",
)


@dataclass
class Attachment:
    id: str
    module: str
    record_id: str
    parent_name: str | None
    file_name: str
    size: int
    kind: str  # "Attachment" | "Link URL"
    link_url: str | None
    content_type: str | None
    created_ms: int
    created_by: dict[str, Any]
    owner: dict[str, Any]

    def view(self, clock: ZohoClock) -> dict[str, Any]:
        """One element of ``GET /{Module}/{id}/Attachments``."""
        created = clock.format(self.created_ms)
        return {
            "Owner": self.owner,
            "Modified_By": self.created_by,
            "Created_By": self.created_by,
            "File_Name": self.file_name,
            "Size": str(self.size),
            "Created_Time": created,
            "Modified_Time": created,
            "Parent_Id": {"name": self.parent_name, "id": self.record_id},
            "$se_module": self.module,
            "$file_id": f"f{self.id}" if self.kind == "Attachment" else None,
            "$type": self.kind,
            "$link_url": self.link_url,
            "$editable": True,
            "$sharing_permission": "FULL_ACCESS",
            "id": self.id,
        }


class AttachmentStore:
    def __init__(self, db: SqliteDb, state_dir: Path | None) -> None:
        self.db = db
        self._own_folder = state_dir is None
        base = state_dir if state_dir is not None else Path(tempfile.mkdtemp(prefix="zoho-sim-"))
        self.folder = base / "attachments"
        self.folder.mkdir(parents=True, exist_ok=True)
        db.ensure_schema(SCHEMA)

    def path_of(self, attachment_id: str) -> Path:
        return self.folder / attachment_id

    def temp_file(self) -> tempfile._TemporaryFileWrapper[bytes]:
        return tempfile.NamedTemporaryFile(dir=self.folder, prefix=".upload-", delete=False)

    def add(self, attachment: Attachment, upload: Path | None) -> None:
        if upload is not None:
            upload.replace(self.path_of(attachment.id))
        self.db.execute(
            "INSERT INTO attachments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                attachment.id, attachment.module, attachment.record_id, attachment.parent_name,
                attachment.file_name, attachment.size, attachment.kind, attachment.link_url,
                attachment.content_type, attachment.created_ms, json.dumps(attachment.created_by),
                json.dumps(attachment.owner),
            ),
        )  # fmt: skip

    @staticmethod
    def _from_row(row: Any) -> Attachment:
        return Attachment(
            id=row["id"], module=row["module"], record_id=row["record_id"], parent_name=row["parent_name"],
            file_name=row["file_name"], size=row["size"], kind=row["kind"], link_url=row["link_url"],
            content_type=row["content_type"], created_ms=row["created_ms"],
            created_by=json.loads(row["created_by"]), owner=json.loads(row["owner"]),
        )  # fmt: skip

    def list(self, module: str, record_id: str, *, offset: int, limit: int) -> list[Attachment]:
        rows = self.db.query(
            "SELECT * FROM attachments WHERE module = ? AND record_id = ? AND deleted_ms IS NULL"
            " ORDER BY created_ms DESC, id DESC LIMIT ? OFFSET ?",
            (module, record_id, limit, offset),
        )
        return [self._from_row(r) for r in rows]

    def get(self, module: str, record_id: str, attachment_id: str) -> Attachment | None:
        row = self.db.query_one(
            "SELECT * FROM attachments WHERE id = ? AND module = ? AND record_id = ? AND deleted_ms IS NULL",
            (attachment_id, module, record_id),
        )
        return self._from_row(row) if row else None

    def delete(self, attachment: Attachment, at_ms: int) -> None:
        self.db.execute("UPDATE attachments SET deleted_ms = ? WHERE id = ?", (at_ms, attachment.id))
        self.path_of(attachment.id).unlink(missing_ok=True)

    def reset(self) -> None:
        self.db.clear(["attachments"])
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        if self._own_folder:
            shutil.rmtree(self.folder.parent, ignore_errors=True)
