"""Inventory: Kingdee 即时库存 (T_STK_INVENTORY rows) summed per material → the CRM product's ``Qty_in_Stock``.

    kingdee.inventory ─► decode ─► row changes keyed by material ─► sum (stateful) ─► coalesce (stateful) ─► update
                           └────────────┴──────────────────────────────────────────────────┴─► cdchub.dlq.inventory

* **Row changes**: each inventory event (one row = one document, keyed by its ``FID``) becomes "row FID now holds q"
  for its material and, when it was deleted or moved to another material, "row FID left" for the old material.
* **Sum** (:class:`StockSum`, state per material: ``{FID: (base qty, version)}``): emits the material's total after
  each change that changes it, versioned by the highest commit LSN it includes (rows of one material live in
  different partitions, so their changes interleave; the highest LSN seen is what "newer" means for the total).
  A row's change older than what the state holds for that row is ignored (a capture re-send after a crash); a
  removed row leaves a tombstone (its version) for ``RETIRE_AFTER`` so a late re-sent older image cannot bring it
  back; a material with no rows and no tombstones left drops its state.
* **Coalesce** (:class:`StockWriteThrottle`): at most one write per material per ``COALESCE`` (first change written
  at once, the rest of a burst as trailing writes of the newest total on a shared grid of ticks, so the materials
  of a burst are written together, up to 100 per call).  The pending total lives in recoverable
  state, so a crash loses nothing.  The CRM id comes from the id map (the materials flow's ledger).
* **Stock of a material the CRM does not show** (a rule of the materials flow: only audited materials become CRM
  products; or one not synced yet) **waits for it**: its newest total is held in state and looked up again (1 s,
  2 s, 4 s … up to 10 s, and every ``PARKED_RETRY_S`` after ``UNSYNCED_GIVE_UP``), and written as soon as the
  product exists — e.g. when the clerk audits the material.  It is not an error, so no dead letter.  Only a material
  the materials flow dead-lettered makes its stock a dead letter, naming the material and that flow's error.
* **Write** (:class:`~connectors.zoho.update_sink.ZohoUpdateSink`): ``PUT Products`` by CRM id, idempotent through
  the ledger (key: material id, version: the total's LSN): replays and duplicates write nothing.  While the flow
  catches up with its topic (a restart, a replay from scratch) totals wait in the delivery step and only each
  material's last is written (``hold_until_caught_up``): rows replayed out of order never show a partial total.

Design notes and measured figures: ``docs/erp-documents.md`` (Inventory).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators import StatefulLogic

from connectors.common.dead_letters import DeadLetter
from connectors.common.delivery import deliver
from connectors.common.sync import SyncCommand
from connectors.settings import Settings, get_settings
from connectors.zoho.update_sink import ZohoUpdateSink
from core.id_map import LedgerLookup
from core.ledger import Position
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.live_sum import LiveSum
from flows.waiting import ReferenceWait

log = logging.getLogger(__name__)

FLOW = "inventory"
MATERIALS_FLOW = "materials"
MODULE = "Products"
QTY_FIELD = "Qty_in_Stock"
#: Writes of one material's stock are at least this far apart, by default (``CDCHUB_FLOWS__INVENTORY_COALESCE_MS``).
COALESCE = timedelta(milliseconds=1000)
#: How long a removed row's tombstone (and so an emptied material's state) is kept.
RETIRE_AFTER = timedelta(minutes=15)
#: How long a total is looked up often (up to every 10 s) while its material is not in the CRM; afterwards it is
#: parked and looked up every ``PARKED_RETRY_S`` (``CDCHUB_FLOWS__INVENTORY_UNSYNCED_GIVE_UP_MS``).
UNSYNCED_GIVE_UP = timedelta(seconds=60)
UNSYNCED_FIRST_RETRY_S = 1.0
UNSYNCED_MAX_RETRY_S = 10.0
PARKED_RETRY_S = 30.0

Clock = Callable[[], float]


class MaterialRefused(Exception):
    """The materials flow dead-lettered the material, so its stock has no CRM product to go to."""


# --- row changes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowChange:
    """What one inventory row now contributes to one material: ``qty``, or nothing (``None``: deleted or moved)."""

    material_id: str
    fid: str
    qty: Decimal | None
    version: int
    commit_ms: int
    position: Position
    material_number: str | None = None


def row_changes(event: DocumentEvent) -> list[tuple[str, RowChange | DeadLetter]]:
    """The (material id, change) pairs of one inventory event; a row without a material is a dead letter."""
    env = event.envelope
    before, after = env.get("before"), env.get("after")
    out: list[tuple[str, RowChange | DeadLetter]] = []

    def change(doc: dict[str, Any], material_id: str, qty: Decimal | None) -> RowChange:
        return RowChange(material_id=material_id, fid=str(doc.get("FID") or event.key), qty=qty, version=event.version,
                         commit_ms=event.commit_ms, position=event.position,
                         material_number=doc.get("material_number"))

    old = _material(before)
    new = _material(after)
    if before is not None and old is not None and (after is None or old != new):
        out.append((old, change(before, old, None)))
    if after is not None:
        if new is None:
            letter = DeadLetter(flow=FLOW, stage="map", error_class="MissingMaterial",
                                error=f"inventory row {event.key} names no material (FMATERIALID)",
                                record=after, key=event.key, topic=event.position.topic,
                                partition=event.position.partition, offset=event.position.offset)
            out.append(("", letter))
        else:
            out.append((new, change(after, new, Decimal(after.get("FBASEQTY") or 0))))
    return out


def _material(doc: dict[str, Any] | None) -> str | None:
    if not doc or not doc.get("FMATERIALID"):
        return None
    return str(doc["FMATERIALID"])


# --- the sum per material ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockTotal:
    """A material's total base quantity over all its inventory rows, as of the highest LSN it includes."""

    material_id: str
    material_number: str | None
    qty: Decimal
    version: int
    commit_ms: int
    position: Position
    rows: int


@dataclass
class SumState:
    """Recoverable state of one material (pickled by Bytewax at every epoch): the sum over its live inventory rows
    (``flows/live_sum.py``, documents = row FIDs) and its number."""

    live: LiveSum = field(default_factory=LiveSum)
    number: str | None = None


def apply_change(state: SumState, change: RowChange, now: float) -> StockTotal | None:
    """Apply one row change in place; the new total, or None when the change is stale or changes nothing."""
    write = state.live.apply(change.fid, change.qty, change.version, now)
    if write is None:
        return None  # an older image of a row held newer, or removed since
    if change.material_number:
        state.number = change.material_number
    if not write:
        return None  # a duplicate, or a change that leaves the total as it was: nothing to write
    return StockTotal(change.material_id, state.number, state.live.total(), state.live.version, change.commit_ms,
                      change.position, len(state.live.amounts))


class StockSum(StatefulLogic[RowChange, StockTotal, SumState]):
    """Bytewax logic of the per-material sum (see the module doc)."""

    def __init__(self, state: SumState | None, clock: Clock = time.time,
                 retire_after: timedelta = RETIRE_AFTER) -> None:
        self.state = state or SumState()
        self.clock = clock
        self.retire_after = retire_after.total_seconds()

    def on_item(self, value: RowChange) -> tuple[Iterable[StockTotal], bool]:
        now = self.clock()
        self.state.live.prune(now, self.retire_after)
        total = apply_change(self.state, value, now)
        return ([total] if total is not None else []), self.state.live.empty()

    def on_notify(self) -> tuple[Iterable[StockTotal], bool]:
        self.state.live.prune(self.clock(), self.retire_after)
        return [], self.state.live.empty()

    def on_eof(self) -> tuple[Iterable[StockTotal], bool]:
        return [], False

    def notify_at(self) -> datetime | None:
        expiry = self.state.live.next_expiry(self.retire_after)
        return None if expiry is None else datetime.fromtimestamp(expiry, UTC)

    def snapshot(self) -> SumState:
        return SumState(self.state.live.copy(), self.state.number)


# --- coalescing and the CRM id ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockWrite:
    """The newest total of a material, to be written to its CRM product."""

    total: StockTotal
    target_id: str


@dataclass
class ThrottleState:
    pending: StockTotal | None = None
    #: No write of this material before this time (epoch s).
    next_at: float = 0.0
    #: The pending total's wait for its material to reach the CRM.
    wait: ReferenceWait = field(default_factory=ReferenceWait)
    #: Waiting past the give-up time for a material the CRM does not show (looked up every PARKED_RETRY_S).
    parked: bool = False


Resolve = Callable[[str], str | None]


def never_refused(material_id: str) -> str | None:
    return None


class StockWriteThrottle(StatefulLogic[StockTotal, StockWrite | DeadLetter, ThrottleState]):
    """Bytewax logic: keep the newest total per material, write it at most every ``interval`` (see module doc)."""

    def __init__(self, state: ThrottleState | None, resolve: Resolve, clock: Clock = time.time,
                 interval: timedelta = COALESCE, give_up: timedelta = UNSYNCED_GIVE_UP,
                 refused: Resolve = never_refused) -> None:
        self.state = state or ThrottleState()
        self.resolve = resolve
        self.refused = refused
        self.clock = clock
        self.interval = interval.total_seconds()
        self.give_up = give_up.total_seconds()

    def on_item(self, value: StockTotal) -> tuple[Iterable[StockWrite | DeadLetter], bool]:
        s = self.state
        if s.pending is None or value.version >= s.pending.version:
            s.pending = value
        now = self.clock()
        return (self._flush(now) if now >= s.next_at else []), False

    def on_notify(self) -> tuple[Iterable[StockWrite | DeadLetter], bool]:
        now = self.clock()
        if now < self.state.next_at:
            # Bytewax checks the time asked for before the item that moved it (a new key's first write): not yet.
            return [], False
        if self.state.pending is None:
            return [], True  # quiet for a whole interval: nothing to space any more
        return self._flush(now), False

    def on_eof(self) -> tuple[Iterable[StockWrite | DeadLetter], bool]:
        # The input ended (tests; a bounded replay): write what is pending now rather than never.
        if self.state.pending is None:
            return [], False
        total = self.state.pending
        target = self.resolve(total.material_id)
        if target is None:
            return [], False
        self.state.pending = None
        return [StockWrite(total, target)], False

    def notify_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.state.next_at, UTC)

    def snapshot(self) -> ThrottleState:
        return replace(self.state, wait=replace(self.state.wait))

    def _flush(self, now: float) -> list[StockWrite | DeadLetter]:
        s = self.state
        total = s.pending
        assert total is not None
        target = self.resolve(total.material_id)
        if target is None:
            look_again = s.wait.miss(now, self.give_up, UNSYNCED_FIRST_RETRY_S, UNSYNCED_MAX_RETRY_S)
            error = self.refused(total.material_id)
            if error is None:
                if look_again is not None:
                    s.next_at = look_again
                else:
                    if not s.parked:
                        s.parked = True
                        log.info("stock of material %s (id %s) waits for its CRM product (not audited, or not "
                                 "synced yet); it is written when the product exists",
                                 total.material_number or "?", total.material_id)
                    s.next_at = now + PARKED_RETRY_S
                return []
            exc = MaterialRefused(
                f"material {total.material_number or '?'} (id {total.material_id}) was dead-lettered by the "
                f"{MATERIALS_FLOW} flow ({error}); its stock {total.qty} has no CRM product to go to")
            letter = DeadLetter.of(FLOW, "resolve", exc, record=_letter_record(total), key=total.material_id,
                                   topic=total.position.topic, partition=total.position.partition,
                                   offset=total.position.offset, attempts=s.wait.attempts)
            self._written(now)
            return [letter]
        self._written(now)
        return [StockWrite(total, target)]

    def _written(self, now: float) -> None:
        s = self.state
        s.pending, s.parked = None, False
        s.wait.clear()
        s.next_at = self._next_tick(now)

    def _next_tick(self, now: float) -> float:
        """The first tick of a clock-wide grid of ``interval`` at least 0.9 interval from now: writes of one
        material are (about) an interval or more apart, and the trailing writes of all materials fall on the same
        ticks, so they leave together (one call for up to 100 products).  The 0.1 slack keeps a write made a few
        milliseconds after its tick on the next tick, not the one after."""
        if self.interval <= 0:
            return now
        return math.ceil(now / self.interval + 0.9) * self.interval


def _letter_record(total: StockTotal) -> dict[str, Any]:
    return {"material_id": total.material_id, "material_number": total.material_number, QTY_FIELD: str(total.qty),
            "version": total.version, "rows": total.rows}


def to_command(write: StockWrite) -> SyncCommand:
    total = write.total
    record = {"id": write.target_id, QTY_FIELD: float(total.qty)}
    blob = json.dumps(record, sort_keys=True, default=str).encode()
    return SyncCommand(flow=FLOW, key=total.material_id, number=total.material_number, version=total.version,
                       record=record, fingerprint=hashlib.sha256(blob).hexdigest()[:32],
                       captured_at_ms=total.commit_ms, position=total.position)


# --- the dataflow -------------------------------------------------------------------------------------------------


def stock_totals(changes: Stream[tuple[str, RowChange]], clock: Clock = time.time,
                 retire_after: timedelta = RETIRE_AFTER) -> Stream[tuple[str, StockTotal]]:
    """The per-material sum step (keyed by material id)."""
    return op.stateful("sum_per_material", changes, lambda state: StockSum(state, clock, retire_after))


def throttled_writes(totals: Stream[tuple[str, StockTotal]], resolve: Resolve, clock: Clock = time.time,
                     interval: timedelta = COALESCE, give_up: timedelta = UNSYNCED_GIVE_UP,
                     refused: Resolve = never_refused) -> Stream[tuple[str, StockWrite | DeadLetter]]:
    """The coalescing step (keyed by material id)."""
    return op.stateful("coalesce_per_material", totals,
                       lambda state: StockWriteThrottle(state, resolve, clock, interval, give_up, refused))


def build_flow(settings: Settings | None = None, *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, "kingdee.inventory")
    pairs = op.flat_map("row_changes", events, row_changes)
    split = op.branch("has_material", pairs, lambda kv: isinstance(kv[1], RowChange))
    changes: Stream[tuple[str, RowChange]] = split.trues  # type: ignore[assignment]
    no_material = op.map("no_material", split.falses, lambda kv: kv[1])
    totals = stock_totals(changes)
    materials = LedgerLookup(settings.ledger_database_url(), MATERIALS_FLOW)
    out = throttled_writes(totals, materials, interval=timedelta(milliseconds=settings.flows.inventory_coalesce_ms),
                           give_up=timedelta(milliseconds=settings.flows.inventory_unsynced_give_up_ms),
                           refused=materials.failure)
    values = op.map("drop_key", out, lambda kv: kv[1])
    writes = op.branch("resolved", values, lambda v: isinstance(v, StockWrite))
    commands = op.map("to_command", writes.trues, to_command)  # type: ignore[arg-type]
    deliver("zoho_products_stock", commands, ZohoUpdateSink(settings, FLOW, MODULE), flow=FLOW,
            hold_until_caught_up=True,  # a sum over rows of several partitions, throttled before (ticks < 2 intervals)
            upstream_interval_s=settings.flows.inventory_coalesce_ms / 1000)
    write_dead_letters(FLOW, settings, op.merge("all_dead_letters", read_dead, no_material,
                                                writes.falses))
    return flow
