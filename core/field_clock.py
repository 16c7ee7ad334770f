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

import hashlib
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine

from core.ledger import driver_params, driver_sql, metadata, upsert_tuples

field_clock = Table(
    "field_clock",
    metadata,
    Column("entity", String(128), primary_key=True),
    Column("field", String(128), primary_key=True),
    Column("side", String(16), nullable=False),
    Column("source_time_ms", BigInteger, nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("value", Text),
    #: 1 while the write that set this value has not been confirmed: the other direction already treats it as
    #: the target's value (that is what stops the echo), but the writing side does not (after a crash it writes
    #: again rather than believe a write that may never have happened).
    Column("pending", Integer, nullable=False, server_default="0"),
    Column("updated_at_ms", BigInteger, nullable=False),
)


def newer(a_ms: int, b_ms: int) -> bool:
    """Whether time ``a`` is later than ``b`` as both systems can tell: ZOHO shows times to the second, so times
    are compared in whole seconds; within one second the change being applied wins (it was observed later)."""
    return a_ms // 1000 > b_ms // 1000


#: ``json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)`` without building an encoder per call.
_FINGERPRINT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode
_STD_VALUE_JSON = json.JSONEncoder(ensure_ascii=False, default=str).encode
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


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
#: The columns :meth:`FieldClock.record_many` writes, in its rows' order.
RECORD_COLUMNS = ("entity", "field", "side", "source_time_ms", "fingerprint", "value", "pending", "updated_at_ms")
#: Entities read in one statement by :meth:`FieldClock.known`.
KNOWN_CHUNK = 500


def value_fingerprint(value: Any) -> str:
    try:  # a sink claims values and confirms the same ones a call later: scalars are remembered
        return _scalar_fingerprint(value)
    except TypeError:  # unhashable (lists, dicts)
        return _fingerprint(value)


def _fingerprint(value: Any) -> str:
    normalised = "" if value is None else value
    return hashlib.sha256(_FINGERPRINT_JSON(normalised).encode()).hexdigest()[:32]


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


class FieldClock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine, tables=[field_clock])
        if "pending" not in {c["name"] for c in inspect(engine).get_columns("field_clock")}:
            with engine.begin() as conn:  # a ledger made before the column existed
                conn.execute(text("ALTER TABLE field_clock ADD COLUMN pending INTEGER NOT NULL DEFAULT 0"))
        self._confirm = self._confirm_sql()
        self._known_by_size: dict[int, tuple[str, tuple[str, ...] | None]] = {}

    def known(self, entities: Iterable[str]) -> dict[str, dict[str, ClockEntry]]:
        wanted = list(dict.fromkeys(entities))
        out: dict[str, dict[str, ClockEntry]] = {e: {} for e in wanted}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), KNOWN_CHUNK):
                chunk = wanted[i : i + KNOWN_CHUNK]
                sql, order = self._known_sql(len(chunk))
                params = driver_params(order, {f"e{j}": e for j, e in enumerate(chunk)})
                for entity, name, side, time_ms, fp, value, pending in conn.exec_driver_sql(sql, params).fetchall():
                    out[entity][name] = ClockEntry(side, time_ms, fp, None, bool(pending), encoded=value or None)
        return out

    def _known_sql(self, n: int) -> tuple[str, tuple[str, ...] | None]:
        """The driver-level select of ``n`` entities' fields, parameters ``e0``… (SQLAlchemy's row handling cost
        more than the read)."""
        found = self._known_by_size.get(n)
        if found is None:
            t = field_clock.c
            stmt = select(t.entity, t.field, t.side, t.source_time_ms, t.fingerprint, t.value, t.pending).where(
                t.entity.in_([bindparam(f"e{i}") for i in range(n)]))
            found = self._known_by_size[n] = driver_sql(stmt, self.engine)
        return found

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
        """Put fields back to what the clock knew before a write that failed."""
        t = field_clock.c
        with self.engine.begin() as conn:
            for name in previous:
                conn.execute(field_clock.delete().where(t.entity == entity, t.field == name))
        for name, e in previous.items():
            if e is not None:
                self.record_many([(entity, e.side, e.source_time_ms, {name: e.value})], pending=e.pending)

    def confirm(self, items: Iterable[tuple[str, str, int]], conn: Connection | None = None) -> None:
        """The writes that claimed these (entity, side, source time) succeeded: one statement per entity clears
        what that claim set, and nothing recorded since (another side's value, a newer time) is touched.  In
        ``conn``'s transaction if given (a sink records its ledger rows in the same one)."""
        sql, order = self._confirm
        params = [driver_params(order, {"e": entity, "s": side, "t": time_ms}) for entity, side, time_ms in items]
        if not params:
            return
        if conn is not None:
            conn.exec_driver_sql(sql, params)
            return
        with self.engine.begin() as own:  # the driver's executemany: one confirmation per entity written
            own.exec_driver_sql(sql, params)

    def _confirm_sql(self) -> tuple[str, tuple[str, ...] | None]:
        t = field_clock.c
        return driver_sql(field_clock.update().where(
            t.entity == bindparam("e"), t.side == bindparam("s"), t.source_time_ms == bindparam("t"),
            t.pending == literal_column("1"),
        ).values(pending=literal_column("0")), self.engine)

    def record(self, entity: str, side: str, time_ms: int, values: dict[str, Any]) -> None:
        self.record_many([(entity, side, time_ms, values)])

    def record_many(self, items: Iterable[tuple[str, str, int, dict[str, Any]]], *, pending: bool = False) -> None:
        now_ms, flag = int(time.time() * 1000), int(pending)
        rows = [
            (entity, name, side, time_ms, value_fingerprint(value), _value_json(value), flag, now_ms)
            for entity, side, time_ms, values in items for name, value in values.items()
        ]
        upsert_tuples(self.engine, field_clock, RECORD_COLUMNS, rows, ("entity", "field"))
