"""What the invoices and receipts flows share: a Kingdee bill → its own CRM record, linked to its account and
(where known) its sales order, and a per-order sum of the bill amounts shown on the CRM order.

    kingdee.<bill> ─► decode ─┬─► map ─► await references (keyed by bill) ─► BillSink (upsert, link to the order)
                              │
                              └─► bill amounts per order (keyed by bill) ─► order sum (keyed by order number)
                                      ─► ZohoUpdateSink (PUT Sales_Orders <Received|Invoiced>_Amount)

* **The bill record** reuses the sales orders' machinery (``flows/sales_orders.py``): the account (and for
  invoices the line products) are id-map lookups that wait in keyed state, bounded, then dead-letter naming the
  missing customer / material.  The order link is looked up by number in the sales_orders ledger
  (``IdMap.targets_by_number``) when the record is written; an order not in the CRM leaves the bill unlinked.
* **Bill amounts** (:class:`BillAmounts`, state per bill: the amount it last gave each order): a bill that is live
  (``[amounts] live_when``: audited, not voided) contributes its rows' amounts to the orders they name; an
  un-audited, voided or deleted bill contributes nothing.  Each change is sent to the orders it touches as
  "bill B now gives order O amount a (or nothing)", so a bill moving from one order to another, or going away,
  rolls the old order back.
* **Order sum** (:class:`OrderSum`, state per order number: ``{bill: (amount, version)}``): like the inventory
  sum (``flows/inventory.py``), the total is versioned by the highest commit LSN it includes; a bill's older image
  is ignored; a removed bill leaves a tombstone for ``RETIRE_AFTER``.  A changed total waits (in state, retried
  with backoff) until the order is in the CRM (sales_orders ledger by number), then is written once; after
  ``CDCHUB_REFERENCE_WAIT_S`` it is dead-lettered naming the order number (a newer change tries again).
* **Idempotence**: the bill upsert and the total update both go through the flow's ledger (totals keyed
  ``order:<number>``, versioned by LSN): a replay from the start, with or without recovery state, writes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.operators import StatefulLogic

from cdchub.id_map import LedgerLookup
from cdchub.ledger import Position, SyncLedger, open_engine
from cdchub.settings import Settings
from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.delivery import deliver
from connectors.common.errors import PermanentError
from connectors.common.kafka import producer
from connectors.common.sync import SyncCommand
from connectors.zoho.client import ZohoClient
from connectors.zoho.update_sink import ZohoUpdateSink
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.live_sum import LiveSum
from flows.mapping import MAPPINGS_DIR, Mapping, MappingConfigError, Ref, fingerprint, load_mapping
from flows.sales_orders import (
    AwaitReferences,
    Resolver,
    SalesOrderPartition,
    SalesOrderSink,
    Unresolved,
    to_draft,
)
from flows.waiting import ReferenceWait

log = logging.getLogger(__name__)

ORDERS_FLOW = "sales_orders"
ORDERS_MODULE = "Sales_Orders"
#: How long a removed bill's tombstone (and so an emptied order's state) is kept.
RETIRE_AFTER = timedelta(minutes=15)
#: How long a bill waits for the order it names to reach the CRM before it is written unlinked
#: (environment ``CDCHUB_ORDER_LINK_WAIT_S``).
ORDER_LINK_WAIT_S = 60.0
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 30.0

Clock = Callable[[], float]


# --- the declared parts (mapping sections flows/mapping.py does not read) ---------------------------------------


@dataclass(frozen=True)
class OrderLinkRule:
    """``[order_link]``: the rows (``from``) of a bill naming a sales order by number (``number``), optionally
    only those whose source type (``type``) is one of ``types``; the CRM lookup field is ``target``.  When none of
    those rows names an order, the rows of ``[order_link.otherwise]`` do (a bill keyed by hand, not pushed down)."""

    target: str
    rows: str
    number: str
    type_column: str | None = None
    types: tuple[str, ...] = ()
    otherwise: OrderLinkRule | None = None

    def numbers(self, doc: dict[str, Any]) -> list[str]:
        """The order numbers the bill's rows name, in row order, without repeats."""
        return list(dict.fromkeys(n for n, _ in self.rows_of(doc)))

    def rows_of(self, doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for row in doc.get(self.rows) or []:
            number = str(row.get(self.number) or "").strip()
            if not number:
                continue
            if self.type_column and self.types and str(row.get(self.type_column) or "").strip() not in self.types:
                continue
            out.append((number, row))
        if not out and self.otherwise is not None:
            return self.otherwise.rows_of(doc)
        return out


@dataclass(frozen=True)
class AmountRule:
    """``[amounts]``: the CRM order field (``target``) that shows the sum of ``amount`` over the rows of live bills
    (``live_when``: column → allowed codes)."""

    target: str
    amount: str
    live_when: dict[str, tuple[str, ...]]

    def live(self, doc: dict[str, Any] | None) -> bool:
        return doc is not None and all(str(doc.get(c) or "").strip() in ok for c, ok in self.live_when.items())


@dataclass(frozen=True)
class DocumentKind:
    """``[documents.<document>]``: one Kingdee document a mapping serves (invoices: special and ordinary)."""

    document: str
    prefix: str | None = None
    values: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class BillSpec:
    mapping: Mapping
    link: OrderLinkRule
    amounts: AmountRule
    kinds: tuple[DocumentKind, ...]
    #: ``[totals]``: record field → entry column summed into it.
    totals: tuple[tuple[str, str], ...] = ()


def _link_rule(path: Path, link: dict[str, Any], target: str, where: str = "[order_link]") -> OrderLinkRule:
    unknown = set(link) - {"target", "from", "number", "type", "types", "otherwise"}
    if unknown or not all(link.get(k) for k in ("from", "number")):
        raise MappingConfigError(f"{path}: {where} needs `from` and `number`"
                                 + (f"; unknown keys {sorted(unknown)}" if unknown else ""))
    otherwise = link.get("otherwise")
    if otherwise is not None and not isinstance(otherwise, dict):
        raise MappingConfigError(f"{path}: {where}.otherwise must be a table")
    return OrderLinkRule(target, link["from"], link["number"], link.get("type"),
                         tuple(str(t) for t in link.get("types") or ()),
                         _link_rule(path, otherwise, target, f"{where}.otherwise") if otherwise else None)


def load_spec(name: str, directory: Path = MAPPINGS_DIR) -> BillSpec:
    mapping = load_mapping(name, directory)
    path = directory / f"{name}.toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    link, amounts = raw.get("order_link"), raw.get("amounts")
    if not isinstance(link, dict) or not all(link.get(k) for k in ("target", "from", "number")):
        raise MappingConfigError(f"{path}: [order_link] needs `target`, `from` and `number`")
    if not isinstance(amounts, dict) or not amounts.get("target") or not amounts.get("amount"):
        raise MappingConfigError(f"{path}: [amounts] needs `target` and `amount`")
    kinds: list[DocumentKind] = []
    for document, spec in (raw.get("documents") or {}).items():
        if not isinstance(spec, dict) or not spec.get("prefix"):
            raise MappingConfigError(f"{path}: [documents.{document}] needs a `prefix`")
        unknown = set(spec) - {"prefix", "values"}
        if unknown:
            raise MappingConfigError(f"{path}: [documents.{document}] has unknown keys {sorted(unknown)}")
        values = tuple((spec.get("values") or {}).items())
        kinds.append(DocumentKind(document, spec["prefix"], values))
    if not kinds:
        if mapping.source_topic is None:
            raise MappingConfigError(f"{path}: needs [source] document or [documents.<document>] sections")
        kinds.append(DocumentKind(mapping.source_topic.removeprefix("kingdee.")))
    totals = tuple((f, str((spec or {}).get("sum"))) for f, spec in (raw.get("totals") or {}).items())
    if any(col == "None" for _, col in totals):
        raise MappingConfigError(f"{path}: [totals.<field>] needs `sum` (the entry column)")
    return BillSpec(
        mapping=mapping,
        link=_link_rule(path, link, link["target"]),
        amounts=AmountRule(amounts["target"], amounts["amount"],
                           {c: tuple(str(x) for x in v) for c, v in (amounts.get("live_when") or {}).items()}),
        kinds=tuple(kinds),
        totals=totals,
    )


# --- the bill record ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderLink:
    """The order numbers a bill names, in its record until the sink's resolver turns it into a lookup."""

    numbers: tuple[str, ...]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def bill_key(kind: DocumentKind, key: str) -> str:
    return f"{kind.prefix}-{key}" if kind.prefix else key


def to_bill_draft(flow_name: str, spec: BillSpec, kind: DocumentKind,
                  event: DocumentEvent) -> SyncCommand | DeadLetter | None:
    """The bill's CRM write (references unresolved), a dead letter naming what is wrong, or None."""
    keyed = dataclasses.replace(event, key=bill_key(kind, event.key))
    draft = to_draft(flow_name, spec.mapping, keyed)
    if not isinstance(draft, SyncCommand) or draft.deleted:
        return draft
    doc = event.envelope["after"]
    record = dict(draft.record)
    record[spec.mapping.external_key] = keyed.key
    record.update(dict(kind.values))
    lines = spec.mapping.lines
    if lines is not None:
        entries = doc.get(lines.source) or []
        rows = record.get(lines.target) or []
        record[lines.target] = [
            {**row, "Tax": float(_dec(e.get("FALLAMOUNTFOR")) - _dec(e.get("FAMOUNTFOR")))}
            if "FALLAMOUNTFOR" in e and "FAMOUNTFOR" in e else row
            for row, e in zip(rows, entries, strict=True)
        ]
    for target, column in spec.totals:
        record[target] = float(sum((_dec(e.get(column)) for e in doc.get("entries") or []), Decimal(0)))
    record[spec.link.target] = OrderLink(tuple(spec.link.numbers(doc)))
    return dataclasses.replace(draft, record=record)


class LinkingResolver(Resolver):
    """The sales orders' resolver, plus the order link, looked up by number.  An order the CRM does not have yet
    is waited for briefly (``link_wait_s``: orders and their bills are usually captured together, and the order
    flow may simply be a moment behind), then the bill is written unlinked: a missing order never dead-letters a
    bill.  The wait is timed in memory (a restart starts it again; it stays bounded)."""

    def __init__(self, settings: Settings, flow_name: str, link_field: str, link_wait_s: float,
                 clock: Clock = time.time) -> None:
        super().__init__(settings, flow_name)
        self.link_field = link_field
        self.link_wait_s = link_wait_s
        self.clock = clock
        self._link_since: dict[str, float] = {}

    def resolve(self, cmd: SyncCommand) -> tuple[SyncCommand | None, list[Any]]:
        resolved, missing = super().resolve(cmd)
        if resolved is None:
            return None, missing
        record = dict(resolved.record)
        link = record.get(self.link_field)
        if isinstance(link, OrderLink):
            id_map, _ = self._open()
            ids = id_map.targets_by_number(ORDERS_FLOW, link.numbers) if link.numbers else {}
            target = next((ids[n] for n in link.numbers if n in ids), None)
            if target is None and link.numbers:
                since = self._link_since.setdefault(cmd.key, self.clock())
                if self.clock() - since < self.link_wait_s:
                    return None, [Ref(ORDERS_FLOW, link.numbers[0], link.numbers[0], self.link_field)]
                log.info("%s %s: order %s not in the CRM, written unlinked", self.flow_name,
                         cmd.number or cmd.key, ", ".join(link.numbers))
            record[self.link_field] = {"id": target} if target else None
        self._link_since.pop(cmd.key, None)
        return dataclasses.replace(resolved, record=record, fingerprint=fingerprint(record)), []


class BillPartition(SalesOrderPartition):
    """Upserts bills; a bill whose account (or products) never reached the CRM is dead-lettered naming them."""

    def __init__(self, *args: Any, what: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.what = what

    def unresolved_error(self, u: Unresolved) -> Exception:
        names = "; ".join(r.describe() for r in u.missing)
        return PermanentError(f"{self.what} {u.command.number or u.command.key}: not in the CRM after "
                              f"{u.waited_s:.0f} s: {names}", code="REFERENCE_MISSING")


class BillSink(SalesOrderSink):
    def __init__(self, settings: Settings, flow: str, mapping: Mapping, what: str) -> None:
        super().__init__(settings, flow, mapping)
        self.what = what

    def build(self, step_id: str, worker_index: int, worker_count: int) -> BillPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return BillPartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, self.flow, "zoho"),
            producer(self.settings.kafka), self.flow, self.module, self.external_key, self.policy,
            self.settings.kafka.topic(dlq_topic(self.flow)), None, self.match_also,
            lines_field=self.lines_field, line_key="Kingdee_Entry_ID", what=self.what,
        )


# --- amounts per order ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillChange:
    """A bill's amounts per order as of one version (empty: the bill gives nothing: not live, or deleted)."""

    bill: str
    number: str | None
    amounts: tuple[tuple[str, Decimal], ...]
    version: int
    commit_ms: int
    position: Position


@dataclass(frozen=True)
class Contribution:
    """What one bill now gives one order: ``amount``, or nothing (``None``)."""

    order: str
    bill: str
    amount: Decimal | None
    version: int
    commit_ms: int
    position: Position


def bill_change(spec: BillSpec, kind: DocumentKind, event: DocumentEvent) -> BillChange:
    env = event.envelope
    doc = env.get("after") if env["op"] != "d" else None
    per_order: dict[str, Decimal] = {}
    if doc is not None and spec.amounts.live(doc):
        for number, row in spec.link.rows_of(doc):
            per_order[number] = per_order.get(number, Decimal(0)) + _dec(row.get(spec.amounts.amount))
    return BillChange(bill_key(kind, event.key), env["source"].get("number"), tuple(sorted(per_order.items())),
                      event.version, event.commit_ms, event.position)


@dataclass
class BillState:
    given: dict[str, Decimal] = field(default_factory=dict)
    version: int = 0


def apply_bill(state: BillState, change: BillChange) -> list[Contribution]:
    """The contributions a bill's new version changes (in place); none for an older version than the state's."""
    if change.version < state.version:
        return []
    new = dict(change.amounts)
    out = [Contribution(order, change.bill, new.get(order), change.version, change.commit_ms, change.position)
           for order in sorted(set(state.given) | set(new)) if state.given.get(order) != new.get(order)]
    state.given, state.version = new, change.version
    return out


class BillAmounts(StatefulLogic[BillChange, Contribution, BillState]):
    """Per bill: what it gave each order last, so a change sends exactly the differences (see module doc)."""

    def __init__(self, state: BillState | None) -> None:
        self.state = state or BillState()

    def on_item(self, value: BillChange) -> tuple[Iterable[Contribution], bool]:
        # A bill that gives nothing (deleted, un-audited, voided) keeps no state here: the order sums keep its
        # tombstone, which is what stops a late older image of it.
        return apply_bill(self.state, value), not self.state.given

    def snapshot(self) -> BillState:
        return BillState(dict(self.state.given), self.state.version)


@dataclass(frozen=True)
class OrderTotal:
    order: str
    amount: Decimal
    version: int
    commit_ms: int
    position: Position
    bills: int


@dataclass
class OrderState:
    #: The sum over the key's live bills (``flows/live_sum.py``, documents = bills).
    live: LiveSum = field(default_factory=LiveSum)
    #: The total not written yet, since when it waits for its order, attempts, when to look again.
    pending: OrderTotal | None = None
    wait: ReferenceWait = field(default_factory=ReferenceWait)
    next_at: float = 0.0


def apply_contribution(state: OrderState, c: Contribution, now: float) -> OrderTotal | None:
    """Apply one bill's contribution in place; the order's new total, or None when stale or unchanged."""
    live = state.live
    if c.amount is None and c.bill not in live.amounts and not live.stale(c.bill, c.version):
        live.gone[c.bill] = (c.version, now)  # removes nothing; remembered so an older image stays out
        return None
    if not live.apply(c.bill, c.amount, c.version, now):
        return None
    return OrderTotal(c.order, live.total(), live.version, c.commit_ms, c.position, len(live.amounts))


@dataclass(frozen=True)
class TotalWrite:
    total: OrderTotal
    target_id: str


Resolve = Callable[[str], "str | None"]


_Out = TypeVar("_Out")


class SumOverBills(StatefulLogic[Contribution, _Out, OrderState]):
    """What every per-key sum over live bills shares: its state (bills, recently gone ones, the pending total),
    timers for the pending write and for forgetting gone bills, and when the key can be dropped."""

    def __init__(self, state: OrderState | None, clock: Clock, retire_after: timedelta) -> None:
        self.state = state or OrderState()
        self.clock = clock
        self.retire_after = retire_after.total_seconds()

    def on_eof(self) -> tuple[Iterable[_Out], bool]:
        return [], False

    def notify_at(self) -> datetime | None:
        s = self.state
        times = [s.next_at] if s.pending is not None else []
        expiry = s.live.next_expiry(self.retire_after)
        if expiry is not None:
            times.append(expiry)
        return datetime.fromtimestamp(min(times), UTC) if times else None

    def snapshot(self) -> OrderState:
        return dataclasses.replace(self.state, live=self.state.live.copy(), wait=dataclasses.replace(self.state.wait))

    def _prune(self, now: float) -> None:
        self.state.live.prune(now, self.retire_after)

    def _discard(self) -> bool:
        return self.state.live.empty() and self.state.pending is None


class OrderSum(SumOverBills["TotalWrite | DeadLetter"]):
    """Per order number: the sum of its bills, written once the order is in the CRM (see module doc)."""

    def __init__(self, state: OrderState | None, resolve: Resolve, flow: str, wait_s: float,
                 clock: Clock = time.time, retire_after: timedelta = RETIRE_AFTER) -> None:
        super().__init__(state, clock, retire_after)
        self.resolve = resolve
        self.flow = flow
        self.wait_s = wait_s

    def on_item(self, value: Contribution) -> tuple[Iterable[TotalWrite | DeadLetter], bool]:
        now = self.clock()
        self._prune(now)
        total = apply_contribution(self.state, value, now)
        if total is not None:
            s = self.state
            if s.pending is None:
                s.wait.clear()
            s.pending = total
            return self._flush(now), False
        return [], self._discard()

    def on_notify(self) -> tuple[Iterable[TotalWrite | DeadLetter], bool]:
        now = self.clock()
        self._prune(now)
        if self.state.pending is not None and now >= self.state.next_at:
            return self._flush(now), False
        return [], self._discard()

    def _flush(self, now: float) -> list[TotalWrite | DeadLetter]:
        s = self.state
        total = s.pending
        assert total is not None
        target = self.resolve(total.order)
        if target is not None:
            s.pending = None
            s.wait.clear()
            return [TotalWrite(total, target)]
        look_again = s.wait.miss(now, self.wait_s, FIRST_RETRY_S, MAX_RETRY_S)
        if look_again is not None:
            s.next_at = look_again
            return []
        waited = s.wait.waited(now)
        exc = PermanentError(f"sales order {total.order} is not in the CRM after {waited:.0f} s; its amount "
                             f"{total.amount} was not written", code="ORDER_MISSING")
        letter = DeadLetter.of(self.flow, "resolve", exc, record={"order": total.order, "amount": str(total.amount),
                                                                  "version": total.version},
                               key=f"order:{total.order}", topic=total.position.topic,
                               partition=total.position.partition, offset=total.position.offset,
                               attempts=s.wait.attempts)
        s.pending = None
        s.wait.clear()
        return [letter]


def total_command(flow: str, amount_field: str, write: TotalWrite) -> SyncCommand:
    total = write.total
    record = {"id": write.target_id, amount_field: float(total.amount)}
    blob = json.dumps(record, sort_keys=True, default=str).encode()
    return SyncCommand(flow=flow, key=f"order:{total.order}", number=total.order, version=total.version,
                       record=record, fingerprint=hashlib.sha256(blob).hexdigest()[:32],
                       captured_at_ms=total.commit_ms, position=total.position)


# --- the dataflow -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Read:
    events: Stream[DocumentEvent]
    dead: Stream[DeadLetter]


@operator
def _read_document(step_id: str, flow: Dataflow, flow_name: str, settings: Settings, topic: str) -> _Read:
    """``read_documents`` in its own scope, so one flow can read several document topics."""
    events, dead = read_documents(flow, flow_name, settings, topic)
    return _Read(events, dead)


def build_bill_flow(flow_name: str, settings: Settings, spec: BillSpec, what: str,
                    resolve_order: Resolve | None = None, *, into: Dataflow | None = None) -> Dataflow:
    flow = into or Dataflow(flow_name)
    drafts_all: list[Stream[Any]] = []
    changes_all: list[Stream[BillChange]] = []
    dead: list[Stream[Any]] = []
    for kind in spec.kinds:
        read = _read_document(f"read_{kind.document}", flow, flow_name, settings, f"kingdee.{kind.document}")
        events = read.events
        dead.append(read.dead)
        drafts_all.append(op.filter_map(f"map_{kind.document}", events,
                                        functools.partial(to_bill_draft, flow_name, spec, kind)))
        changes_all.append(op.map(f"amounts_{kind.document}", events, functools.partial(bill_change, spec, kind)))
    mapped = drafts_all[0] if len(drafts_all) == 1 else op.merge("all_drafts", *drafts_all)
    split = op.branch("mapped_ok", mapped, lambda x: isinstance(x, SyncCommand))
    drafts: Stream[SyncCommand] = split.trues
    keyed = op.key_on("by_bill", drafts, lambda c: c.key)
    link_wait_s = float(os.environ.get("CDCHUB_ORDER_LINK_WAIT_S", ORDER_LINK_WAIT_S))
    # the order link gives up (and the bill is written unlinked) well before the bill's other references would be
    # dead-lettered: with equal waits the two deadlines raced and a bill could be dead-lettered for its order alone
    resolver = LinkingResolver(settings, flow_name, spec.link.target,
                               min(link_wait_s, settings.reference_wait_s / 2))
    awaited = op.stateful_batch("await_references", keyed,
                                lambda resume: AwaitReferences(resolver, settings.reference_wait_s, resume))
    unkeyed: Stream[Any] = op.map("unkey", awaited, lambda kv: kv[1])
    deliver(f"zoho_{spec.mapping.module.lower()}", unkeyed, BillSink(settings, flow_name, spec.mapping, what))

    changes = changes_all[0] if len(changes_all) == 1 else op.merge("all_changes", *changes_all)
    by_bill = op.key_on("by_bill_amounts", changes, lambda c: c.bill)
    contributions = op.stateful("bill_amounts", by_bill, BillAmounts)
    by_order = op.key_on("by_order", op.map("drop_bill", contributions, lambda kv: kv[1]), lambda c: c.order)
    resolve = resolve_order or LedgerLookup(settings.ledger_database_url(), ORDERS_FLOW, by_number=True)
    sums = op.stateful("sum_per_order", by_order,
                       lambda state: OrderSum(state, resolve, flow_name, settings.reference_wait_s))
    values = op.map("drop_order", sums, lambda kv: kv[1])
    writes = op.branch("order_known", values, lambda v: isinstance(v, TotalWrite))
    commands = op.map("to_command", writes.trues,
                      lambda w: total_command(flow_name, spec.amounts.target, w))  # type: ignore[arg-type]
    deliver("zoho_order_amounts", commands, ZohoUpdateSink(settings, flow_name, ORDERS_MODULE))
    write_dead_letters(flow_name, settings, op.merge("all_dead_letters", *dead, split.falses, writes.falses))
    return flow

