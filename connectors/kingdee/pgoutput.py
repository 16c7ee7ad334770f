"""Decoding of PostgreSQL's built-in ``pgoutput`` logical replication protocol into whole transactions.

``pgoutput`` ships with the server (no package, allowed by default since 15.19's ``output_plugin_libraries``) and is
what Debezium and PostgreSQL's own subscriptions read.  Protocol version 1, text column values, and logical messages
(``messages 'true'``: our heartbeats and re-snapshot requests).  Per replication session the server first describes
each table in a Relation message (name, columns, type OIDs); rows then arrive as tuples of text values, which are
typed here the way JSON would carry them (integers as ``int``, ``numeric`` as exact ``Decimal``, booleans as
``bool``, everything else as the server's text), so the rest of the capture does not depend on the wire format.

With ``REPLICA IDENTITY FULL`` updates and deletes carry the whole old row.  The capture needs only its keys (the
row's primary key and its document's id: the before-image is the document store's), so a reader given each
table's ``old_columns`` decodes just those of an old row and steps over the rest (an update's decoding cost half
as much).  A TOASTed column that an update did not change arrives as "unchanged" without its value; it is taken
from the old row where that has it, or else marked :data:`~connectors.kingdee.assembly.UNCHANGED` for the
assembler to keep the stored value.

Protocol reference: https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.kingdee.assembly import UNCHANGED, RowChange, Transaction

PLUGIN = "pgoutput"
PROTO_VERSION = "1"

#: Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC), as milliseconds.
_PG_EPOCH_MS = 946_684_800_000

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_BEGIN = struct.Struct("!Qqi")      # final LSN, commit time (µs since 2000), xid
_COMMIT = struct.Struct("!BQQq")    # flags, commit LSN, end LSN, commit time
_MESSAGE = struct.Struct("!BQ")     # flags, LSN; then prefix and content


def options(publication: str) -> dict[str, str]:
    """``START_REPLICATION`` options: protocol 1 (no in-progress streaming), the publication, logical messages."""
    return {"proto_version": PROTO_VERSION, "publication_names": publication, "messages": "true"}


class ProtocolError(RuntimeError):
    """The stream did not look like pgoutput (a misconfigured slot, or a bug): never skipped silently."""


@dataclass(frozen=True)
class Truncated:
    tables: tuple[str, ...]
    lsn: int


@dataclass(frozen=True)
class Heartbeat:
    """A logical message (``pg_logical_emit_message``): our heartbeats, and requests such as re-snapshots."""

    lsn: int
    prefix: str
    content: str = ""


def parse_lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _bool(text: str) -> bool:
    return text == "t"


#: Type OID → how its text form is read; other types stay text (times keep PostgreSQL's ISO text).
_CONVERTERS: dict[int, Callable[[str], Any]] = {
    16: _bool,             # bool
    20: int, 21: int, 23: int, 26: int,  # int8, int2, int4, oid
    700: float, 701: float,  # float4, float8
    1700: Decimal,         # numeric: exact
}


@dataclass(frozen=True)
class Relation:
    oid: int
    table: str
    columns: tuple[str, ...]
    #: (column, converter) pairs; ``None`` for a text column (kept as the server's text).
    readers: tuple[tuple[str, Callable[[str], Any] | None], ...]
    #: The same for an old row: ``None`` as the name for a column that is stepped over, not decoded.
    old_readers: tuple[tuple[str | None, Callable[[str], Any] | None], ...] = ()


class TransactionReader:
    """Feed it pgoutput messages in stream order; it returns a :class:`Transaction` at each commit, and heartbeats
    and truncations as they come."""

    def __init__(self, old_columns: Mapping[str, Collection[str]] | None = None) -> None:
        """``old_columns``: per table, the columns of an old row (update, delete) the caller reads; a table not
        in it has its old rows decoded whole."""
        self._tx: Transaction | None = None
        self._relations: dict[int, Relation] = {}
        self._old_columns = old_columns or {}

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    def feed(self, payload: bytes, data_start: int) -> Transaction | Heartbeat | Truncated | None:
        if not payload:
            raise ProtocolError(f"empty message at LSN {format_lsn(data_start)}")
        try:
            return self._feed(payload if isinstance(payload, bytes) else bytes(payload), data_start)
        except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, ProtocolError):
                raise
            raise ProtocolError(f"malformed pgoutput message {bytes(payload[:1])!r} at LSN "
                                f"{format_lsn(data_start)}: {exc}") from exc

    def _feed(self, buf: bytes, data_start: int) -> Transaction | Heartbeat | Truncated | None:
        kind = buf[0]
        if kind in (0x49, 0x55, 0x44):  # I, U, D
            self._row(kind, buf, data_start)
            return None
        if kind == 0x42:  # B
            _, _, xid = _BEGIN.unpack_from(buf, 1)
            self._tx = Transaction(xid=xid, commit_lsn=0, commit_time_ms=0)
            return None
        if kind == 0x43:  # C
            _, _, end_lsn, ts = _COMMIT.unpack_from(buf, 1)
            tx, self._tx = self._tx, None
            if tx is None:
                raise ProtocolError(f"commit without begin at LSN {format_lsn(data_start)}")
            tx.commit_lsn = end_lsn
            tx.commit_time_ms = ts // 1000 + _PG_EPOCH_MS
            return tx
        if kind == 0x52:  # R
            self._relation(buf)
            return None
        if kind == 0x4D:  # M
            _, lsn = _MESSAGE.unpack_from(buf, 1)
            prefix, pos = _cstring(buf, 1 + _MESSAGE.size)
            (size,) = _U32.unpack_from(buf, pos)
            content = bytes(buf[pos + 4:pos + 4 + size]).decode("utf-8", errors="replace")
            return Heartbeat(lsn=lsn, prefix=prefix, content=content)
        if kind == 0x54:  # T
            (count,) = _U32.unpack_from(buf, 1)
            oids = struct.unpack_from(f"!{count}I", buf, 6)
            return Truncated(tables=tuple(self._rel(oid, data_start).table for oid in oids), lsn=data_start)
        if kind in (0x4F, 0x59):  # O (origin), Y (type): nothing the capture needs
            return None
        raise ProtocolError(f"unknown pgoutput message {chr(kind)!r} at LSN {format_lsn(data_start)}")

    def _relation(self, buf: bytes) -> None:
        (oid,) = _U32.unpack_from(buf, 1)
        _, pos = _cstring(buf, 5)          # namespace
        table, pos = _cstring(buf, pos)
        pos += 1                           # replica identity setting
        (ncols,) = _I16.unpack_from(buf, pos)
        pos += 2
        names: list[str] = []
        converters: list[Callable[[str], Any] | None] = []
        for _ in range(ncols):
            pos += 1                       # flags (part of the key)
            name, pos = _cstring(buf, pos)
            (type_oid,) = _U32.unpack_from(buf, pos)
            pos += 8                       # type OID, type modifier
            names.append(name)
            converters.append(_CONVERTERS.get(type_oid))
        readers = tuple(zip(names, converters, strict=True))
        wanted = self._old_columns.get(table)
        old_readers = readers if wanted is None else tuple(
            (name if name in wanted else None, convert) for name, convert in readers)
        self._relations[oid] = Relation(oid, table, tuple(names), readers, old_readers)

    def _rel(self, oid: int, data_start: int) -> Relation:
        rel = self._relations.get(oid)
        if rel is None:
            raise ProtocolError(f"row of relation {oid} before its Relation message at LSN {format_lsn(data_start)}")
        return rel

    def _row(self, kind: int, buf: bytes, data_start: int) -> None:
        if self._tx is None:
            raise ProtocolError(f"row change outside a transaction at LSN {format_lsn(data_start)}")
        (oid,) = _U32.unpack_from(buf, 1)
        rel = self._rel(oid, data_start)
        pos = 5
        before: dict[str, Any] | None = None
        after: dict[str, Any] | None = None
        if kind != 0x49 and buf[pos] in (0x4B, 0x4F):  # K (key only) or O (whole old row)
            before, pos = _tuple(rel, buf, pos + 1, rel.old_readers)
        if kind != 0x44:
            if buf[pos] != 0x4E:  # N
                raise ProtocolError(f"expected a new tuple in {chr(kind)} of {rel.table} at {format_lsn(data_start)}")
            after, pos = _tuple(rel, buf, pos + 1, rel.readers)
            if before is not None:
                for name, value in after.items():
                    if value is UNCHANGED and name in before:
                        after[name] = before[name]
        elif before is None:
            raise ProtocolError(f"delete of {rel.table} without an old row at {format_lsn(data_start)}")
        op = "I" if kind == 0x49 else ("U" if kind == 0x55 else "D")
        self._tx.changes.append(RowChange(table=rel.table, op=op, before=before, after=after))


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(0, pos)
    return buf[pos:end].decode("utf-8"), end + 1


def _tuple(rel: Relation, buf: bytes, pos: int,
           readers: tuple[tuple[str | None, Callable[[str], Any] | None], ...]) -> tuple[dict[str, Any], int]:
    """One tuple's columns: the hot loop of the capture (one pass, texts decoded once, no call for a text column;
    a column whose reader has no name is stepped over)."""
    (count,) = _I16.unpack_from(buf, pos)
    pos += 2
    if count != len(rel.columns):
        raise ProtocolError(f"{rel.table}: a tuple of {count} columns, the relation has {len(rel.columns)}")
    row: dict[str, Any] = {}
    size_at = _I32.unpack_from
    for name, convert in readers:
        kind = buf[pos]
        if kind == 0x74:  # t: text
            (size,) = size_at(buf, pos + 1)
            start = pos + 5
            pos = start + size
            if name is None:
                continue
            if convert is None:
                row[name] = buf[start:pos].decode()
            else:
                row[name] = convert(buf[start:pos].decode())
        elif kind == 0x6E:  # n: null
            if name is not None:
                row[name] = None
            pos += 1
        elif kind == 0x75:  # u: unchanged TOASTed value, not sent
            if name is not None:
                row[name] = UNCHANGED
            pos += 1
        else:
            raise ProtocolError(f"{rel.table}.{name}: unknown tuple value kind {kind!r}")
    return row, pos
