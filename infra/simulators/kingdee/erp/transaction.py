"""How every ERP write runs: one document in one transaction, with Kingdee's millisecond timestamps.

The write helpers take a ``Connection`` or an ``Engine``: with a connection already in a transaction they join it
(the caller commits); otherwise they commit their own transaction. So every helper call is atomic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert

from connectors.kingdee import models as m
from connectors.kingdee.models import CAPTURED_TABLES, TABLES


@contextmanager
def transaction(bind: Connection | Engine) -> Iterator[Connection]:
    """Join the caller's transaction, or run in our own that commits on success."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    elif bind.in_transaction():
        yield bind
    else:
        with bind.begin():
            yield bind


def kingdee_time(now: datetime | None) -> datetime:
    """``now`` (default: China local time now) to the millisecond, as Kingdee keeps it."""
    value = now or m.china_now()
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def insert_rows(conn: Connection, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Insert rows table by table, headers before children; SQLAlchemy batches them as multi-row INSERTs."""
    for name in CAPTURED_TABLES:
        batch = rows.get(name)
        if not batch:
            continue
        by_keys: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in batch:
            by_keys.setdefault(tuple(row), []).append(row)
        for same_keys in by_keys.values():
            conn.execute(insert(TABLES[name]), same_keys)
