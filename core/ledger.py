"""The sync ledger: one row per (flow, source key, target system).

It is at once the id map (source key → target id), the idempotency check (a version at or below the one applied, or
the same content fingerprint, is not written again), the echo filter for two-way flows (the fingerprint of what we
wrote), and the lineage store (Kafka position, commit and apply times, attempts, last error).

Every write and failure is also appended to ``sync_history`` (the same facts, one row per event; writes that
changed nothing are left out), so a trace shows a document's whole path, not only its latest write.  History older
than ``HISTORY_DAYS`` is pruned by the writers (at most once an hour per process).

SQLite by default (WAL mode, one writer per flow process), PostgreSQL for production: any SQLAlchemy URL.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

metadata = MetaData()

sync_ledger = Table(
    "sync_ledger",
    metadata,
    Column("flow", String(64), primary_key=True),
    Column("source_key", String(255), primary_key=True),
    Column("target_system", String(32), primary_key=True),
    Column("source_version", BigInteger, nullable=False),
    #: The business number (material code, bill number) for traces.
    Column("source_number", String(255)),
    Column("target_id", String(64)),
    Column("fingerprint", String(64)),
    Column("status", String(16), nullable=False),
    Column("action", String(16)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("kafka_topic", String(255)),
    Column("kafka_partition", Integer),
    Column("kafka_offset", BigInteger),
    Column("captured_at_ms", BigInteger),
    Column("applied_at_ms", BigInteger),
    Column("updated_at_ms", BigInteger, nullable=False),
)

sync_history = Table(
    "sync_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("flow", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("target_system", String(32), nullable=False),
    Column("source_version", BigInteger, nullable=False),
    Column("source_number", String(255)),
    Column("target_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("action", String(16)),
    Column("attempts", Integer),
    Column("error", Text),
    Column("kafka_topic", String(255)),
    Column("kafka_partition", Integer),
    Column("kafka_offset", BigInteger),
    Column("captured_at_ms", BigInteger),
    Column("at_ms", BigInteger, nullable=False),
    Index("sync_history_key", "source_key"),
    Index("sync_history_at", "at_ms"),
)

SYNCED = "synced"
#: The history action of a version coalesced into a newer one (never written itself).
SUPERSEDED = "superseded"
FAILED = "failed"
#: How long ``sync_history`` keeps a write (days).
HISTORY_DAYS = 30
_HISTORY_COLUMNS = frozenset(c.name for c in sync_history.columns) - {"id", "at_ms", "error"}


@dataclass(frozen=True)
class LedgerEntry:
    flow: str
    source_key: str
    target_system: str
    source_version: int
    target_id: str | None
    fingerprint: str | None
    status: str
    attempts: int
    applied_at_ms: int | None


@dataclass(frozen=True)
class Position:
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def transaction(engine: Engine, conn: Connection | None = None) -> Iterator[Connection]:
    """``conn`` (the caller's transaction) if given, else a transaction of its own, committed at the end."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as own:
        yield own


def upsert_rows(engine: Engine, table: Table, rows: list[dict[str, Any]], keys: tuple[str, ...],
                conn: Connection | None = None) -> None:
    """Insert or update many rows in one statement (SQLite and PostgreSQL both have ON CONFLICT); on update only
    the columns the rows carry change.  Every row has the columns of the first.  The statement is compiled once per
    table and column list and run through the driver's ``executemany`` (SQLAlchemy's per-row parameter handling
    cost more than SQLite's own work at 1,000 rows a call).  In ``conn``'s transaction if given."""
    if not rows:
        return
    columns = tuple(rows[0])
    upsert_tuples(engine, table, columns, [tuple(r[c] for c in columns) for r in rows], keys, conn)


def upsert_tuples(engine: Engine, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
                  keys: tuple[str, ...], conn: Connection | None = None) -> None:
    """:func:`upsert_rows` of rows given as tuples in ``columns``' order (no dict per row on hot paths)."""
    if not rows:
        return
    sql, order = _upsert_sql(engine, table, columns, keys)
    params: list[Any]
    if order is None:
        params = [dict(zip(columns, r, strict=True)) for r in rows]
    elif order == columns:
        params = rows
    else:
        at = [columns.index(c) for c in order]
        params = [tuple(r[i] for i in at) for r in rows]
    with transaction(engine, conn) as tx:
        tx.exec_driver_sql(sql, params)


def driver_sql(stmt: ClauseElement, engine: Engine) -> tuple[str, tuple[str, ...] | None]:
    """``stmt`` as the driver runs it (``exec_driver_sql``), and the names of its positional parameters in order —
    None where the driver takes them by name (psycopg2).  Compiled once by its callers, which keep it."""
    compiled = cast(SQLCompiler, stmt.compile(dialect=engine.dialect))
    return compiled.string, tuple(compiled.positiontup or ()) if compiled.positional else None


def driver_params(order: tuple[str, ...] | None, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
    """One statement's parameters as the driver takes them (see :func:`driver_sql`)."""
    return tuple(values[k] for k in order) if order is not None else dict(values)


def insert_rows(engine: Engine, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Plain inserts of many rows with the first row's columns, through the driver's ``executemany``."""
    columns = tuple(rows[0])
    cache_key = (engine.dialect.name, table.name, columns, ("-insert-",))
    found = _UPSERT_SQL.get(cache_key)
    if found is None:
        found = _UPSERT_SQL[cache_key] = driver_sql(table.insert().values({c: bindparam(c) for c in columns}), engine)
    sql, order = found
    conn.exec_driver_sql(sql, [driver_params(order, {c: r.get(c) for c in columns}) for r in rows])


_UPSERT_SQL: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], tuple[str, tuple[str, ...] | None]] = {}


def _upsert_sql(engine: Engine, table: Table, columns: tuple[str, ...],
                keys: tuple[str, ...]) -> tuple[str, tuple[str, ...] | None]:
    """The driver-level SQL of an upsert of these columns, and the order of positional parameters (None: named)."""
    cache_key = (engine.dialect.name, table.name, columns, keys)
    found = _UPSERT_SQL.get(cache_key)
    if found is None:
        dialect: Any
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect
        stmt = dialect.insert(table).values({c: bindparam(c) for c in columns})
        stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                          set_={c: stmt.excluded[c] for c in columns if c not in keys})
        found = _UPSERT_SQL[cache_key] = driver_sql(stmt, engine)
    return found


def _create_tables(engine: Engine) -> None:
    """Create missing tables.  Flows started together on a fresh SQLite ledger race between "does it exist" and
    "create": the loser sees "already exists" and checks again."""
    for attempt in range(3):
        try:
            metadata.create_all(engine)
            return
        except OperationalError as exc:
            if "already exists" not in str(exc) or attempt == 2:
                raise


#: A new ledger file turned to WAL by one of the processes opening it at once: how often each tries.
WAL_ATTEMPTS = 20


def _wal(cur: Any) -> None:
    """The ledger file in WAL mode.  The mode is kept in the file, so it is set only while the file is not in it
    yet: setting it needs the file to itself and SQLite does not wait for that (no busy handler), so flows opening
    a ledger at once refused one another ("database is locked" at a flow's first lookup, seen in one CI run).  A
    refused switch is tried again briefly; another process having switched meanwhile is as good."""
    for attempt in range(WAL_ATTEMPTS):
        if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            if str(cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
        time.sleep(0.01 * (attempt + 1))  # opening a new file, once per process (never per record)
    raise sqlite3.OperationalError(f"the ledger file stayed out of WAL mode after {WAL_ATTEMPTS} attempts")


def open_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=10000")  # first: the statements below wait for other processes too
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    _create_tables(engine)
    _add_missing_columns(engine)
    with engine.begin() as conn:  # ledgers made before the index existed get it too
        conn.execute(text("CREATE INDEX IF NOT EXISTS sync_ledger_applied ON sync_ledger (flow, applied_at_ms)"))
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Ledgers made by an earlier version get the columns added since (nullable, so old rows stay valid)."""
    have = {c["name"] for c in inspect(engine).get_columns("sync_ledger")}
    for column in sync_ledger.columns:
        if column.name not in have:
            kind = column.type.compile(engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE sync_ledger ADD COLUMN {column.name} {kind}"))
            except OperationalError as exc:  # another process added it a moment ago
                if "duplicate column" not in str(exc).lower():
                    raise


#: Source keys read in one statement by :meth:`SyncLedger.entries`.
ENTRIES_CHUNK = 500


class SyncLedger:
    """Reads and writes ledger rows for one flow and target system."""

    _pruned_at_ms = 0

    def __init__(self, engine: Engine, flow: str, target_system: str) -> None:
        self.engine = engine
        self.flow = flow
        self.target_system = target_system
        self._entries_by_size: dict[int, tuple[str, tuple[str, ...] | None]] = {}

    def entries(self, keys: Iterable[str]) -> dict[str, LedgerEntry]:
        """The ledger rows of these source keys (those it has), read by one driver-level select per 500 keys: a
        sink reads them before every call, and SQLAlchemy's statement handling cost more than the read."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, LedgerEntry] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(keys), ENTRIES_CHUNK):
                chunk = keys[i : i + ENTRIES_CHUNK]
                sql, order = self._entries_sql(len(chunk))
                values = {"flow": self.flow, "target": self.target_system, **{f"k{j}": k for j, k in enumerate(chunk)}}
                for row in conn.exec_driver_sql(sql, driver_params(order, values)):
                    found[row[1]] = LedgerEntry(*row)
        return found

    def _entries_sql(self, n: int) -> tuple[str, tuple[str, ...] | None]:
        found = self._entries_by_size.get(n)
        if found is None:
            t = sync_ledger.c
            stmt = select(t.flow, t.source_key, t.target_system, t.source_version, t.target_id, t.fingerprint,
                          t.status, t.attempts, t.applied_at_ms).where(
                t.flow == bindparam("flow"), t.target_system == bindparam("target"),
                t.source_key.in_([bindparam(f"k{j}") for j in range(n)]))
            found = self._entries_by_size[n] = driver_sql(stmt, self.engine)
        return found

    def _upsert(self, rows: list[dict[str, Any]], conn: Connection | None = None) -> None:
        """Insert or update many rows in one statement (SQLite and PostgreSQL both have ON CONFLICT); in ``conn``'s
        transaction if given."""
        if not rows:
            return
        now = _now_ms()
        rows = [{"flow": self.flow, "target_system": self.target_system, "updated_at_ms": now, **r} for r in rows]
        # Every row of one call has the same columns; columns not given (a failure carries no target id) keep
        # their stored values on update.
        columns = list(rows[0])
        if any(list(r) != columns for r in rows):
            raise ValueError("ledger rows of one call must have the same columns")
        with transaction(self.engine, conn) as tx:  # the row and its history in one transaction
            upsert_rows(self.engine, sync_ledger, rows, ("flow", "source_key", "target_system"), tx)
            self._remember(tx, rows, now)

    def _remember(self, conn: Connection, rows: list[dict[str, Any]], now: int) -> None:
        """Append the writes and failures to ``sync_history`` (not the writes that changed nothing)."""
        events = [{**{k: v for k, v in r.items() if k in _HISTORY_COLUMNS}, "error": r.get("last_error"), "at_ms": now}
                  for r in rows if r.get("action") != "unchanged"]
        if not events:
            return
        insert_rows(self.engine, conn, sync_history, events)
        if now - SyncLedger._pruned_at_ms > 3_600_000:
            SyncLedger._pruned_at_ms = now
            conn.execute(sync_history.delete().where(sync_history.c.at_ms < now - HISTORY_DAYS * 86_400_000))

    def record_superseded(self, rows: list[dict[str, Any]]) -> None:
        """History only: versions that were never written themselves because a newer version of the same document
        was written in their place (coalesced while pending).  Each row: ``source_key``, ``source_version``,
        ``source_number``, ``target_id``, ``status`` (the newer version's outcome), ``error`` (which version
        replaced it), ``kafka_*``, ``captured_at_ms``.  The ledger row itself is the newer version's."""
        if not rows:
            return
        now = _now_ms()
        events = [{"flow": self.flow, "target_system": self.target_system, "action": SUPERSEDED, "attempts": 0,
                   "at_ms": now, **r} for r in rows]
        with self.engine.begin() as conn:
            insert_rows(self.engine, conn, sync_history, events)

    def record_applied_many(self, results: list[dict[str, Any]], conn: Connection | None = None) -> None:
        """Record writes (or writes found unnecessary); in ``conn``'s transaction if given."""
        now = _now_ms()
        rows = []
        for r in results:
            pos: Position = r.pop("position")
            rows.append(
                {**r, "status": SYNCED, "last_error": None, "applied_at_ms": now, "kafka_topic": pos.topic,
                 "kafka_partition": pos.partition, "kafka_offset": pos.offset}
            )
        self._upsert(rows, conn)

    def record_failed(
        self, source_key: str, version: int, *, error: str, attempts: int, position: Position,
        captured_at_ms: int | None, fingerprint: str | None = None, number: str | None = None,
    ) -> None:
        """A permanent failure: kept with its error; the version is recorded so a replay of it is not retried
        endlessly, but a newer version is still applied."""
        self._upsert(
            [{"source_key": source_key, "source_version": version, "source_number": number,
              "fingerprint": fingerprint,
              "status": FAILED, "last_error": error[:4000],
              "attempts": attempts, "kafka_topic": position.topic, "kafka_partition": position.partition,
              "kafka_offset": position.offset, "captured_at_ms": captured_at_ms}]
        )

    def counts(self) -> dict[str, int]:
        t = sync_ledger.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.status, func.count()).where(t.flow == self.flow).group_by(t.status)
            )
            return {status: n for status, n in rows}


def history(engine: Engine, keys: Iterable[str]) -> list[Any]:
    """Every write and failure recorded for these source keys (any flow), oldest first."""
    wanted = sorted({str(k) for k in keys if k})
    out: list[Any] = []
    with engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            out += conn.execute(select(sync_history).where(sync_history.c.source_key.in_(wanted[i : i + 500]))).all()
    return sorted(out, key=lambda r: (r.at_ms, r.id))
