"""Receipts: Kingdee 收款单 (AR_RECEIVEBILL) → ZOHO CRM ``Payments``, and the received amount of the CRM sales
orders they pay; declared in ``flows/mappings/receipts.toml``.

    kingdee.receipt ─► decode ─► map ─┬─► await account ─► upsert Payments (Kingdee_Receipt_ID; deleted: marked)
                                      └─► amounts per order (source entries) ─► sum per order ─► PUT Sales_Orders
                                                                                                  Received_Amount

The received amount of an order is the sum over live receipts (audited, not voided, not deleted) of their source
rows naming it (``FORDERBILLNO``, ``FREALRECAMOUNT``); un-auditing, voiding or deleting a receipt rolls it back.
Shared machinery and rules: ``flows/order_amounts.py``.
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from connectors.settings import Settings, get_settings
from flows.bill_spec import BillSpec, load_spec
from flows.order_amounts import build_bill_flow

FLOW = "receipts"


def build_flow(settings: Settings | None = None, spec: BillSpec | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    return build_bill_flow(FLOW, settings or get_settings(), spec or load_spec(FLOW), what="receipt", into=into)
