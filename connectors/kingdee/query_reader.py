"""QueryReader: the polled capture's reads from any database SQLAlchemy speaks to (SQL Server, Oracle, PostgreSQL …).

Only SQLAlchemy Core with standard SQL: tables are reflected from the database (so a real installation's own columns
come along, as the log capture learns them), and the statements compile for every dialect — ``tests/unit/
test_query_reader.py`` checks what ``mssql`` and ``oracle`` get.  What it asks of the database per poll:

- changed ids: ``SELECT key, modified FROM header WHERE modified >= :since ORDER BY modified`` (the modified column
  carries an index in Kingdee; one statement per document kind);
- whole documents: ``SELECT * FROM <table> WHERE <document key> IN (…)`` per table of the document, in chunks of
  ``IN_CHUNK`` ids (Oracle takes at most 1,000 items in a list, SQL Server 2,100 parameters), all in one read-only
  transaction;
- which documents exist: ``SELECT key // :size, COUNT(*), SUM(key) FROM header GROUP BY key // :size`` (an index-only
  scan of the primary key), and the keys of the buckets whose summary differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.types import TypeEngine

from connectors.kingdee.assembly import wire_row
from connectors.kingdee.document_reader import TableRows
from connectors.kingdee.documents import DocumentSpec

#: Ids per ``IN`` list: below Oracle's 1,000 items and SQL Server's 2,100 parameters.
IN_CHUNK = 500
#: Isolation for reading whole documents, where the dialect has a snapshot-like level (a document's tables read in
#: one snapshot); elsewhere the driver's default (a torn read is re-read: the save that tore it moved the modified
#: time, see docs/capture-modes.md).
READ_ISOLATION = {"postgresql": "REPEATABLE READ", "sqlite": "SERIALIZABLE"}


class QueryReader:
    def __init__(self, engine: Engine, *, schema: str | None = None) -> None:
        self.engine = engine
        self.schema = schema
        self.calls = 0
        self.rows_read = 0
        self._metadata = MetaData(schema=schema)
        self._tables: dict[str, Table] = {}

    # --- tables ---------------------------------------------------------------------------------------------------
    def table(self, name: str) -> Table:
        """The table as the database has it now (reflected once; :meth:`refresh` forgets what was reflected)."""
        if name not in self._tables:
            self._tables[name] = Table(name, self._metadata, autoload_with=self.engine, quote=True)
            self.calls += 1
        return self._tables[name]

    def refresh(self) -> None:
        """Reflect the tables again at their next use (columns added to the database since are read from then)."""
        self._metadata = MetaData(schema=self.schema)
        self._tables.clear()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        isolation = READ_ISOLATION.get(self.engine.dialect.name)
        with self.engine.connect() as conn:
            if isolation:
                conn = conn.execution_options(isolation_level=isolation)
            with conn.begin():
                yield conn

    # --- statements (compiled by the dialect tests) ------------------------------------------------------------------
    def changed_statement(self, spec: DocumentSpec, since: datetime | None) -> Any:
        header = self.table(spec.header.table)
        key, modified = header.c[spec.key_column], header.c[spec.modified_column]
        stmt = select(key, modified).order_by(modified, key)
        return stmt if since is None else stmt.where(modified >= since)

    def rows_statement(self, table: str, doc_key: str, doc_ids: Sequence[Any]) -> Any:
        t = self.table(table)
        return select(t).where(t.c[doc_key].in_(doc_ids))

    def buckets_statement(self, spec: DocumentSpec, bucket_size: int) -> Any:
        key = self.table(spec.header.table).c[spec.key_column]
        bucket = _bucket(key, bucket_size)
        # SUM over 64 bits: SQL Server sums an int column as int, which overflows on a bucket of large ids
        return select(bucket.label("bucket"), func.count(), func.sum(cast(key, BigInteger))).group_by(bucket)

    def keys_statement(self, spec: DocumentSpec, bucket_size: int, buckets: Collection[int] | None) -> Any:
        key = self.table(spec.header.table).c[spec.key_column]
        stmt = select(key)
        return stmt if buckets is None else stmt.where(_bucket(key, bucket_size).in_(sorted(buckets)))

    # --- DocumentReader -------------------------------------------------------------------------------------------
    def changed_since(self, spec: DocumentSpec, since: datetime | None) -> list[tuple[str, datetime]]:
        with self.engine.connect() as conn:
            rows = conn.execute(self.changed_statement(spec, since)).all()
        self.calls += 1
        self.rows_read += len(rows)
        return [(str(doc_id), modified) for doc_id, modified in rows if modified is not None]

    def read(self, spec: DocumentSpec, doc_ids: Sequence[str]) -> TableRows:
        out: TableRows = {table: [] for table in spec.tables}
        if not doc_ids:
            return out
        parts = [*spec.parts, spec.header]  # the header last: a save committed meanwhile is seen by its time
        with self._reading() as conn:
            for part in parts:
                table = self.table(part.table)
                ids = [_key_value(table, part.doc_key, d) for d in doc_ids]
                for start in range(0, len(ids), IN_CHUNK):
                    result = conn.execute(self.rows_statement(part.table, part.doc_key, ids[start:start + IN_CHUNK]))
                    rows = [_wire(dict(r)) for r in result.mappings()]
                    self.calls += 1
                    self.rows_read += len(rows)
                    out[part.table].extend(rows)
        return out

    def key_buckets(self, spec: DocumentSpec, bucket_size: int) -> dict[int, tuple[int, int]] | None:
        header = self.table(spec.header.table)
        if not isinstance(header.c[spec.key_column].type, Integer):
            return None  # text keys (assistant data entries): read whole
        with self.engine.connect() as conn:
            rows = conn.execute(self.buckets_statement(spec, bucket_size)).all()
        self.calls += 1
        self.rows_read += len(rows)
        return {int(bucket): (int(count), int(total)) for bucket, count, total in rows}

    def keys(self, spec: DocumentSpec, bucket_size: int, buckets: Collection[int] | None = None) -> set[str]:
        if buckets is not None and not buckets:
            return set()
        with self.engine.connect() as conn:
            found = {str(k) for (k,) in conn.execute(self.keys_statement(spec, bucket_size, buckets))}
        self.calls += 1
        self.rows_read += len(found)
        return found

    def column_types(self, table: str, columns: list[str]) -> dict[str, tuple[str, int | None, int | None]]:
        """The catalog types of new columns (schema evolution), named as the capture's type table names them."""
        t = self.table(table)
        return {c: _catalog_type(t.c[c].type) for c in columns if c in t.c}

    def close(self) -> None:
        self.engine.dispose()


def _bucket(key: Any, size: int) -> Any:
    """``key // size`` with the size written into the statement: SQL Server refuses a grouped select whose select
    list and ``GROUP BY`` hold the same expression with two different parameters."""
    return key // literal_column(str(int(size)), Integer)


def _catalog_type(coltype: TypeEngine[Any]) -> tuple[str, int | None, int | None]:
    if isinstance(coltype, Boolean):
        return "boolean", None, None
    if isinstance(coltype, Integer):
        return "bigint", None, None
    if isinstance(coltype, Float):
        return "double precision", None, None
    if isinstance(coltype, Numeric):
        return "numeric", coltype.precision, coltype.scale
    if isinstance(coltype, DateTime):
        return "timestamp", None, None
    if isinstance(coltype, Date):
        return "date", None, None
    return "text", None, None


def _wire(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the store keeps it; what other databases return besides PostgreSQL's types (SQL Server's binary
    ``rowversion``, unique identifiers, times of day) as text."""
    out = wire_row(row)
    for column, value in out.items():
        if isinstance(value, bytes | bytearray | memoryview):
            out[column] = bytes(value).hex()
        elif isinstance(value, uuid.UUID | time):
            out[column] = str(value)
    return out


def _key_value(table: Table, column: str, doc_id: str) -> Any:
    """A document id (text, as events key them) as the key column's type takes it."""
    return int(doc_id) if isinstance(table.c[column].type, Integer) else doc_id
