"""SQLite persistence for simulators: one database file in the simulator's state dir, durable across restarts.

WAL journal with ``synchronous=NORMAL``: a committed transaction survives the process being killed (not a
power cut), which is what "state kept across restarts" needs. One connection guarded by a re-entrant lock;
nested ``transaction()`` blocks join the outer one, so a whole batch of writes commits once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

_META_SCHEMA = "CREATE TABLE IF NOT EXISTS sim_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class SqliteDb:
    """A small, thread-safe wrapper around one SQLite connection (``path=None``: in memory)."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        if path is not None:
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self.ensure_schema([_META_SCHEMA])

    def ensure_schema(self, statements: Iterable[str]) -> None:
        """Run idempotent DDL (``CREATE ... IF NOT EXISTS``)."""
        with self.transaction() as conn:
            for statement in statements:
                conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            outermost = self._depth == 0
            if outermost:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if outermost:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outermost:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return cast("sqlite3.Row | None", self._conn.execute(sql, params).fetchone())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction (or the caller's); returns the affected row count."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def next_sequence(self, name: str, start: int = 1) -> int:
        """A persistent counter: returns ``start`` the first time, then one more each call."""
        key = f"seq:{name}"
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM sim_meta WHERE key = ?", (key,)).fetchone()
            value = int(row["value"]) + 1 if row else start
            conn.execute(
                "INSERT INTO sim_meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )
            return value

    def clear(self, tables: Iterable[str]) -> None:
        with self.transaction() as conn:
            for table in tables:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - table names come from code, not requests

    def close(self) -> None:
        with self._lock:
            self._conn.close()
