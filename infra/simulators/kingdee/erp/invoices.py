"""销售发票 (VAT invoices), special (专用, ``T_IV_SALESIC``) and ordinary (普通, ``T_IV_SALESOC``), written audited."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert

from connectors.kingdee import models as m
from connectors.kingdee.models import TABLES
from infra.simulators.kingdee.erp.transaction import transaction

INVOICE_TABLES = {"special": "T_IV_SALESIC", "ordinary": "T_IV_SALESOC"}


def insert_invoice(bind: Connection | Engine, kind: str, customer: int, order_no: str,
                   lines: Sequence[tuple[int, int, str]], bill_no: str,
                   from_outbound: tuple[str, Sequence[int]] | None = None) -> int:
    """An audited invoice of ``kind`` whose entries (material, qty, tax-included price; 13 % VAT) come from the
    sales order ``order_no`` — or, with ``from_outbound`` (bill number, entry ids), from an outbound's lines, as
    Kingdee's push-down from 销售出库单 makes them."""
    table = INVOICE_TABLES[kind]
    with transaction(bind) as conn:
        fid = m.next_ids(conn, table, 1)[0]
        entry_ids = m.next_ids(conn, f"{table}ENTRY", len(lines))
        total = Decimal(0)
        entries: list[dict[str, Any]] = []
        for seq, (entry_id, (material, qty, tax_price)) in enumerate(zip(entry_ids, lines, strict=True), start=1):
            all_amount = Decimal(tax_price) * qty
            amount = (all_amount / Decimal("1.13")).quantize(Decimal("0.01"))
            total += all_amount
            entries.append({"FENTRYID": entry_id, "FID": fid, "FSEQ": seq, "FMATERIALID": material,
                            "FPRICEQTY": qty, "FPRICE": (amount / qty).quantize(Decimal("0.000001")),
                            "FTAXPRICE": Decimal(tax_price), "FTAXRATE": Decimal(13), "FAMOUNTFOR": amount,
                            "FALLAMOUNTFOR": all_amount, "FSRCBILLTYPEID": "SAL_SaleOrder",
                            "FSRCBILLNO": order_no, "FSRCROWID": 0})
            if from_outbound is not None:
                entries[-1].update(FSRCBILLTYPEID="SAL_OUTSTOCK", FSRCBILLNO=from_outbound[0],
                                   FSRCROWID=from_outbound[1][seq - 1])
        conn.execute(insert(TABLES[table]).values(
            FID=fid, FBILLNO=bill_no, FDOCUMENTSTATUS="C", FCANCELSTATUS="A", FCUSTOMERID=customer,
            FINVOICENO=f"{fid:08d}", FAFTERTOTALTAXFOR=total))
        conn.execute(insert(TABLES[f"{table}ENTRY"]), entries)
    return fid
