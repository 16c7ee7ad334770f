"""One sales order's deliveries (Bytewax keyed state, keyed by the order's bill number): delivered quantities are
the **sum over all live outbounds**, written as totals, so replays, duplicates and out-of-order arrival never give
wrong quantities.

State ``{outbound FID: newest part}`` plus tombstones; a part older than what the state holds for that outbound is
ignored.  The CRM order (``flows/delivery_lookups.py``) is looked up when there is something to write; until it is
there the changes wait in the state (retried with capped backoff) and after the reference wait they are
dead-lettered naming the order number.  Writes are coalesced (``coalesce``: a burst, or a replay of a backlog,
becomes one write per order).  An order with no live outbound and no tombstone left drops its state.

Out: one ``Deliveries`` upsert per changed outbound (a dead one is marked ``Deleted_In_Kingdee``) and one update of
the order's delivered totals (ledger key ``order:<bill no>``, versioned by the highest LSN the totals include),
which wait in the delivery step while the flow catches up with its topic (``hold_until_caught_up``): outbounds
replayed out of order never show partial totals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulLogic

from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from connectors.common.token_cache import TokenUnavailable
from core.errors import TransientError
from core.ledger import Position
from core.mapping import fingerprint
from flows.delivery_lookups import CrmOrder, Lookups
from flows.delivery_rules import EXTERNAL_KEY, FLOW, ORDER_KEY_PREFIX, OrderNotInCrm
from flows.outbound_parts import OutboundPart
from flows.waiting import ReferenceWait

log = logging.getLogger(__name__)

#: Changes of one order are written at most this often by default (``Settings.flows.deliveries_coalesce_ms``).
COALESCE = timedelta(milliseconds=300)
#: How long a dead outbound's tombstone is kept (against a late re-sent older image).
RETIRE_AFTER = timedelta(minutes=15)
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 5.0

Clock = Callable[[], float]


@dataclass
class OrderState:
    """Recoverable state of one order (pickled by Bytewax at every epoch)."""

    order_no: str = ""
    live: dict[str, OutboundPart] = field(default_factory=dict)  # outbound FID → newest live part
    gone: dict[str, tuple[int, float]] = field(default_factory=dict)  # FID → (version, since: epoch s)
    version: int = 0
    #: Changes not written yet: outbound FID → newest part; and whether the totals changed.
    dirty: dict[str, OutboundPart] = field(default_factory=dict)
    totals_dirty: bool = False
    crm: CrmOrder | None = None
    wait: ReferenceWait = field(default_factory=ReferenceWait)
    next_at: float | None = None

    def totals(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for part in self.live.values():
            for entry, qty in part.delivered().items():
                out[entry] = out.get(entry, Decimal(0)) + qty
        return out


Out = tuple[str, Any]  # ("delivery", SyncCommand) | ("order", SyncCommand) | ("dead", DeadLetter)


def apply_part(state: OrderState, part: OutboundPart, now: float) -> bool:
    """Apply one part in place; False when it is stale (an older or the same version of that outbound)."""
    current = state.live.get(part.fid)
    tomb = state.gone.get(part.fid)
    if current is not None and part.version <= current.version:
        return False
    if tomb is not None and part.version <= tomb[0]:
        return False
    state.version = max(state.version, part.version)
    if part.live:
        if current is None or current.delivered() != part.delivered():
            state.totals_dirty = True
        state.live[part.fid] = part
        state.gone.pop(part.fid, None)
        state.dirty[part.fid] = part
    else:
        state.gone[part.fid] = (part.version, now)
        if current is not None:  # it was delivering: its record is marked deleted, its quantities roll back
            del state.live[part.fid]
            state.dirty[part.fid] = part
            state.totals_dirty = True
        elif part.fid in state.dirty:  # its deletion mark is not written yet (un-audit then delete within the
            state.dirty[part.fid] = part  # coalescing window): still written, at the newer version
    return True


class OrderDeliveries(StatefulLogic[OutboundPart, Out, OrderState]):
    """Bytewax logic of one order's deliveries (see the module doc)."""

    def __init__(self, state: OrderState | None, lookups: Lookups, wait_s: float,
                 clock: Clock = time.time, coalesce: timedelta = COALESCE,
                 retire_after: timedelta = RETIRE_AFTER) -> None:
        self.state = state or OrderState()
        self.lookups = lookups
        self.wait_s = wait_s
        self.clock = clock
        self.coalesce = coalesce.total_seconds()
        self.retire_after = retire_after.total_seconds()

    def on_item(self, value: OutboundPart) -> tuple[Iterable[Out], bool]:
        now = self.clock()
        s = self.state
        s.order_no = value.order_no
        if apply_part(s, value, now) and (s.dirty or s.totals_dirty) and s.next_at is None:
            s.next_at = now + self.coalesce
        if s.next_at is not None and now >= s.next_at:
            return self._flush(now), self._discard()
        return [], self._discard()

    def on_notify(self) -> tuple[Iterable[Out], bool]:
        now = self.clock()
        self._prune(now)
        s = self.state
        if s.next_at is not None and now >= s.next_at:
            return self._flush(now), self._discard()
        return [], self._discard()

    def on_eof(self) -> tuple[Iterable[Out], bool]:
        # The input ended (tests; a bounded replay): write what is pending if the order is there.
        s = self.state
        if s.next_at is None:
            return [], False
        out = self._flush(self.clock(), final=True)
        return out, False

    def notify_at(self) -> datetime | None:
        times = [self.state.next_at] if self.state.next_at is not None else []
        if self.state.gone:
            times.append(min(at for _, at in self.state.gone.values()) + self.retire_after)
        return datetime.fromtimestamp(min(times), UTC) if times else None

    def snapshot(self) -> OrderState:
        return replace(self.state, live=dict(self.state.live), gone=dict(self.state.gone),
                       dirty=dict(self.state.dirty), wait=replace(self.state.wait))

    def _discard(self) -> bool:
        s = self.state
        return not s.live and not s.gone and not s.dirty and s.next_at is None

    def _prune(self, now: float) -> None:
        for fid in [f for f, (_, at) in self.state.gone.items() if now - at >= self.retire_after]:
            del self.state.gone[fid]

    def _needed(self) -> set[str]:
        return {line.so_entry_id for part in self.state.live.values() for line in part.lines}

    def _flush(self, now: float, final: bool = False) -> list[Out]:
        s = self.state
        needed = self._needed()
        try:
            if s.crm is None or not needed <= s.crm.lines.keys():
                s.crm = self.lookups.order(self.state.order_no)
            missing = needed - (s.crm.lines.keys() if s.crm else set())
            if s.crm is None or missing:
                return [] if final else self._wait(now, missing)
            crm = s.crm
            out: list[Out] = [("delivery", self._delivery_command(p, crm)) for p in s.dirty.values()]
        except TokenUnavailable as exc:  # nobody's failure: look again when a token can be had
            s.wait.pause(exc.retry_after or MAX_RETRY_S)
            s.next_at = now + (exc.retry_after or MAX_RETRY_S)
            return []
        except TransientError as exc:  # the CRM did not answer: look again, within the same deadline
            return [] if final else self._wait(now, needed, str(exc))
        if s.totals_dirty:
            out.append(("order", self._totals_command(crm)))
        s.dirty, s.totals_dirty = {}, False
        s.wait.clear()
        s.next_at = None
        return out

    def _wait(self, now: float, missing: set[str], error: str | None = None) -> list[Out]:
        s = self.state
        if error is not None:
            what = f"the CRM could not be read for sales order {self.state.order_no} ({error})"
        elif s.crm is None:
            what = f"sales order {self.state.order_no} is not in the CRM"
        else:
            what = f"sales order {self.state.order_no} has no CRM line for entries {sorted(missing)}"
        look_again = s.wait.miss(now, self.wait_s, FIRST_RETRY_S, MAX_RETRY_S)
        if look_again is not None:
            if s.wait.attempts == 1:
                log.info("deliveries of order %s wait: %s", self.state.order_no, what)
            s.next_at = look_again
            return []
        waited = s.wait.waited(now)
        # Waited long enough: the changes not written go to the dead-letter topic, named; the state forgets them
        # (a tombstone keeps a duplicate of them out).
        letters: list[Out] = []
        for part in [p for p in s.dirty.values() if p.live]:
            exc = OrderNotInCrm(f"outbound {part.bill_no or part.fid}: {what} after {waited:.0f} s")
            letters.append(("dead", DeadLetter.of(
                FLOW, "resolve", exc, record=_letter_record(part), key=part.fid, topic=part.position.topic,
                partition=part.position.partition, offset=part.position.offset, attempts=s.wait.attempts)))
            s.live.pop(part.fid, None)
            s.gone[part.fid] = (part.version, now)
        s.dirty, s.totals_dirty = {}, False
        s.wait.clear()
        s.next_at = None
        return letters

    def _delivery_command(self, part: OutboundPart, crm: CrmOrder) -> SyncCommand:
        if not part.live:
            record: dict[str, Any] = {EXTERNAL_KEY: part.record_key, "Deleted_In_Kingdee": True}
        else:
            products = self.lookups.targets("materials", sorted({ln.material_id for ln in part.lines
                                                                 if ln.material_id}))
            accounts = self.lookups.targets("customers", [part.customer_id] if part.customer_id else [])
            name = part.bill_no or part.fid
            if not part.primary:
                name = f"{name} ({part.order_no})"
            record = {
                EXTERNAL_KEY: part.record_key, "Name": name, "Outbound_No": part.bill_no,
                "Delivery_Date": part.date, "Sales_Order": {"id": crm.id},
                "Delivery_Lines": [
                    {"Order_Line_ID": crm.lines[ln.so_entry_id], "Delivered_Qty": float(ln.qty),
                     "Kingdee_Entry_ID": ln.entry_id,
                     **({"Product": {"id": products[ln.material_id]}} if ln.material_id in products else {})}
                    for ln in part.lines
                ],
                "Deleted_In_Kingdee": False,
            }
            if part.customer_id in accounts:
                record["Account"] = {"id": accounts[part.customer_id or ""]}
        return SyncCommand(flow=FLOW, key=part.record_key, number=part.bill_no, version=part.version, record=record,
                           fingerprint=fingerprint(record), captured_at_ms=part.commit_ms, position=part.position,
                           deleted=not part.live)

    def _totals_command(self, crm: CrmOrder) -> SyncCommand:
        s = self.state
        newest = max(list(s.dirty.values()) + list(s.live.values()), key=lambda p: p.version, default=None)
        dates = [p.date for p in s.live.values() if p.date]
        record = {"id": crm.id, "delivered": {k: str(v) for k, v in sorted(s.totals().items())},
                  "last_date": max(dates) if dates else None}
        position = newest.position if newest else Position("", 0, 0)
        return SyncCommand(flow=FLOW, key=ORDER_KEY_PREFIX + s.order_no, number=s.order_no, version=s.version,
                           record=record, fingerprint=fingerprint(record),
                           captured_at_ms=newest.commit_ms if newest else 0, position=position)


def _letter_record(part: OutboundPart) -> dict[str, Any]:
    return {"outbound_id": part.fid, "outbound_no": part.bill_no, "order_no": part.order_no, "live": part.live,
            "lines": [{"entry_id": ln.entry_id, "order_entry_id": ln.so_entry_id, "qty": str(ln.qty)}
                      for ln in part.lines]}


def order_deliveries(parts: Stream[tuple[str, OutboundPart]], lookups: Lookups, wait_s: float,
                     clock: Clock = time.time, coalesce: timedelta = COALESCE,
                     retire_after: timedelta = RETIRE_AFTER) -> Stream[tuple[str, Out]]:
    """The per-order step (keyed by the order's bill number)."""
    return op.stateful("deliveries_per_order", parts,
                       lambda state: OrderDeliveries(state, lookups, wait_s, clock, coalesce, retire_after))
