"""Parsing of wal2json ``format-version=2`` messages into whole transactions.

One message per row (``I``/``U``/``D``) between a ``B`` (begin) and a ``C`` (commit); ``M`` is a logical message
(our heartbeats, emitted non-transactionally).  Numbers are parsed as exact ``Decimal``; with ``REPLICA IDENTITY FULL``
updates and deletes carry the full old row under ``identity``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.kingdee.assembly import RowChange, Transaction

PLUGIN = "wal2json"
OPTIONS = {
    "format-version": "2",
    "include-xids": "1",
    "include-timestamp": "1",
    "include-lsn": "1",
    "include-types": "0",
    "include-transaction": "1",
}


class ProtocolError(RuntimeError):
    """The stream did not look like wal2json v2 (a misconfigured slot, or a bug): never skipped silently."""


@dataclass(frozen=True)
class Truncated:
    table: str
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


def commit_time_ms(text: str) -> int:
    # PostgreSQL prints e.g. "2024-05-01 10:00:00.123456+08" or "+05:30"; fromisoformat wants "+08:00".
    if len(text) >= 3 and text[-3] in "+-" and text[-3:].replace("+", "").replace("-", "").isdigit():
        text += ":00"
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _row(items: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if items is None:
        return None
    return {c["name"]: c.get("value") for c in items}


class TransactionReader:
    """Feed it messages in stream order; it returns a :class:`Transaction` at each commit."""

    def __init__(self) -> None:
        self._tx: Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    def feed(self, payload: str | bytes, data_start: int) -> Transaction | Heartbeat | Truncated | None:
        try:
            msg = json.loads(payload, parse_float=Decimal)
        except ValueError as exc:
            raise ProtocolError(f"not JSON at LSN {format_lsn(data_start)}: {exc}") from exc
        action = msg.get("action")
        if action == "B":
            self._tx = Transaction(xid=msg.get("xid"), commit_lsn=0, commit_time_ms=0)
            return None
        if action in ("I", "U", "D"):
            if self._tx is None:
                raise ProtocolError(f"row change outside a transaction at LSN {format_lsn(data_start)}")
            self._tx.changes.append(
                RowChange(
                    table=msg["table"],
                    op=action,
                    before=_row(msg.get("identity")),
                    after=_row(msg.get("columns")) if action != "D" else None,
                )
            )
            return None
        if action == "C":
            tx, self._tx = self._tx, None
            if tx is None:
                raise ProtocolError(f"commit without begin at LSN {format_lsn(data_start)}")
            end = msg.get("nextlsn") or msg.get("lsn")
            tx.commit_lsn = parse_lsn(end) if end else data_start
            tx.commit_time_ms = commit_time_ms(msg["timestamp"]) if msg.get("timestamp") else 0
            return tx
        if action == "M":
            return Heartbeat(lsn=parse_lsn(msg["lsn"]) if msg.get("lsn") else data_start, prefix=msg.get("prefix", ""),
                             content=str(msg.get("content") or ""))
        if action == "T":
            # TRUNCATE carries no rows, so no document events can be derived from it; the capture reports it.
            return Truncated(table=str(msg.get("table")), lsn=data_start)
        raise ProtocolError(f"unknown wal2json action {action!r} at LSN {format_lsn(data_start)}")
