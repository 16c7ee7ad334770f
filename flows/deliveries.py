"""Deliveries: Kingdee 销售出库单 (SAL_OUTSTOCK, audited) → ZOHO CRM ``Deliveries`` + delivered quantities on the order.

    kingdee.outbound ─► decode ─► parts per source order ─► per order (keyed state) ─┬─► Deliveries upsert
          │                          │                     sum over live outbounds,   │    (Kingdee_Outbound_ID)
          │                          │                     wait for the CRM order     └─► Sales_Orders update
          └──────────────────────────┴──────────────────────────────┴─► cdchub.dlq.deliveries  (Delivered_Qty per
                                                                                               line, Delivery_Status)

* **Parts** (``flows/outbound_parts.py``): each outbound event becomes, for every sales order its lines deliver,
  "outbound FID now delivers {order line: qty}" — or "delivers nothing" when it is deleted, voided, not audited or
  no longer points at that order.  Which status letters count is data (``flows/mappings/deliveries.toml``,
  ``flows/delivery_rules.py``); an unknown letter is dead-lettered naming it.
* **Per order** (``flows/order_deliveries.py``, keyed by the order's bill number): delivered quantities are the
  **sum over all live outbounds**, written as totals, so replays, duplicates and out-of-order arrival never give
  wrong quantities.  The CRM order (``flows/delivery_lookups.py``) is looked up when there is something to write;
  until it is there the changes wait in the state, and after ``CDCHUB_REFERENCE_WAIT_S`` they are dead-lettered
  naming the order number.  Writes are coalesced for ``CDCHUB_FLOWS__DELIVERIES_COALESCE_MS`` (a burst, or a
  replay of a backlog, becomes one write per order).
* **Writes**: one ``Deliveries`` record per outbound (upsert on ``Kingdee_Outbound_ID``, versioned by the outbound's
  LSN; a dead outbound is marked ``Deleted_In_Kingdee``), and per order one update of its lines' delivered
  quantities and its delivery status (``flows/delivery_writes.py``).  Both go through the ledger: a replay or a
  duplicate writes nothing.

Design notes: ``docs/erp-documents.md`` (Deliveries).
"""

from __future__ import annotations

from datetime import timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from connectors.common.delivery import deliver
from connectors.settings import Settings, get_settings
from connectors.zoho.sink import ZohoUpsertSink
from flows.delivery_lookups import CrmLookups, CrmOrder, Lookups
from flows.delivery_rules import DELIVERIES_MODULE, EXTERNAL_KEY, FLOW
from flows.delivery_writes import OrderDeliverySink
from flows.kingdee_documents import read_documents, write_dead_letters
from flows.order_deliveries import OrderState, order_deliveries
from flows.outbound_parts import OutboundLine, OutboundPart, outbound_parts

#: Bytewax recovery state pickled before these classes had modules of their own names them in this module: they
#: stay reachable here, so an installation resumes from its old snapshots.
RECOVERY_STATE_CLASSES = (OrderState, OutboundPart, OutboundLine, CrmOrder)


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
                           coalesce=timedelta(milliseconds=settings.flows.deliveries_coalesce_ms))
    values = op.map("drop_key", out, lambda kv: kv[1])
    deliveries = op.filter_map("deliveries", values, lambda v: v[1] if v[0] == "delivery" else None)
    orders = op.filter_map("orders", values, lambda v: v[1] if v[0] == "order" else None)
    dead = op.filter_map("waited_too_long", values, lambda v: v[1] if v[0] == "dead" else None)
    deliver("zoho_deliveries", deliveries, ZohoUpsertSink(settings, FLOW, DELIVERIES_MODULE, EXTERNAL_KEY))
    deliver("zoho_order_deliveries", orders, OrderDeliverySink(settings), flow=FLOW,
            hold_until_caught_up=True,  # totals over outbounds of several partitions, coalesced before
            upstream_interval_s=settings.flows.deliveries_coalesce_ms / 1000)
    write_dead_letters(FLOW, settings, op.merge("all_dead_letters", read_dead, bad, dead))
    return flow
