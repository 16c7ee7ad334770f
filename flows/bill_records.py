"""A bill's own CRM record (invoices, receipts): the sales orders' machinery (``flows/sales_orders.py``) — the
account (and for invoices the line products) are id-map lookups that wait in keyed state, bounded, then dead-letter
naming the missing customer / material — plus the link to the sales order the bill names, looked up by number in
the ``sales_orders`` ledger when the record is written (an order not in the CRM leaves the bill unlinked)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.kafka import producer
from connectors.common.sync import SyncCommand
from connectors.settings import Settings
from connectors.zoho.client import ZohoClient
from core.errors import PermanentError
from core.ledger import SyncLedger, open_engine
from core.mapping import Mapping, Ref, fingerprint
from flows.bill_spec import BillSpec, DocumentKind, bill_key
from flows.kingdee_documents import DocumentEvent
from flows.sales_orders import Resolver, SalesOrderPartition, SalesOrderSink, Unresolved, to_draft

log = logging.getLogger(__name__)

#: The flow whose ledger knows a sales order's CRM id by its bill number.
ORDERS_FLOW = "sales_orders"

Clock = Callable[[], float]


@dataclass(frozen=True)
class OrderLink:
    """The order numbers a bill names, in its record until the sink's resolver turns it into a lookup."""

    numbers: tuple[str, ...]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


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
