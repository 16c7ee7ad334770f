"""Matching outbounds to the sales orders they deliver: each outbound event becomes, for every sales order its lines
deliver (``FSOORDERNO``), "outbound FID now delivers {order entry id (``FSOENTRYID``): qty (``FREALQTY``)}" — or
"delivers nothing" when it is deleted, voided, not audited (``flows/delivery_rules.py``) or no longer points at
that order.  Pure: unit-tested directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.common.dead_letters import DeadLetter
from core.ledger import Position
from flows.delivery_rules import FLOW, UnknownStatus, is_live
from flows.kingdee_documents import DocumentEvent


@dataclass(frozen=True)
class OutboundLine:
    entry_id: str
    so_entry_id: str
    qty: Decimal
    material_id: str | None = None


@dataclass(frozen=True)
class OutboundPart:
    """What one version of an outbound delivers of one order (nothing when ``live`` is False)."""

    order_no: str
    fid: str
    bill_no: str | None
    version: int
    live: bool
    commit_ms: int
    position: Position
    #: The outbound's first order (its CRM record is keyed by the outbound id; further orders by ``FID/order no``).
    primary: bool = True
    date: str | None = None
    customer_id: str | None = None
    lines: tuple[OutboundLine, ...] = ()

    @property
    def record_key(self) -> str:
        return self.fid if self.primary else f"{self.fid}/{self.order_no}"

    def delivered(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for line in self.lines:
            out[line.so_entry_id] = out.get(line.so_entry_id, Decimal(0)) + line.qty
        return out


def _orders_of(doc: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """The outbound's lines by source order number (lines from no order are not deliveries of one)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in (doc or {}).get("entries") or []:
        order_no = str(entry.get("FSOORDERNO") or "").strip()
        if order_no and entry.get("FSOENTRYID"):
            out.setdefault(order_no, []).append(entry)
    return out


def _date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)[:10]


def outbound_parts(event: DocumentEvent) -> list[tuple[str, OutboundPart | DeadLetter]]:
    """The (order number, part) pairs of one outbound event; an unknown status letter is a dead letter."""
    env = event.envelope
    before, after = env.get("before"), env.get("after") if env["op"] != "d" else None
    live = False
    if after is not None:
        try:
            live = is_live(after)
        except UnknownStatus as exc:
            letter = DeadLetter.of(FLOW, "map", exc, record={"FID": after.get("FID"), "FBILLNO": after.get("FBILLNO")},
                                   key=event.key, topic=event.position.topic, partition=event.position.partition,
                                   offset=event.position.offset)
            return [("", letter)]
    doc = after if after is not None else before or {}
    bill_no = doc.get("FBILLNO") or env["source"].get("number")
    now_orders = _orders_of(after)
    common = dict(fid=event.key, bill_no=str(bill_no) if bill_no else None, version=event.version,
                  commit_ms=event.commit_ms, position=event.position)
    out: list[tuple[str, OutboundPart | DeadLetter]] = []
    for order_no in _orders_of(before):
        if order_no not in now_orders:
            out.append((order_no, OutboundPart(order_no=order_no, live=False, **common)))  # type: ignore[arg-type]
    for i, (order_no, entries) in enumerate(now_orders.items()):
        lines = tuple(
            OutboundLine(entry_id=str(e.get("FENTRYID")), so_entry_id=str(e["FSOENTRYID"]),
                         qty=Decimal(e.get("FREALQTY") or 0),
                         material_id=str(e["FMATERIALID"]) if e.get("FMATERIALID") else None)
            for e in entries
        )
        out.append((order_no, OutboundPart(
            order_no=order_no, live=live, primary=i == 0, date=_date(doc.get("FDATE")),
            customer_id=str(doc["FCUSTOMERID"]) if doc.get("FCUSTOMERID") else None,
            lines=lines if live else (), **common)))  # type: ignore[arg-type]
    return out
