"""The field clock: for each (entity, field) of two-way master data, the last value known in both systems, which
system it came from and its source time.  It lives in the ledger database, shared by both directions' flows.

It gives the two rules that make two-way sync safe:
- **No echo**: a value equal to the last known one is never written again, so a write this system made, coming
  back through the other side's change capture, changes nothing and calls no API.
- **Conflicts**: a field owned by one system always takes that system's value (the mapping declares ownership);
  a ``shared`` field takes the value with the newer source time — a change older than what the other side last
  changed is dropped, and the other side's newer value flows back instead, so both systems converge.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, String, Table, Text, inspect, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from core.ledger import driver_params, driver_sql, metadata, transaction

_JSON = Text().with_variant(JSONB(), "postgresql")

#: One row per entity: ``fields`` maps each field to ``[side, source_time_ms, fingerprint, value as JSON, claimed]``
#: and ``claims`` holds the claims not confirmed yet (``"<side>:<source time>": 1``).  A field is *pending* — its
#: write not confirmed: the other direction already treats it as the target's value (that is what stops the echo),
#: but the writing side does not (after a crash it writes again rather than believe a write that may never have
#: happened) — while it was claimed and its claim is still open.  One row rather than one per field: a sink
#: claims 9 fields of each material before its call and confirms them after, and SQLite's work per row was the
#: largest part of the sink's CPU (docs/sink-pace.md).  Both databases merge fields in SQL (SQLite ``json_patch``,
#: PostgreSQL ``jsonb ||``), so the two directions' processes writing one entity never lose each other's fields.
field_clock_entities = Table(
    "field_clock_entities",
    metadata,
    Column("entity", String(128), primary_key=True),
    Column("fields", _JSON, nullable=False),
    Column("claims", _JSON, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)
#: The table of earlier versions (a row per entity and field), moved into ``field_clock_entities`` once.
PER_FIELD_TABLE = "field_clock"


def newer(a_ms: int, b_ms: int) -> bool:
    """Whether time ``a`` is later than ``b`` as both systems can tell: ZOHO shows times to the second, so times
    are compared in whole seconds; within one second the change being applied wins (it was observed later)."""
    return a_ms // 1000 > b_ms // 1000


#: ``json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)`` without building an encoder per call.
_FINGERPRINT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode
_STD_VALUE_JSON = json.JSONEncoder(ensure_ascii=False, default=str).encode
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _dumps(obj: dict[str, Any]) -> str:
    """An entity's fields or claims as stored (values inside are already JSON text)."""
    return orjson.dumps(obj).decode()


def _value_json(value: Any) -> str:
    """A value as the clock keeps it, JSON that ``json.loads`` reads back as the standard library would have
    written it: orjson (a fifth of the cost; 9 values per material claimed and confirmed), the standard library
    for what orjson writes otherwise or refuses (non-finite floats, integers beyond 64 bits)."""
    if isinstance(value, float) and not math.isfinite(value):
        return _STD_VALUE_JSON(value)
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _STD_VALUE_JSON(value)


#: Entities read in one statement by :meth:`FieldClock.known`.
KNOWN_CHUNK = 500


def value_fingerprint(value: Any) -> str:
    try:  # a sink claims values and confirms the same ones a call later: scalars are remembered
        return _scalar_fingerprint(value)
    except TypeError:  # unhashable (lists, dicts)
        return _fingerprint(value)


def _fingerprint(value: Any) -> str:
    normalised = "" if value is None else value
    data = None
    if type(normalised) in (str, int):  # orjson writes these byte for byte as the standard library (a third of it)
        with contextlib.suppress(TypeError):  # integers beyond 64 bits; text that is not valid UTF-8
            data = orjson.dumps(normalised)
    if data is None:
        data = _FINGERPRINT_JSON(normalised).encode()
    return hashlib.sha256(data).hexdigest()[:32]


@lru_cache(maxsize=16384, typed=True)  # typed: True, 1 and 1.0 are different values
def _scalar_fingerprint(value: Any) -> str:
    return _fingerprint(value)


class ClockEntry:
    """What the clock knows of one field.  A value read from the ledger is decoded from its JSON only when asked for
    (a plan compares fingerprints; values are needed only when a person changed the record or a write is undone)."""

    __slots__ = ("side", "source_time_ms", "fingerprint", "pending", "_value", "_encoded")

    def __init__(self, side: str, source_time_ms: int, fingerprint: str, value: Any = None, pending: bool = False,
                 *, encoded: str | None = None) -> None:
        self.side, self.source_time_ms, self.fingerprint, self.pending = side, source_time_ms, fingerprint, pending
        self._value, self._encoded = value, encoded

    @property
    def value(self) -> Any:
        if self._encoded is not None:
            self._value, self._encoded = json.loads(self._encoded), None
        return self._value

    def _key(self) -> tuple[str, int, str, Any, bool]:
        return self.side, self.source_time_ms, self.fingerprint, self.value, self.pending

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClockEntry) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.side, self.source_time_ms, self.fingerprint, self.pending))

    def __repr__(self) -> str:
        return (f"ClockEntry(side={self.side!r}, source_time_ms={self.source_time_ms}, "
                f"fingerprint={self.fingerprint!r}, value={self.value!r}, pending={self.pending})")


@dataclass(frozen=True)
class Decision:
    write: dict[str, Any]
    #: field -> why it is not written ("unchanged", or "newer in crm" / "newer in kingdee").
    dropped: dict[str, str]


def _json(value: Any) -> Any:
    """A JSON column as read: text on SQLite, already decoded by the PostgreSQL driver."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _claim(side: str, time_ms: int) -> str:
    return f"{side}:{time_ms}"


class _Statements:
    """The clock's driver-level statements for one database (SQLAlchemy's row handling cost more than the work)."""

    def __init__(self, engine: Engine) -> None:
        pg = engine.dialect.name == "postgresql"
        t = field_clock_entities.name
        merge = "{t}.{c} || excluded.{c}" if pg else "json_patch({t}.{c}, excluded.{c})"
        value = "CAST(:{} AS JSONB)" if pg else ":{}"
        self.record = driver_sql(text(
            f"INSERT INTO {t} (entity, fields, claims, updated_at_ms) "
            f"VALUES (:e, {value.format('f')}, {value.format('c')}, :u) ON CONFLICT (entity) DO UPDATE SET "
            f"fields = {merge.format(t=t, c='fields')}, claims = {merge.format(t=t, c='claims')}, "
            "updated_at_ms = excluded.updated_at_ms"), engine)
        self.keep = driver_sql(text(
            f"INSERT INTO {t} (entity, fields, claims, updated_at_ms) "
            f"VALUES (:e, {value.format('f')}, {value.format('c')}, :u) ON CONFLICT (entity) DO NOTHING"), engine)
        #: ``k``: the claim's key (PostgreSQL) or its JSON path (SQLite).
        self.confirm = driver_sql(text(
            f"UPDATE {t} SET claims = " + ("claims - :k" if pg else "json_remove(claims, :k)") + " WHERE entity = :e"),
            engine)
        self.read_for_update = driver_sql(text(
            f"SELECT fields, claims FROM {t} WHERE entity = :e" + (" FOR UPDATE" if pg else "")), engine)
        self.replace = driver_sql(text(
            f"UPDATE {t} SET fields = {value.format('f')}, claims = {value.format('c')}, updated_at_ms = :u "
            "WHERE entity = :e"), engine)
        self.pg = pg
        self._known: dict[int, tuple[str, tuple[str, ...] | None]] = {}
        self._engine = engine

    def claim_key(self, side: str, time_ms: int) -> str:
        """A claim's member of ``claims`` as the database's removal takes it (sides are plain names)."""
        key = _claim(side, time_ms)
        return key if self.pg else f'$."{key}"'

    def known(self, n: int) -> tuple[str, tuple[str, ...] | None]:
        found = self._known.get(n)
        if found is None:
            marks = ", ".join(f":e{i}" for i in range(n))
            found = self._known[n] = driver_sql(text(
                f"SELECT entity, fields, claims FROM {field_clock_entities.name} WHERE entity IN ({marks})"),
                self._engine)
        return found


class FieldClock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine, tables=[field_clock_entities])
        self._sql = _Statements(engine)
        if inspect(engine).has_table(PER_FIELD_TABLE):
            self._move_per_field_rows()

    def _move_per_field_rows(self) -> None:
        """A ledger of an earlier version keeps a row per field: its rows become entity rows, once, and the old
        table goes.  Processes starting together may race for it; the loser finds the table gone."""
        try:
            have = {c["name"] for c in inspect(self.engine).get_columns(PER_FIELD_TABLE)}
            pending = "pending" if "pending" in have else "0"
            with self.engine.begin() as conn:
                self._lock(conn, PER_FIELD_TABLE)  # a second process waits here, then finds the table gone
                old = conn.exec_driver_sql(
                    f"SELECT entity, field, side, source_time_ms, fingerprint, value, {pending} "
                    f"FROM {PER_FIELD_TABLE}").fetchall()
                merged: dict[str, tuple[dict[str, Any], dict[str, int]]] = {}
                for entity, name, side, time_ms, fp, value, claimed in old:
                    fields, claims = merged.setdefault(entity, ({}, {}))
                    fields[name] = [side, int(time_ms), fp, value if value is not None else "null", int(claimed)]
                    if claimed:
                        claims[_claim(side, int(time_ms))] = 1
                sql, order = self._sql.keep
                now = int(time.time() * 1000)
                rows = [driver_params(order, {"e": e, "f": _dumps(f), "c": _dumps(c), "u": now})
                        for e, (f, c) in merged.items()]
                if rows:
                    conn.exec_driver_sql(sql, rows)
                conn.exec_driver_sql(f"DROP TABLE {PER_FIELD_TABLE}")
        except (OperationalError, ProgrammingError):
            if inspect(self.engine).has_table(PER_FIELD_TABLE):
                raise

    def _lock(self, conn: Connection, table: str) -> None:
        """Take the write lock before reading what will be written: SQLite's lock on the whole database (a write
        that changes nothing), PostgreSQL's on the table."""
        if self._sql.pg:
            conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        else:
            conn.exec_driver_sql(f"UPDATE {table} SET updated_at_ms = updated_at_ms WHERE 0")

    def known(self, entities: Iterable[str]) -> dict[str, dict[str, ClockEntry]]:
        wanted = list(dict.fromkeys(entities))
        out: dict[str, dict[str, ClockEntry]] = {e: {} for e in wanted}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), KNOWN_CHUNK):
                chunk = wanted[i : i + KNOWN_CHUNK]
                sql, order = self._sql.known(len(chunk))
                params = driver_params(order, {f"e{j}": e for j, e in enumerate(chunk)})
                for entity, fields, claims in conn.exec_driver_sql(sql, params).fetchall():
                    open_claims = _json(claims)
                    out[entity] = {
                        name: ClockEntry(side, time_ms, fp, None,
                                         bool(claimed) and _claim(side, time_ms) in open_claims, encoded=value)
                        for name, (side, time_ms, fp, value, claimed) in _json(fields).items()}
        return out

    @staticmethod
    def decide(known: dict[str, ClockEntry], side: str, time_ms: int, values: dict[str, Any],
               shared: frozenset[str]) -> Decision:
        write: dict[str, Any] = {}
        dropped: dict[str, str] = {}
        for name, value in values.items():
            entry = known.get(name)
            own_unconfirmed = entry is not None and entry.pending and entry.side == side
            if entry is not None and entry.fingerprint == value_fingerprint(value) and not own_unconfirmed:
                dropped[name] = "unchanged"
            elif name in shared and entry is not None and entry.side != side and newer(entry.source_time_ms, time_ms):
                dropped[name] = f"newer in {entry.side}"
            else:
                write[name] = value
        return Decision(write, dropped)

    def restore(self, entity: str, previous: dict[str, ClockEntry | None]) -> None:
        """Put fields back to what the clock knew before a write that failed: the entity's row is read, changed and
        written in one transaction (rare: only after a failed write), under the row's write lock."""
        read_sql, read_order = self._sql.read_for_update
        with self.engine.begin() as conn:
            if not self._sql.pg:
                self._lock(conn, field_clock_entities.name)
            row = conn.exec_driver_sql(read_sql, driver_params(read_order, {"e": entity})).fetchone()
            if row is None:
                fields, claims = {}, {}
            else:
                fields, claims = _json(row[0]), _json(row[1])
            for name, e in previous.items():
                if e is None:
                    fields.pop(name, None)
                    continue
                fields[name] = [e.side, e.source_time_ms, e.fingerprint, _value_json(e.value), int(e.pending)]
                if e.pending:
                    claims[_claim(e.side, e.source_time_ms)] = 1
            params = {"e": entity, "f": _dumps(fields), "c": _dumps(claims), "u": int(time.time() * 1000)}
            sql, order = self._sql.replace if row is not None else self._sql.keep
            conn.exec_driver_sql(sql, driver_params(order, params))

    def confirm(self, items: Iterable[tuple[str, str, int]], conn: Connection | None = None) -> None:
        """The writes that claimed these (entity, side, source time) succeeded: one statement per entity closes that
        claim, and nothing recorded since (another side's value, a newer time) is touched.  In ``conn``'s
        transaction if given (a sink records its ledger rows in the same one)."""
        sql, order = self._sql.confirm
        params = [driver_params(order, {"e": entity, "k": self._sql.claim_key(side, time_ms)})
                  for entity, side, time_ms in items]
        if params:
            with transaction(self.engine, conn) as tx:  # the driver's executemany: one confirmation per entity
                tx.exec_driver_sql(sql, params)

    def record(self, entity: str, side: str, time_ms: int, values: dict[str, Any]) -> None:
        self.record_many([(entity, side, time_ms, values)])

    def record_many(self, items: Iterable[tuple[str, str, int, dict[str, Any]]], *, pending: bool = False,
                    conn: Connection | None = None) -> None:
        """Record values (merged into what each entity's row holds; later items win); ``pending``: as a claim."""
        flag = int(pending)
        merged: dict[str, tuple[dict[str, Any], dict[str, int]]] = {}
        for entity, side, time_ms, values in items:
            if not values:
                continue
            fields, claims = merged.setdefault(entity, ({}, {}))
            for name, value in values.items():
                fields[name] = [side, time_ms, value_fingerprint(value), _value_json(value), flag]
            if pending:
                claims[_claim(side, time_ms)] = 1
        if not merged:
            return
        sql, order = self._sql.record
        now_ms = int(time.time() * 1000)
        params = [driver_params(order, {"e": e, "f": _dumps(f), "c": _dumps(c), "u": now_ms})
                  for e, (f, c) in merged.items()]
        with transaction(self.engine, conn) as tx:
            tx.exec_driver_sql(sql, params)
