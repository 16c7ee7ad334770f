"""Invoices: Kingdee 销售发票, 增值税专用发票 (IV_SALESIC) and 普通发票 (IV_SALESOC) → ZOHO CRM ``Invoices``, and
the invoiced amount of the CRM sales orders they bill; declared in ``flows/mappings/invoices.toml``.

    kingdee.invoice_special ──┐                       ┌─► await account + products ─► upsert Invoices
                              ├─► decode ─► map ──────┤        (Kingdee_Invoice_ID = IC-<FID> / OC-<FID>)
    kingdee.invoice_ordinary ─┘                       └─► amounts per order ─► sum per order ─► PUT Sales_Orders
                                                                                                 Invoiced_Amount

The shared machinery and its rules (waiting, order link by number, sums that survive replays and crashes) are in
``flows/order_amounts.py``.
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from connectors.settings import Settings, get_settings
from flows.bill_spec import BillSpec, load_spec
from flows.order_amounts import build_bill_flow

FLOW = "invoices"


def build_flow(settings: Settings | None = None, spec: BillSpec | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    return build_bill_flow(FLOW, settings or get_settings(), spec or load_spec(FLOW), what="invoice", into=into)
