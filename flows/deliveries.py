"""Deliveries: Kingdee 销售出库单 (SAL_OUTSTOCK, audited) → ZOHO CRM ``Deliveries`` + delivered quantities on the order.

    kingdee.outbound ─► decode ─► parts per source order ─► per order (keyed state) ─┬─► Deliveries upsert
          │                          │                     sum over live outbounds,   │    (Kingdee_Outbound_ID)
          │                          │                     wait for the CRM order     └─► Sales_Orders update
          └──────────────────────────┴──────────────────────────────┴─► cdchub.dlq.deliveries  (Delivered_Qty per
                                                                                               line, Delivery_Status)

* **Parts** (:func:`outbound_parts`): each outbound event becomes, for every sales order its lines deliver
  (``FSOORDERNO``), "outbound FID now delivers {order entry id (``FSOENTRYID``): qty (``FREALQTY``)}" — or "delivers
  nothing" when it is deleted, voided (``FCANCELSTATUS`` B), not audited (any ``FDOCUMENTSTATUS`` but C) or no
  longer points at that order.  The status letters are declared as data (:data:`LIVE_WHEN`); an unknown letter is
  dead-lettered naming it.
* **Per order** (:class:`OrderDeliveries`, keyed by the order's bill number; state
  ``{outbound FID: newest part}`` plus tombstones): delivered quantities are the **sum over all live outbounds**,
  written as totals, so replays, duplicates and out-of-order arrival never give wrong quantities; a part older than
  what the state holds for that outbound is ignored.  The CRM order (its id from the ``sales_orders`` ledger by bill
  number, its line ids from the CRM order by ``Kingdee_Entry_ID``) is looked up when there is something to write;
  until it is there the changes wait in the state (retried with capped backoff) and after
  ``CDCHUB_REFERENCE_WAIT_S`` they are dead-lettered naming the order number.  Writes are coalesced for
  ``CDCHUB_DELIVERIES_COALESCE_MS`` (a burst, or a replay of a backlog, becomes one write per order).  An order
  with no live outbound and no tombstone left drops its state.
* **Writes**: one ``Deliveries`` record per outbound (upsert on ``Kingdee_Outbound_ID``, versioned by the outbound's
  LSN; a dead outbound is marked ``Deleted_In_Kingdee``), and per order one update of ``Ordered_Items[].Delivered_Qty``
  / ``Delivery_Status`` / ``Last_Delivery_Date`` (ledger key ``order:<bill no>``, versioned by the highest LSN the
  totals include).  Both go through the ledger: a replay or a duplicate writes nothing.

Design notes: ``docs/erp-documents.md`` (Deliveries).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators import StatefulLogic
from bytewax.outputs import DynamicSink
from sqlalchemy.engine import Engine

from cdchub.id_map import IdMap
from cdchub.ledger import LedgerEntry, Position, SyncLedger, open_engine
from cdchub.settings import Settings, get_settings
from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.delivery import deliver
from connectors.common.errors import PermanentError, TransientError
from connectors.common.kafka import producer
from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.token_cache import TokenUnavailable
from connectors.common.two_way import Planned
from connectors.zoho.client import ZohoClient
from connectors.zoho.sink import ZohoUpsertSink
from connectors.zoho.update_sink import ZohoUpdatePartition
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.mapping import MAPPINGS_DIR
from flows.waiting import ReferenceWait

log = logging.getLogger(__name__)

FLOW = "deliveries"
ORDERS_FLOW = "sales_orders"
DELIVERIES_MODULE = "Deliveries"
ORDERS_MODULE = "Sales_Orders"
EXTERNAL_KEY = "Kingdee_Outbound_ID"
LINES_FIELD = "Ordered_Items"
LINE_KEY = "Kingdee_Entry_ID"
ORDER_KEY_PREFIX = "order:"

_TABLES = tomllib.loads((MAPPINGS_DIR / "deliveries.toml").read_text(encoding="utf-8"))
#: Which outbounds count as delivered, per status column and letter (``flows/mappings/deliveries.toml``).  An
#: outbound is live when every column says so; a letter not listed is dead-lettered naming it.
LIVE_WHEN: dict[str, dict[str, bool]] = {col: dict(letters) for col, letters in _TABLES["live_when"].items()}
#: The order's delivery status picklist values (same file).
NOT_DELIVERED, PARTLY_DELIVERED, DELIVERED = (
    _TABLES["delivery_status"]["none"], _TABLES["delivery_status"]["part"], _TABLES["delivery_status"]["all"])

#: Changes of one order are written at most this often (environment ``CDCHUB_DELIVERIES_COALESCE_MS``).
COALESCE = timedelta(milliseconds=300)
#: How long a dead outbound's tombstone is kept (against a late re-sent older image).
RETIRE_AFTER = timedelta(minutes=15)
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 5.0

Clock = Callable[[], float]


class UnknownStatus(Exception):
    pass


class OrderNotInCrm(Exception):
    pass


# --- parts ---------------------------------------------------------------------------------------------------


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


def is_live(doc: dict[str, Any]) -> bool:
    live = True
    for column, table in LIVE_WHEN.items():
        letter = str(doc.get(column) if doc.get(column) is not None else "").strip()
        if letter not in table:
            raise UnknownStatus(f"outbound {doc.get('FBILLNO') or doc.get('FID')}: unknown {column} {letter!r} "
                                f"(known: {sorted(table)})")
        live = live and table[letter]
    return live


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


# --- the CRM order ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrmOrder:
    """A sales order as the CRM has it: its id and its line ids by Kingdee entry id."""

    id: str
    lines: dict[str, str]


class Lookups(Protocol):
    def order(self, order_no: str) -> CrmOrder | None: ...

    def targets(self, flow: str, keys: list[str]) -> dict[str, str]: ...


class CrmLookups:
    """The CRM order from the ``sales_orders`` ledger (by bill number) and the CRM; opened lazily in the worker.
    One try per look: a transient failure propagates, and the order's step looks again later (it never sleeps)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._client: ZohoClient | None = None

    def _open(self) -> tuple[Engine, ZohoClient]:
        if self._engine is None or self._client is None:
            self._engine = open_engine(self.settings.ledger_database_url())
            self._client = ZohoClient(self.settings.zoho)
        return self._engine, self._client

    def order(self, order_no: str) -> CrmOrder | None:
        engine, client = self._open()
        target_id = IdMap(engine).targets_by_number(ORDERS_FLOW, [order_no]).get(order_no)
        if target_id is None:
            return None
        record = client.get(ORDERS_MODULE, str(target_id))
        if not record:
            return None
        rows = record.get(LINES_FIELD) or []
        return CrmOrder(str(target_id), {str(r[LINE_KEY]): str(r["id"]) for r in rows if r.get(LINE_KEY)})

    def targets(self, flow: str, keys: list[str]) -> dict[str, str]:
        engine, _ = self._open()
        return IdMap(engine).targets(flow, keys) if keys else {}


# --- per order ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderTotals:
    """What an order's lines have delivered, over all its live outbounds, as of the highest LSN included."""

    order_no: str
    crm_id: str
    delivered: dict[str, Decimal]
    last_date: str | None
    version: int
    commit_ms: int
    position: Position


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
                           fingerprint=_fingerprint(record), captured_at_ms=part.commit_ms, position=part.position,
                           deleted=not part.live)

    def _totals_command(self, crm: CrmOrder) -> SyncCommand:
        s = self.state
        newest = max(list(s.dirty.values()) + list(s.live.values()), key=lambda p: p.version, default=None)
        dates = [p.date for p in s.live.values() if p.date]
        record = {"id": crm.id, "delivered": {k: str(v) for k, v in sorted(s.totals().items())},
                  "last_date": max(dates) if dates else None}
        position = newest.position if newest else Position("", 0, 0)
        return SyncCommand(flow=FLOW, key=ORDER_KEY_PREFIX + s.order_no, number=s.order_no, version=s.version,
                           record=record, fingerprint=_fingerprint(record),
                           captured_at_ms=newest.commit_ms if newest else 0, position=position)


def _fingerprint(record: dict[str, Any]) -> str:
    blob = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


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


# --- the order update ---------------------------------------------------------------------------------------------


def delivery_status(rows: list[dict[str, Any]], delivered: dict[str, Decimal]) -> str:
    got = [(Decimal(str(r.get("Quantity") or 0)), delivered.get(str(r.get(LINE_KEY)), Decimal(0))) for r in rows]
    if not any(d > 0 for _, d in got):
        return NOT_DELIVERED
    return DELIVERED if all(d >= q for q, d in got) else PARTLY_DELIVERED


class OrderDeliveryPartition(ZohoUpdatePartition):
    """Writes an order's delivered totals: reads its rows (all must be sent, rows not sent are removed) and sets
    ``Delivered_Qty`` on each (0 for a line no live outbound delivers), ``Delivery_Status`` and
    ``Last_Delivery_Date``."""

    def prefetch(self, commands: list[SyncCommand]) -> None:
        self._listed = None  # the rows are a subform, which the list API does not return: each order is read

    def desired(self, cmd: SyncCommand, current: dict[str, Any] | None) -> dict[str, Any]:
        """The order's delivery fields as this command sets them, on the CRM order's own rows."""
        return self._order_write(cmd, current or {})

    def _order_write(self, cmd: SyncCommand, current: dict[str, Any]) -> dict[str, Any]:
        delivered = {k: Decimal(v) for k, v in cmd.record["delivered"].items()}
        rows = current.get(LINES_FIELD) or []
        return {
            "id": str(cmd.record["id"]),
            LINES_FIELD: [{"id": r["id"], "Delivered_Qty": float(delivered.get(str(r.get(LINE_KEY)), 0))}
                          for r in rows],
            "Delivery_Status": delivery_status(rows, delivered),
            "Last_Delivery_Date": cmd.record.get("last_date"),
        }

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        ready: list[Planned] = []
        for p in planned:
            crm_id = str(p.command.record["id"])
            try:
                current, _ = self.try_call(lambda crm_id=crm_id: self.client.get(ORDERS_MODULE, crm_id),  # type: ignore[misc]
                                           f"ZOHO get {ORDERS_MODULE} {crm_id}")
            except PermanentError as exc:
                self.dead_letter(p.command, exc, getattr(exc, "attempts", 1), stage="read")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(p.command, exc)
                continue
            if not current:
                self.dead_letter(p.command, OrderNotInCrm(f"sales order {p.command.number}: CRM record {crm_id} "
                                                          f"is gone"), 1, stage="read")
                continue
            ready.append(Planned(p.command, self._order_write(p.command, current), p.dropped))
        if ready:
            super().write(ready, entries)


class OrderDeliverySink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> OrderDeliveryPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return OrderDeliveryPartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, FLOW, "zoho"),
            producer(self.settings.kafka), FLOW, ORDERS_MODULE, self.policy,
            self.settings.kafka.topic(dlq_topic(FLOW)),
        )


# --- the dataflow -------------------------------------------------------------------------------------------------


def _env_ms(name: str, default: timedelta) -> timedelta:
    value = os.environ.get(name)
    return timedelta(milliseconds=float(value)) if value else default


def build_flow(settings: Settings | None = None, lookups: Lookups | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, "kingdee.outbound")
    pairs = op.flat_map("outbound_parts", events, outbound_parts)
    split = op.branch("mapped_ok", pairs, lambda kv: isinstance(kv[1], OutboundPart))
    parts: Stream[tuple[str, OutboundPart]] = split.trues  # type: ignore[assignment]
    bad = op.map("bad_status", split.falses, lambda kv: kv[1])
    out = order_deliveries(parts, lookups or CrmLookups(settings), settings.reference_wait_s,
                           coalesce=_env_ms("CDCHUB_DELIVERIES_COALESCE_MS", COALESCE))
    values = op.map("drop_key", out, lambda kv: kv[1])
    deliveries = op.filter_map("deliveries", values, lambda v: v[1] if v[0] == "delivery" else None)
    orders = op.filter_map("orders", values, lambda v: v[1] if v[0] == "order" else None)
    dead = op.filter_map("waited_too_long", values, lambda v: v[1] if v[0] == "dead" else None)
    deliver("zoho_deliveries", deliveries, ZohoUpsertSink(settings, FLOW, DELIVERIES_MODULE, EXTERNAL_KEY))
    deliver("zoho_order_deliveries", orders, OrderDeliverySink(settings))
    write_dead_letters(FLOW, settings, op.merge("all_dead_letters", read_dead, bad, dead))
    return flow
