"""销售订单 (sales orders) written as Kingdee writes them: header, 财务 split, entries with ``_F`` and ``_R``.

An order line's ``_R`` row holds its delivery progress (出库数量, 剩余未出数量), which audited outbounds write back
(``back_write``).
"""

# SIM300 takes Kingdee's upper-case column attributes (``t.c.FID == fid``) for constants: not Yoda conditions.
# ruff: noqa: SIM300

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from connectors.kingdee import models as m
from infra.simulators.kingdee.erp.amounts import header_totals_row, line_amounts, refresh_header_totals, to_decimal
from infra.simulators.kingdee.erp.bill_numbers import next_bill_no
from infra.simulators.kingdee.erp.company import (
    BILL_TYPE_SALES_ORDER,
    DEMO_USER_ID,
    ORG_ID,
    SALES_DEPT_ID,
    SALESMEN,
    VAT_RATE,
)
from infra.simulators.kingdee.erp.documents import delete_document
from infra.simulators.kingdee.erp.status import audit_columns
from infra.simulators.kingdee.erp.transaction import insert_rows, kingdee_time, transaction


@dataclass(frozen=True)
class OrderLine:
    """One sales order line: quantity in the material's base unit and a tax-included unit price."""

    material_id: int
    qty: Decimal | int | float | str
    tax_price: Decimal | int | float | str
    unit_id: int = 0
    tax_rate: Decimal | int | float | str = VAT_RATE
    delivery_date: datetime | None = None
    note: str = " "


@dataclass(frozen=True)
class SalesOrderRef:
    fid: int
    bill_no: str
    entry_ids: tuple[int, ...]


def order_rows(
    fid: int,
    fin_id: int,
    entry_ids: Sequence[int],
    bill_no: str,
    customer_id: int,
    lines: Sequence[OrderLine],
    *,
    date: datetime,
    status: str,
    close_status: str,
    cancel_status: str,
    saler_id: int,
    note: str,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one sales order: header, 财务, entries, ``_F`` amounts and ``_R`` progress (nothing delivered)."""
    header = {
        "FID": fid,
        "FBILLNO": bill_no,
        "FBILLTYPEID": BILL_TYPE_SALES_ORDER,
        "FDATE": date,
        **audit_columns(status, created, modified, None, user),
        "FCANCELSTATUS": cancel_status,
        "FCANCELLERID": user if cancel_status == "B" else 0,
        "FCANCELDATE": modified if cancel_status == "B" else None,
        "FCUSTID": customer_id,
        "FSALEORGID": ORG_ID,
        "FSALEDEPTID": SALES_DEPT_ID,
        "FSALERID": saler_id,
        "FRECEIVEID": customer_id,
        "FSETTLEID": customer_id,
        "FCHARGEID": customer_id,
        "FBUSINESSTYPE": "NORMAL",
        "FCLOSESTATUS": close_status,
        "FCLOSERID": user if close_status == "B" else 0,
        "FCLOSEDATE": modified if close_status == "B" else None,
        "FNOTE": note,
    }
    entries: list[dict[str, Any]] = []
    fins: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    for seq, (entry_id, line) in enumerate(zip(entry_ids, lines, strict=True), start=1):
        qty = to_decimal(line.qty)
        entries.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSEQ": seq,
                "FMATERIALID": line.material_id,
                "FUNITID": line.unit_id,
                "FQTY": qty,
                "FBASEUNITID": line.unit_id,
                "FBASEUNITQTY": qty,
                "FDELIVERYDATE": line.delivery_date or date + timedelta(days=14),
                "FNOTE": line.note,
            }
        )
        fins.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                **line_amounts(qty, to_decimal(line.tax_price), to_decimal(line.tax_rate)),
            }
        )
        progress.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSTOCKOUTQTY": Decimal(0),
                "FREMAINOUTQTY": qty,
                "FBASESTOCKOUTQTY": Decimal(0),
                "FRETURNQTY": Decimal(0),
            }
        )
    return {
        "T_SAL_ORDER": [header],
        "T_SAL_ORDERFIN": [header_totals_row(fin_id, fid, fins)],
        "T_SAL_ORDERENTRY": entries,
        "T_SAL_ORDERENTRY_F": fins,
        "T_SAL_ORDERENTRY_R": progress,
    }


def insert_sales_order(
    bind: Connection | Engine,
    customer_id: int,
    lines: Sequence[OrderLine | Mapping[str, Any]],
    *,
    bill_no: str | None = None,
    status: str = "C",
    date: datetime | None = None,
    saler_id: int = SALESMEN[0],
    note: str = " ",
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> SalesOrderRef:
    """Insert a sales order (header, 财务 split, entries with ``_F`` and ``_R``) in one transaction.

    ``lines`` are ``OrderLine``s or mappings with the same keys (``material_id``, ``qty``, ``tax_price``, …).
    ``bill_no`` defaults to the next ``XSDD`` number.
    """
    ts = kingdee_time(now)
    order_lines = [line if isinstance(line, OrderLine) else OrderLine(**line) for line in lines]
    with transaction(bind) as conn:
        fid = m.next_ids(conn, "T_SAL_ORDER", 1)[0]
        fin_id = m.next_ids(conn, "T_SAL_ORDERFIN", 1)[0]
        entry_ids = m.next_ids(conn, "T_SAL_ORDERENTRY", len(order_lines))
        number = bill_no or next_bill_no(conn, "T_SAL_ORDER")
        rows = order_rows(
            fid,
            fin_id,
            entry_ids,
            number,
            customer_id,
            order_lines,
            date=date or ts.replace(hour=0, minute=0, second=0, microsecond=0),
            status=status,
            close_status="A",
            cancel_status="A",
            saler_id=saler_id,
            note=note,
            created=ts,
            modified=ts,
            user=user_id,
        )
        insert_rows(conn, rows)
        return SalesOrderRef(fid, number, tuple(entry_ids))


def update_order_line(
    bind: Connection | Engine,
    entry_id: int,
    *,
    qty: Decimal | int | float | str | None = None,
    tax_price: Decimal | int | float | str | None = None,
    note: str | None = None,
    touch_header: bool = True,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> None:
    """Change one order line (entry, ``_F`` amounts, ``_R`` remaining quantity) in one transaction.

    ``touch_header=True`` is a Kingdee save: header ``FMODIFYDATE`` and the 财务 totals move too.
    ``touch_header=False`` changes only entry rows, as a back-write from another bill does: the capture must
    still emit the whole order.
    """
    ts = kingdee_time(now)
    e, f, r = m.T_SAL_ORDERENTRY, m.T_SAL_ORDERENTRY_F, m.T_SAL_ORDERENTRY_R
    with transaction(bind) as conn:
        entry = conn.execute(select(e.c.FID, e.c.FQTY).where(e.c.FENTRYID == entry_id)).one()
        fin = conn.execute(select(f.c.FTAXPRICE, f.c.FTAXRATE).where(f.c.FENTRYID == entry_id)).one()
        done = conn.execute(select(r.c.FSTOCKOUTQTY).where(r.c.FENTRYID == entry_id)).scalar_one()
        new_qty = to_decimal(qty) if qty is not None else to_decimal(entry.FQTY)
        new_price = to_decimal(tax_price) if tax_price is not None else to_decimal(fin.FTAXPRICE)
        values: dict[str, Any] = {"FQTY": new_qty, "FBASEUNITQTY": new_qty}
        if note is not None:
            values["FNOTE"] = note
        conn.execute(update(e).where(e.c.FENTRYID == entry_id).values(values))
        conn.execute(
            update(f)
            .where(f.c.FENTRYID == entry_id)
            .values(line_amounts(new_qty, new_price, to_decimal(fin.FTAXRATE)))
        )
        conn.execute(update(r).where(r.c.FENTRYID == entry_id).values(FREMAINOUTQTY=new_qty - to_decimal(done)))
        if touch_header:
            refresh_header_totals(conn, "T_SAL_ORDER", entry.FID)
            h = m.T_SAL_ORDER
            conn.execute(update(h).where(h.c.FID == entry.FID).values(FMODIFYDATE=ts, FMODIFIERID=user_id))


def delete_sales_order(bind: Connection | Engine, fid: int) -> None:
    """Delete a sales order and all its rows (header, 财务, entries, ``_F``, ``_R``) in one transaction."""
    delete_document(bind, "T_SAL_ORDER", fid)
