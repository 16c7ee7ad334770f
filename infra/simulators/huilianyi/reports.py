"""SQLite store of expense reports and their history, and the query behind ``expenseReport/v2``.

A report is kept as one JSON document in its API field names, except that the times (``createdDate``,
``lastSubmittedDate``, ``lastModifiedDate``) are epoch milliseconds; :func:`api_view` renders them as ISO
instants. ``status`` and ``lastModifiedDate`` are also columns, indexed, for the window query.

Window query: ``start <= lastModifiedDate < end`` (inclusive start, **exclusive end**), compared at
millisecond precision, ordered by ``(lastModifiedDate, id)``. With whole-second request strings, consecutive
windows ``[t0, t1) [t1, t2)`` see every change exactly once unless it changes again in between. Paging is by
offset over live data: a report modified while a client pages through a window leaves the window's order and
shifts later pages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.huilianyi.timefmt import format_instant

ID_BASE = 1_087_562_130_383_000_000  # 19-digit ids like the real (snowflake) ones
BUSINESS_CODE_BASE = 15_000_000  # ER15000001, ... like ``ER15011743`` in the docs
TIME_FIELDS = ("createdDate", "lastSubmittedDate", "lastModifiedDate")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS expense_reports (
        business_code TEXT PRIMARY KEY, id TEXT NOT NULL, status INTEGER NOT NULL,
        modified_ms INTEGER NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS expense_reports_by_modified ON expense_reports (modified_ms, id)",
    """CREATE TABLE IF NOT EXISTS report_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, business_code TEXT NOT NULL, action TEXT NOT NULL,
        from_status INTEGER, to_status INTEGER, operator TEXT, text TEXT, at_ms INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS report_events_by_code ON report_events (business_code, seq)",
)
TABLES = ("expense_reports", "report_events")


@dataclass(frozen=True)
class WindowQuery:
    """One ``expenseReport/v2`` request, parsed: ``start_ms <= lastModifiedDate < end_ms``, statuses, page."""

    start_ms: int | None = None
    end_ms: int | None = None
    statuses: tuple[int, ...] = ()  # empty: every status
    page: int = 1  # from 1
    size: int = 100

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def api_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored report as the API shows it."""
    view = dict(doc)
    for name in TIME_FIELDS:
        view[name] = format_instant(doc.get(name))
    return view


class ReportStore:
    def __init__(self, db: SqliteDb) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def new_keys(self) -> tuple[str, str]:
        """A fresh ``(id, businessCode)``; the counter is persistent and survives resets."""
        n = self.db.next_sequence("expense_report")
        return str(ID_BASE + n), f"ER{BUSINESS_CODE_BASE + n}"

    def put(self, doc: dict[str, Any]) -> None:
        """Insert or replace a report (its ``businessCode`` is the key)."""
        self.db.execute(
            "INSERT OR REPLACE INTO expense_reports VALUES (?, ?, ?, ?, ?)",
            (
                doc["businessCode"], doc["id"], int(doc["status"]), int(doc["lastModifiedDate"]),
                json.dumps(doc, ensure_ascii=False),
            ),
        )  # fmt: skip

    def get(self, business_code: str) -> dict[str, Any] | None:
        row = self.db.query_one("SELECT doc FROM expense_reports WHERE business_code = ?", (business_code,))
        return json.loads(row["doc"]) if row else None

    def search(self, query: WindowQuery) -> list[dict[str, Any]]:
        where, params = self._where(query.start_ms, query.end_ms, query.statuses)
        rows = self.db.query(
            f"SELECT doc FROM expense_reports {where} ORDER BY modified_ms, id LIMIT ? OFFSET ?",  # noqa: S608
            (*params, query.size, query.offset),
        )
        return [json.loads(r["doc"]) for r in rows]

    def all(self, statuses: Sequence[int] = ()) -> list[dict[str, Any]]:
        """Every report (of these statuses), oldest first: the driver's stable iteration order."""
        where, params = self._where(None, None, statuses)
        rows = self.db.query(f"SELECT doc FROM expense_reports {where} ORDER BY id", params)  # noqa: S608
        return [json.loads(r["doc"]) for r in rows]

    def add_event(
        self, business_code: str, action: str, from_status: int | None, to_status: int | None,
        operator: str | None, text: str | None, at_ms: int,
    ) -> None:  # fmt: skip
        self.db.execute(
            "INSERT INTO report_events (business_code, action, from_status, to_status, operator, text, at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (business_code, action, from_status, to_status, operator, text, at_ms),
        )

    def history(self, business_code: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM report_events WHERE business_code = ? ORDER BY seq", (business_code,))
        return [
            {"seq": r["seq"], "action": r["action"], "from": r["from_status"], "to": r["to_status"],
             "operator": r["operator"], "text": r["text"], "at": format_instant(r["at_ms"])}
            for r in rows
        ]  # fmt: skip

    def reset(self) -> None:
        self.db.clear(TABLES)

    @staticmethod
    def _where(start_ms: int | None, end_ms: int | None, statuses: Sequence[int]) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if start_ms is not None:
            clauses.append("modified_ms >= ?")
            params.append(start_ms)
        if end_ms is not None:
            clauses.append("modified_ms < ?")
            params.append(end_ms)
        if statuses:
            clauses.append(f"status IN ({','.join('?' for _ in statuses)})")
            params.extend(int(s) for s in statuses)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
