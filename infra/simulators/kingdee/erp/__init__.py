"""The Kingdee ERP's own rules, as the WebAPI simulator and the demo seed apply them to the Kingdee database.

What K/3 Cloud does on its side of the database, one job per module:

- ``company``: the demo company's fixed ids (organisation, users, salesmen, preset bill types);
- ``transaction``: one document, one transaction (joining the caller's), millisecond timestamps;
- ``bill_numbers``: 单据编号 by prefix and sequence; ``status``: 数据状态 and the audit trail;
- ``amounts``: line amounts from a tax-included price, 财务 totals; ``back_write``: 反写 of deliveries to orders;
- ``inventory``: 即时库存 adjustments; ``documents``: delete a document whole, find by number, count rows;
- ``users``, ``materials``, ``customers``, ``sales_orders``, ``outstocks``, ``invoices``, ``receipts``: each
  document written as Kingdee writes it (all its tables in one transaction, ``FMODIFYDATE``/``FMODIFIERID`` set).

The write helpers take a ``Connection`` or an ``Engine``: with a connection already in a transaction they join it
(the caller commits); otherwise they commit their own transaction. This package re-exports the helpers that
tests, benchmarks and the README's examples write with (``from infra.simulators.kingdee import erp``); the
simulator's own modules import from the module that owns a rule.
"""

from __future__ import annotations

from infra.simulators.kingdee.erp.company import API_USER_ID, DEMO_USER_ID, ORG_ID
from infra.simulators.kingdee.erp.customers import insert_customer
from infra.simulators.kingdee.erp.documents import count_rows, delete_document, lookup_id
from infra.simulators.kingdee.erp.inventory import adjust_inventory
from infra.simulators.kingdee.erp.invoices import INVOICE_TABLES, insert_invoice
from infra.simulators.kingdee.erp.materials import (
    bulk_insert_materials,
    delete_material,
    disable_material,
    enable_material,
    insert_material,
    update_material,
)
from infra.simulators.kingdee.erp.outstocks import OutstockLine, OutstockRef, delete_outstock, insert_outstock
from infra.simulators.kingdee.erp.receipts import insert_receipt
from infra.simulators.kingdee.erp.sales_orders import (
    OrderLine,
    SalesOrderRef,
    delete_sales_order,
    insert_sales_order,
    update_order_line,
)
from infra.simulators.kingdee.erp.status import set_document_status
from infra.simulators.kingdee.erp.users import ensure_users

__all__ = [
    "API_USER_ID",
    "DEMO_USER_ID",
    "INVOICE_TABLES",
    "ORG_ID",
    "OrderLine",
    "OutstockLine",
    "OutstockRef",
    "SalesOrderRef",
    "adjust_inventory",
    "bulk_insert_materials",
    "count_rows",
    "delete_document",
    "delete_material",
    "delete_outstock",
    "delete_sales_order",
    "disable_material",
    "enable_material",
    "ensure_users",
    "insert_customer",
    "insert_invoice",
    "insert_material",
    "insert_outstock",
    "insert_receipt",
    "insert_sales_order",
    "lookup_id",
    "set_document_status",
    "update_material",
    "update_order_line",
]
