"""SQLite persistence of workflow requests, their sign-off log and the driver's scripts.

A request row keeps the form as JSON (``main``: ``{fieldName: value}``; ``details``:
``{tableDBName: [row, ...]}``) and where it stands (current node, when it got there, whether it was rejected
back to its creator).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from infra.simulators.common.sqlite import SqliteDb

REQUEST_ID_START = 447_001  # ids the size real systems show
LOG_ID_START = 2_180_001

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS wf_requests (
        requestid INTEGER PRIMARY KEY, workflowid INTEGER NOT NULL, requestname TEXT NOT NULL,
        creatorid INTEGER NOT NULL, created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL,
        current_node_id INTEGER NOT NULL, node_arrived_ms INTEGER NOT NULL,
        isbereject INTEGER NOT NULL DEFAULT 0,
        main TEXT NOT NULL, details TEXT NOT NULL, origin TEXT NOT NULL, viewers TEXT NOT NULL DEFAULT '[]',
        last_operator_id INTEGER, last_operate_ms INTEGER, archived_ms INTEGER)""",
    "CREATE INDEX IF NOT EXISTS wf_requests_by_node ON wf_requests (current_node_id, node_arrived_ms)",
    """CREATE TABLE IF NOT EXISTS wf_logs (
        logid INTEGER PRIMARY KEY, requestid INTEGER NOT NULL, logtype TEXT NOT NULL, nodeid INTEGER NOT NULL,
        operator_id INTEGER NOT NULL, operate_ms INTEGER NOT NULL, remark_html TEXT NOT NULL,
        received_ids TEXT NOT NULL DEFAULT '[]')""",
    "CREATE INDEX IF NOT EXISTS wf_logs_by_request ON wf_logs (requestid, logid)",
    """CREATE TABLE IF NOT EXISTS wf_scripts (
        requestid INTEGER PRIMARY KEY, steps TEXT NOT NULL, position INTEGER NOT NULL DEFAULT 0)""",
)
TABLES = ("wf_requests", "wf_logs", "wf_scripts")


@dataclass
class StoredRequest:
    requestid: int
    workflowid: int
    requestname: str
    creatorid: int
    created_ms: int
    modified_ms: int
    current_node_id: int
    node_arrived_ms: int
    isbereject: bool
    main: dict[str, Any]
    details: dict[str, list[dict[str, Any]]]
    origin: str
    viewers: list[int] = field(default_factory=list)
    last_operator_id: int | None = None
    last_operate_ms: int | None = None
    archived_ms: int | None = None


@dataclass(frozen=True)
class LogEntry:
    logid: int
    requestid: int
    logtype: str
    nodeid: int
    operator_id: int
    operate_ms: int
    remark_html: str
    received_ids: tuple[int, ...]


def _request(row: sqlite3.Row) -> StoredRequest:
    return StoredRequest(
        requestid=row["requestid"], workflowid=row["workflowid"], requestname=row["requestname"],
        creatorid=row["creatorid"], created_ms=row["created_ms"], modified_ms=row["modified_ms"],
        current_node_id=row["current_node_id"], node_arrived_ms=row["node_arrived_ms"],
        isbereject=bool(row["isbereject"]), main=json.loads(row["main"]), details=json.loads(row["details"]),
        origin=row["origin"], viewers=json.loads(row["viewers"]), last_operator_id=row["last_operator_id"],
        last_operate_ms=row["last_operate_ms"], archived_ms=row["archived_ms"],
    )  # fmt: skip


def _log(row: sqlite3.Row) -> LogEntry:
    return LogEntry(
        logid=row["logid"], requestid=row["requestid"], logtype=row["logtype"], nodeid=row["nodeid"],
        operator_id=row["operator_id"], operate_ms=row["operate_ms"], remark_html=row["remark_html"],
        received_ids=tuple(json.loads(row["received_ids"])),
    )  # fmt: skip


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class RequestStore:
    def __init__(self, db: SqliteDb) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def new_request_id(self) -> int:
        return self.db.next_sequence("requestid", start=REQUEST_ID_START)

    def save(self, req: StoredRequest) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO wf_requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                req.requestid, req.workflowid, req.requestname, req.creatorid, req.created_ms,
                req.modified_ms, req.current_node_id, req.node_arrived_ms, int(req.isbereject),
                _dump(req.main), _dump(req.details),
                req.origin, _dump(req.viewers), req.last_operator_id, req.last_operate_ms, req.archived_ms,
            ),
        )  # fmt: skip

    def get(self, requestid: int) -> StoredRequest | None:
        row = self.db.query_one("SELECT * FROM wf_requests WHERE requestid = ?", (requestid,))
        return _request(row) if row else None

    def all(self) -> list[StoredRequest]:
        return [_request(r) for r in self.db.query("SELECT * FROM wf_requests ORDER BY requestid")]

    def add_log(
        self, requestid: int, logtype: str, nodeid: int, operator_id: int, operate_ms: int, remark_html: str,
        received_ids: tuple[int, ...] = (),
    ) -> int:  # fmt: skip
        logid = self.db.next_sequence("logid", start=LOG_ID_START)
        self.db.execute(
            "INSERT INTO wf_logs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                logid,
                requestid,
                logtype,
                nodeid,
                operator_id,
                operate_ms,
                remark_html,
                _dump(list(received_ids)),
            ),
        )
        return logid

    def logs(self, requestid: int) -> list[LogEntry]:
        rows = self.db.query("SELECT * FROM wf_logs WHERE requestid = ? ORDER BY logid", (requestid,))
        return [_log(r) for r in rows]

    def set_script(self, requestid: int, steps: list[str]) -> None:
        self.db.execute("INSERT OR REPLACE INTO wf_scripts VALUES (?, ?, 0)", (requestid, _dump(steps)))

    def script(self, requestid: int) -> tuple[list[str], int] | None:
        row = self.db.query_one("SELECT steps, position FROM wf_scripts WHERE requestid = ?", (requestid,))
        return (json.loads(row["steps"]), row["position"]) if row else None

    def advance_script(self, requestid: int) -> None:
        self.db.execute("UPDATE wf_scripts SET position = position + 1 WHERE requestid = ?", (requestid,))

    def reset(self) -> None:
        """Forget requests, logs and scripts; ids keep counting up (a real OA never reuses a request id)."""
        self.db.clear(TABLES)
