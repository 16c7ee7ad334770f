"""What the invoices and receipts flows share: a Kingdee bill → its own CRM record, linked to its account and
(where known) its sales order, and a per-order sum of the bill amounts shown on the CRM order.

    kingdee.<bill> ─► decode ─┬─► map ─► await references (keyed by bill) ─► BillSink (upsert, link to the order)
                              │
                              └─► bill amounts per order (keyed by bill) ─► order sum (keyed by order number)
                                      ─► ZohoUpdateSink (PUT Sales_Orders <Received|Invoiced>_Amount)

* **The bill record** (``flows/bill_records.py``) reuses the sales orders' machinery (``flows/sales_orders.py``): the
  account (and for invoices the line products) are id-map lookups that wait in keyed state, bounded, then
  dead-letter naming the missing customer / material.  The order link is looked up by number in the sales_orders
  ledger when the record is written; an order the CRM does not have yet is waited for
  ``CDCHUB_FLOWS__ORDER_LINK_WAIT_S`` (at most half the reference wait), then the bill is written unlinked.
* **Bill amounts** (``flows/bill_amounts.py``, state per bill: the amount it last gave each order): a bill that is live
  (``[amounts] live_when``: audited, not voided) contributes its rows' amounts to the orders they name; an
  un-audited, voided or deleted bill contributes nothing.  Each change is sent to the orders it touches as
  "bill B now gives order O amount a (or nothing)", so a bill moving from one order to another, or going away,
  rolls the old order back.
* **Order sum** (``flows/order_sums.py``, state per order number: ``{bill: (amount, version)}``): like the inventory
  sum (``flows/inventory.py``), the total is versioned by the highest commit LSN it includes; a bill's older image
  is ignored; a removed bill leaves a tombstone for ``RETIRE_AFTER``.  A changed total waits (in state, retried
  with backoff) until the order is in the CRM (sales_orders ledger by number), then is written once; after
  ``CDCHUB_REFERENCE_WAIT_S`` it is dead-lettered naming the order number (a newer change tries again).
* **The spec**: the shared mapping format plus ``[order_link]``, ``[amounts]``, ``[documents]``, ``[totals]``
  (``flows/bill_spec.py``), one file per flow, checked at start.
* **Idempotence**: the bill upsert and the total update both go through the flow's ledger (totals keyed
  ``order:<number>``, versioned by LSN): a replay from the start, with or without recovery state, writes nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator

from connectors.common.dead_letters import DeadLetter
from connectors.common.delivery import deliver
from connectors.common.sync import SyncCommand
from connectors.settings import Settings
from connectors.zoho.update_sink import ZohoUpdateSink
from core.id_map import LedgerLookup
from flows.bill_amounts import BillAmounts, BillChange, BillState, bill_change
from flows.bill_records import ORDERS_FLOW, BillSink, LinkingResolver, OrderLink, to_bill_draft
from flows.bill_spec import BillSpec
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.order_sums import OrderState, OrderSum, OrderTotal, Resolve, TotalWrite, total_command
from flows.sales_orders import AwaitReferences

ORDERS_MODULE = "Sales_Orders"

#: Bytewax recovery state pickled before these classes had modules of their own names them in this module: they
#: stay reachable here, so an installation resumes from its old snapshots.
RECOVERY_STATE_CLASSES = (OrderLink, BillState, OrderState, OrderTotal)


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
    link_wait_s = settings.flows.order_link_wait_s
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
    deliver("zoho_order_amounts", commands, ZohoUpdateSink(settings, flow_name, ORDERS_MODULE), flow=flow_name,
            hold_until_caught_up=True)  # a sum over bills of several partitions
    write_dead_letters(flow_name, settings, op.merge("all_dead_letters", *dead, split.falses, writes.falses))
    return flow

