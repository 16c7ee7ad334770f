"""销售出库单 (outbounds) written as Kingdee writes them, each line linked to the order line it delivers.

The link is ``FSOORDERNO``/``FSOENTRYID`` on the ``_R`` row. An audited outbound writes its quantities back to the
order (``back_write``) in the same transaction; deleting an audited one takes them back first, as an un-audit then
delete would.
"""

# SIM300 takes Kingdee's upper-case column attributes (``t.c.FID == fid``) for constants: not Yoda conditions.
# ruff: noqa: SIM300

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from connectors.kingdee import models as m
from infra.simulators.kingdee.erp.amounts import header_totals_row, line_amounts, to_decimal
from infra.simulators.kingdee.erp.back_write import back_write_deliveries
from infra.simulators.kingdee.erp.bill_numbers import next_bill_no
from infra.simulators.kingdee.erp.company import (
    BILL_TYPE_OUTSTOCK,
    DEMO_USER_ID,
    LOGISTICS_DEPT_ID,
    ORG_ID,
    STOCK_STATUS_AVAILABLE,
)
from infra.simulators.kingdee.erp.documents import delete_document
from infra.simulators.kingdee.erp.sales_orders import SalesOrderRef
from infra.simulators.kingdee.erp.status import audit_columns
from infra.simulators.kingdee.erp.transaction import insert_rows, kingdee_time, transaction


@dataclass(frozen=True)
class OutstockLine:
    """One outbound line: which order line it delivers, how much, from where."""

    so_entry_id: int
    qty: Decimal | int | float | str
    stock_id: int = 0
    lot_id: int = 0
    lot_text: str = " "
    produce_date: datetime | None = None
    expiry_date: datetime | None = None


@dataclass(frozen=True)
class OutstockRef:
    fid: int
    bill_no: str
    entry_ids: tuple[int, ...]


def outstock_rows(
    fid: int,
    fin_id: int,
    entry_ids: Sequence[int],
    bill_no: str,
    order_no: str,
    customer_id: int,
    lines: Sequence[OutstockLine],
    order_lines: Mapping[int, Mapping[str, Any]],
    *,
    date: datetime,
    status: str,
    salesman_id: int,
    carriage_no: str,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    """``order_lines`` maps each order entry id to its FMATERIALID, FUNITID, FTAXPRICE and FTAXRATE."""
    header = {
        "FID": fid,
        "FBILLNO": bill_no,
        "FBILLTYPEID": BILL_TYPE_OUTSTOCK,
        "FDATE": date,
        **audit_columns(status, created, modified, None, user),
        "FCUSTOMERID": customer_id,
        "FSALEORGID": ORG_ID,
        "FSTOCKORGID": ORG_ID,
        "FSALESMANID": salesman_id,
        "FDELIVERYDEPTID": LOGISTICS_DEPT_ID,
        "FCARRIAGENO": carriage_no,
        "FNOTE": " ",
    }
    entries: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    fins: list[dict[str, Any]] = []
    for seq, (entry_id, line) in enumerate(zip(entry_ids, lines, strict=True), start=1):
        src = order_lines[line.so_entry_id]
        qty = to_decimal(line.qty)
        entries.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSEQ": seq,
                "FMATERIALID": src["FMATERIALID"],
                "FUNITID": src["FUNITID"],
                "FREALQTY": qty,
                "FBASEUNITID": src["FUNITID"],
                "FBASEUNITQTY": qty,
                "FSTOCKID": line.stock_id,
                "FSTOCKSTATUSID": STOCK_STATUS_AVAILABLE,
                "FLOT": line.lot_id,
                "FLOT_TEXT": line.lot_text,
                "FPRODUCEDATE": line.produce_date,
                "FEXPIRYDATE": line.expiry_date,
                "FNOTE": " ",
            }
        )
        links.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSRCTYPE": "SAL_SaleOrder",
                "FSRCBILLNO": order_no,
                "FSOORDERNO": order_no,
                "FSOENTRYID": line.so_entry_id,
            }
        )
        fins.append(
            {"FENTRYID": entry_id, "FID": fid, **line_amounts(qty, src["FTAXPRICE"], src["FTAXRATE"])}
        )
    return {
        "T_SAL_OUTSTOCK": [header],
        "T_SAL_OUTSTOCKFIN": [header_totals_row(fin_id, fid, fins)],
        "T_SAL_OUTSTOCKENTRY": entries,
        "T_SAL_OUTSTOCKENTRY_R": links,
        "T_SAL_OUTSTOCKENTRY_F": fins,
    }


def insert_outstock(
    bind: Connection | Engine,
    order: SalesOrderRef | int,
    lines: Sequence[OutstockLine | Mapping[str, Any]] | None = None,
    *,
    bill_no: str | None = None,
    status: str = "C",
    stock_id: int = 0,
    date: datetime | None = None,
    carriage_no: str = " ",
    back_write: bool = True,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> OutstockRef:
    """Insert a 销售出库单 delivering lines of ``order``, each line linked by ``FSOORDERNO``/``FSOENTRYID``.

    ``lines`` default to the remaining quantity of every order line, from ``stock_id``. When the outbound is
    audited (``status='C'``) and ``back_write`` is on, the order's ``_R`` progress is updated in the same
    transaction and a fully delivered order is closed, as Kingdee does.
    """
    ts = kingdee_time(now)
    order_fid = order.fid if isinstance(order, SalesOrderRef) else order
    h, e, f, r = m.T_SAL_ORDER, m.T_SAL_ORDERENTRY, m.T_SAL_ORDERENTRY_F, m.T_SAL_ORDERENTRY_R
    with transaction(bind) as conn:
        head = conn.execute(select(h.c.FBILLNO, h.c.FCUSTID, h.c.FSALERID).where(h.c.FID == order_fid)).one()
        src_rows = conn.execute(
            select(e.c.FENTRYID, e.c.FMATERIALID, e.c.FUNITID, f.c.FTAXPRICE, f.c.FTAXRATE, r.c.FREMAINOUTQTY)
            .join(f, f.c.FENTRYID == e.c.FENTRYID)
            .join(r, r.c.FENTRYID == e.c.FENTRYID)
            .where(e.c.FID == order_fid)
            .order_by(e.c.FSEQ)
        ).mappings()
        order_lines = {row["FENTRYID"]: dict(row) for row in src_rows}
        if lines is None:
            out_lines = [
                OutstockLine(entry_id, src["FREMAINOUTQTY"], stock_id=stock_id)
                for entry_id, src in order_lines.items()
                if to_decimal(src["FREMAINOUTQTY"]) > 0
            ]
        else:
            out_lines = [ln if isinstance(ln, OutstockLine) else OutstockLine(**ln) for ln in lines]
        fid = m.next_ids(conn, "T_SAL_OUTSTOCK", 1)[0]
        fin_id = m.next_ids(conn, "T_SAL_OUTSTOCKFIN", 1)[0]
        entry_ids = m.next_ids(conn, "T_SAL_OUTSTOCKENTRY", len(out_lines))
        number = bill_no or next_bill_no(conn, "T_SAL_OUTSTOCK")
        rows = outstock_rows(
            fid,
            fin_id,
            entry_ids,
            number,
            head.FBILLNO,
            head.FCUSTID,
            out_lines,
            order_lines,
            date=date or ts.replace(hour=0, minute=0, second=0, microsecond=0),
            status=status,
            salesman_id=head.FSALERID,
            carriage_no=carriage_no,
            created=ts,
            modified=ts,
            user=user_id,
        )
        insert_rows(conn, rows)
        if status == "C" and back_write:
            deliveries = [(ln.so_entry_id, to_decimal(ln.qty)) for ln in out_lines]
            back_write_deliveries(conn, order_fid, deliveries, ts, user_id)
        return OutstockRef(fid, number, tuple(entry_ids))


def delete_outstock(bind: Connection | Engine, fid: int, *, user_id: int = DEMO_USER_ID) -> None:
    """Delete an outbound and all its rows in one transaction.

    Kingdee only deletes unaudited bills; if this one was audited, its back-write on the order is reversed in
    the same transaction (as an un-audit then delete would).
    """
    o, oe, link = m.T_SAL_OUTSTOCK, m.T_SAL_OUTSTOCKENTRY, m.T_SAL_OUTSTOCKENTRY_R
    with transaction(bind) as conn:
        status = conn.execute(select(o.c.FDOCUMENTSTATUS).where(o.c.FID == fid)).scalar()
        if status == "C":
            delivered = conn.execute(
                select(link.c.FSOENTRYID, oe.c.FREALQTY)
                .join(oe, oe.c.FENTRYID == link.c.FENTRYID)
                .where(link.c.FID == fid)
            ).all()
            e = m.T_SAL_ORDERENTRY
            by_order: dict[int, list[tuple[int, Decimal]]] = {}
            for so_entry_id, qty in delivered:
                order_fid = conn.execute(select(e.c.FID).where(e.c.FENTRYID == so_entry_id)).scalar()
                if order_fid is not None:
                    by_order.setdefault(order_fid, []).append((so_entry_id, -to_decimal(qty)))
            for order_fid, deliveries in by_order.items():
                back_write_deliveries(conn, order_fid, deliveries, kingdee_time(None), user_id)
        delete_document(conn, "T_SAL_OUTSTOCK", fid)
