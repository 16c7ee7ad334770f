"""Re-snapshot of chosen Kingdee documents while streaming continues (``cdchub snapshot <table|document …>``).

The request travels **through the WAL**: ``cdchub snapshot`` emits a logical message (``pg_logical_emit_message``,
prefix ``cdchub.snapshot``, naming the slot and the documents) into the Kingdee database.  The running capture meets
it in stream order, so everything before it is already in its document store; it then

1. reads the documents' tables under one ``REPEATABLE READ`` snapshot whose position ``L`` is taken at its start,
   into the store; rows the store holds but the database no longer has (e.g. after a ``TRUNCATE``, which the stream
   cannot describe) are removed, and documents left without a header are emitted as deletions;
2. emits every document as a read event (``op = r``, ``snapshot = true``) with version ``L``;
3. acknowledges the message's position after Kafka acknowledged the events, and streaming goes on.

Changes committed between the message and ``L`` are in the snapshot and are streamed again afterwards with older
versions, which the sinks' ledgers skip.  A crash before step 3 re-reads the message and starts the snapshot over.
Streaming pauses while the tables are read (changes wait in the slot and follow at once).  Progress is written to
``<state dir>/snapshot-<id>.json`` for the command to show.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

from connectors.kingdee.assembly import row_pk, wire_row
from connectors.kingdee.document_store import DocumentStore
from connectors.kingdee.documents import DocumentCatalog, Part

SNAPSHOT_PREFIX = "cdchub.snapshot"
FETCH = 5000


@dataclass(frozen=True)
class SnapshotRequest:
    id: str
    slot: str
    documents: tuple[str, ...]

    def to_message(self) -> str:
        return json.dumps({"id": self.id, "slot": self.slot, "documents": list(self.documents)})

    @classmethod
    def from_message(cls, content: str) -> SnapshotRequest:
        body = json.loads(content)
        return cls(str(body["id"]), str(body["slot"]), tuple(str(d) for d in body["documents"]))


@dataclass
class SnapshotProgress:
    """What the capture reports about one request (read by ``cdchub snapshot``)."""

    id: str
    status: str = "requested"  # requested → reading → emitting → done | failed
    documents: list[str] = field(default_factory=list)
    rows_total: int = 0
    rows_read: int = 0
    documents_total: int = 0
    documents_emitted: int = 0
    deleted: int = 0
    error: str | None = None
    updated_ms: int = 0

    @staticmethod
    def path(state_dir: Path, request_id: str) -> Path:
        return state_dir / f"snapshot-{request_id}.json"

    def save(self, state_dir: Path) -> None:
        self.updated_ms = int(time.time() * 1000)
        target = self.path(state_dir, self.id)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(cls, state_dir: Path, request_id: str) -> SnapshotProgress | None:
        path = cls.path(state_dir, request_id)
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def resolve_documents(catalog: DocumentCatalog, names: list[str]) -> tuple[str, ...]:
    """Document names for what a person typed: document names (``material``) or any of their tables
    (``T_BD_MATERIAL_L`` → ``material``); unknown names fail naming the valid ones."""
    chosen: list[str] = []
    for name in names:
        if name in catalog.by_name:
            chosen.append(name)
        elif name.upper() in catalog.by_table:
            chosen.append(catalog.by_table[name.upper()][0].name)
        else:
            raise ValueError(f"{name!r} is neither a captured document nor one of its tables; documents: "
                             f"{', '.join(catalog.by_name)}")
    return tuple(dict.fromkeys(chosen))


def request_snapshot(dsn: str, slot: str, documents: tuple[str, ...]) -> SnapshotRequest:
    request = SnapshotRequest(uuid.uuid4().hex[:12], slot, documents)
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_logical_emit_message(false, %s, %s)", (SNAPSHOT_PREFIX, request.to_message()))
    finally:
        conn.close()
    return request


RowKeys = list[tuple[str, str, dict[str, Any]]]


def read_tables(cursor_factory: Callable[[str], Any], parts: dict[str, Part], store: DocumentStore,
                learn: Callable[[str, list[str]], None],
                on_rows: Callable[[str, RowKeys], None] = lambda table, rows: None) -> None:
    """Every row of ``parts``' tables into the store, in batches (server-side cursors from ``cursor_factory``);
    ``on_rows`` sees each batch as (row key, document, row)."""
    for table, part in parts.items():
        with cursor_factory(table) as c:
            c.itersize = FETCH
            c.execute(f'SELECT * FROM "{table}"')
            cols: list[str] | None = None
            batch: RowKeys = []
            for values in c:
                if cols is None:
                    cols = [d.name for d in c.description]
                    learn(table, cols)
                row = wire_row(dict(zip(cols, values, strict=True)))
                batch.append((row_pk(part, row), str(row[part.doc_key]), row))
                if len(batch) >= FETCH:
                    store.put_many(table, batch)
                    on_rows(table, batch)
                    batch = []
            store.put_many(table, batch)
            on_rows(table, batch)
