"""SQLite persistence of CRM records: live rows, recycle bin, key index for duplicate checks, write history.

Records are JSON (field values only); times are epoch milliseconds in columns. ``record_keys`` indexes the
case-folded values of each module's key fields (unique fields + system duplicate field) of live records, so
upserts and ``equals`` searches on them do not scan. ``record_writes`` keeps one row per applied write
(insert, update, delete) with its apply time, for latency measurements. ``on_write`` (the search index) hears of
each record write before it is made, with a loader of the record as it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from infra.simulators.common.sqlite import SqliteDb

ID_BASE = 4_876_876_000_000_000_000  # 19-digit ids like the real ones
SORT_COLUMNS = {"id": "id", "Created_Time": "created_ms", "Modified_Time": "modified_ms"}

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS records (
        module TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
        owner TEXT NOT NULL, created_by TEXT NOT NULL, modified_by TEXT NOT NULL,
        created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL,
        deleted_ms INTEGER, deleted_by TEXT, delete_type TEXT,
        PRIMARY KEY (module, id))""",
    "CREATE INDEX IF NOT EXISTS records_by_modified ON records (module, deleted_ms, modified_ms, id)",
    "CREATE INDEX IF NOT EXISTS records_by_created ON records (module, deleted_ms, created_ms, id)",
    """CREATE TABLE IF NOT EXISTS record_keys (
        module TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL,
        PRIMARY KEY (module, field, value, id))""",
    # Without it, re-indexing one record (DELETE ... WHERE module AND id) scans every key of the module.
    "CREATE INDEX IF NOT EXISTS record_keys_by_record ON record_keys (module, id)",
    """CREATE TABLE IF NOT EXISTS record_writes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, module TEXT NOT NULL, id TEXT NOT NULL, action TEXT NOT NULL,
        applied_ms INTEGER NOT NULL, user_id TEXT, user_name TEXT, fields TEXT NOT NULL)""",
)
TABLES = ("records", "record_keys", "record_writes")


@dataclass
class StoredRecord:
    module: str
    id: str
    data: dict[str, Any]
    owner: dict[str, Any]
    created_by: dict[str, Any]
    modified_by: dict[str, Any]
    created_ms: int
    modified_ms: int
    deleted_ms: int | None = None
    deleted_by: dict[str, Any] | None = None
    delete_type: str | None = None


def _row_to_record(row: sqlite3.Row) -> StoredRecord:
    return StoredRecord(
        module=row["module"],
        id=row["id"],
        data=json.loads(row["data"]),
        owner=json.loads(row["owner"]),
        created_by=json.loads(row["created_by"]),
        modified_by=json.loads(row["modified_by"]),
        created_ms=row["created_ms"],
        modified_ms=row["modified_ms"],
        deleted_ms=row["deleted_ms"],
        deleted_by=json.loads(row["deleted_by"]) if row["deleted_by"] else None,
        delete_type=row["delete_type"],
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: (module, record id, loader of the record as it is before the write, write time ms)
WriteHook = Callable[[str, str, Callable[[], "StoredRecord | None"], int], None]


class RecordStore:
    def __init__(self, db: SqliteDb) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)
        self.on_write: WriteHook | None = None

    def _before_write(self, module: str, record_id: str, at_ms: int) -> None:
        if self.on_write is not None:
            self.on_write(module, record_id, lambda: self.get(module, record_id), at_ms)

    def next_id(self) -> str:
        return str(ID_BASE + self.db.next_sequence("record_id"))

    def get(self, module: str, record_id: str, *, include_deleted: bool = False) -> StoredRecord | None:
        row = self.db.query_one("SELECT * FROM records WHERE module = ? AND id = ?", (module, record_id))
        if row is None or (row["deleted_ms"] is not None and not include_deleted):
            return None
        return _row_to_record(row)

    def ids_by_key(self, module: str, field: str, key: str) -> list[str]:
        rows = self.db.query(
            "SELECT id FROM record_keys WHERE module = ? AND field = ? AND value = ? ORDER BY id",
            (module, field, key),
        )
        return [r["id"] for r in rows]

    def save(
        self,
        record: StoredRecord,
        *,
        keys: Mapping[str, str | None],
        action: str,
        changed: Mapping[str, Any],
    ) -> None:
        """Write a live record, refresh its key index and append the write history, in one transaction."""
        with self.db.transaction() as conn:
            self._before_write(record.module, record.id, record.modified_ms)
            conn.execute(
                "INSERT OR REPLACE INTO records (module, id, data, owner, created_by, modified_by,"
                " created_ms, modified_ms, deleted_ms, deleted_by, delete_type)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                (
                    record.module, record.id, _dumps(record.data), _dumps(record.owner),
                    _dumps(record.created_by), _dumps(record.modified_by),
                    record.created_ms, record.modified_ms,
                ),
            )  # fmt: skip
            conn.execute("DELETE FROM record_keys WHERE module = ? AND id = ?", (record.module, record.id))
            conn.executemany(
                "INSERT OR IGNORE INTO record_keys (module, field, value, id) VALUES (?, ?, ?, ?)",
                [(record.module, f, v, record.id) for f, v in keys.items() if v is not None],
            )
            self._log_write(conn, record, action, record.modified_ms, record.modified_by, changed)

    def mark_deleted(self, record: StoredRecord, *, user: dict[str, Any], at_ms: int) -> None:
        with self.db.transaction() as conn:
            self._before_write(record.module, record.id, at_ms)
            conn.execute(
                "UPDATE records SET deleted_ms = ?, deleted_by = ?, delete_type = 'recycle'"
                " WHERE module = ? AND id = ?",
                (at_ms, _dumps(user), record.module, record.id),
            )
            conn.execute("DELETE FROM record_keys WHERE module = ? AND id = ?", (record.module, record.id))
            self._log_write(conn, record, "delete", at_ms, user, {})

    def mark_converted(self, record: StoredRecord, *, user: dict[str, Any], at_ms: int) -> None:
        """A converted lead leaves the live list (like a deletion of type ``converted``) but stays readable."""
        record.modified_ms = at_ms
        record.modified_by = dict(user)
        with self.db.transaction() as conn:
            self._before_write(record.module, record.id, at_ms)
            conn.execute(
                "UPDATE records SET data = ?, modified_ms = ?, modified_by = ?, deleted_ms = ?, deleted_by = ?,"
                " delete_type = 'converted' WHERE module = ? AND id = ?",
                (_dumps(record.data), at_ms, _dumps(user), at_ms, _dumps(user), record.module, record.id),
            )
            conn.execute("DELETE FROM record_keys WHERE module = ? AND id = ?", (record.module, record.id))
            self._log_write(conn, record, "convert", at_ms, user, {})

    def purge_recycle_bin(self, module: str) -> int:
        """Empty the recycle bin: its records become ``permanent`` deletions."""
        return self.db.execute(
            "UPDATE records SET delete_type = 'permanent', data = '{}' WHERE module = ? AND delete_type = 'recycle'",
            (module,),
        )

    def count_live(self, module: str, *, modified_after_ms: int | None = None) -> int:
        sql, params = self._live_where(module, modified_after_ms)
        row = self.db.query_one(f"SELECT COUNT(*) AS n FROM records WHERE {sql}", params)
        return int(row["n"]) if row else 0

    def list_live(
        self,
        module: str,
        *,
        modified_after_ms: int | None,
        sort_by: str,
        descending: bool,
        offset: int,
        limit: int,
        converted: str = "false",
    ) -> list[StoredRecord]:
        sql, params = self._live_where(module, modified_after_ms)
        if converted != "false":  # Leads: converted leads left the live list but can be asked for
            sql = sql.replace("deleted_ms IS NULL", "delete_type = 'converted'" if converted == "true"
                              else "(deleted_ms IS NULL OR delete_type = 'converted')")
        column = SORT_COLUMNS[sort_by]
        order = "DESC" if descending else "ASC"
        rows = self.db.query(
            f"SELECT * FROM records WHERE {sql} ORDER BY {column} {order}, id {order} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_row_to_record(r) for r in rows]

    def iter_live(self, module: str) -> Iterator[StoredRecord]:
        for row in self.db.query(
            "SELECT * FROM records WHERE module = ? AND deleted_ms IS NULL ORDER BY id", (module,)
        ):
            yield _row_to_record(row)

    def list_deleted(
        self, module: str, *, types: tuple[str, ...], deleted_after_ms: int | None, offset: int, limit: int
    ) -> list[StoredRecord]:
        marks = ",".join("?" for _ in types)
        sql = f"module = ? AND deleted_ms IS NOT NULL AND delete_type IN ({marks})"
        params: list[Any] = [module, *types]
        if deleted_after_ms is not None:
            sql += " AND deleted_ms > ?"
            params.append(deleted_after_ms)
        rows = self.db.query(
            f"SELECT * FROM records WHERE {sql} ORDER BY deleted_ms DESC, id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_row_to_record(r) for r in rows]

    def all_records(self, module: str, *, include_deleted: bool) -> list[StoredRecord]:
        sql = "SELECT * FROM records WHERE module = ?" + ("" if include_deleted else " AND deleted_ms IS NULL")
        return [_row_to_record(r) for r in self.db.query(sql + " ORDER BY id", (module,))]

    def write_history(self, module: str, *, since_seq: int, limit: int) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT * FROM record_writes WHERE module = ? AND seq > ? ORDER BY seq LIMIT ?",
            (module, since_seq, limit),
        )
        return [
            {
                "seq": r["seq"], "id": r["id"], "action": r["action"], "applied_at_ms": r["applied_ms"],
                "user": {"id": r["user_id"], "name": r["user_name"]}, "fields": json.loads(r["fields"]),
            }
            for r in rows
        ]  # fmt: skip

    def reset(self) -> None:
        self.db.clear(TABLES)

    @staticmethod
    def _live_where(module: str, modified_after_ms: int | None) -> tuple[str, tuple[Any, ...]]:
        if modified_after_ms is None:
            return "module = ? AND deleted_ms IS NULL", (module,)
        return "module = ? AND deleted_ms IS NULL AND modified_ms > ?", (module, modified_after_ms)

    @staticmethod
    def _log_write(
        conn: Any,
        record: StoredRecord,
        action: str,
        at_ms: int,
        user: Mapping[str, Any],
        changed: Mapping[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO record_writes (module, id, action, applied_ms, user_id, user_name, fields)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.module,
                record.id,
                action,
                at_ms,
                user.get("id"),
                user.get("name"),
                _dumps(dict(changed)),
            ),
        )
