"""What K/3 Cloud computes on save instead of taking it from the client: line amounts, totals, open quantities.

Run inside the save's transaction, after the rows are written, over the whole document: prices → line amounts
(from the tax-included price, tax split off: ``erp.amounts``), header totals, an order line's remaining
quantity, base-unit quantities. So the database holds what a real save would leave there.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select, update

from connectors.kingdee.models import TABLES
from infra.simulators.kingdee.erp.amounts import line_amounts, refresh_header_totals
from infra.simulators.kingdee.forms import FormDef


def _dec(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _tax_price(price: Decimal, tax_price: Decimal, rate: Decimal) -> Decimal:
    return tax_price if tax_price or not price else price * (1 + rate / 100)


def _line_amounts(conn: Connection, entry: str, split: str, fid: int, qty_column: str) -> None:
    e, f = TABLES[entry], TABLES[split]
    rows = conn.execute(
        select(e.c.FENTRYID, e.c[qty_column], e.c.FUNITID, f.c.FPRICE, f.c.FTAXPRICE, f.c.FTAXRATE)
        .join(f, f.c.FENTRYID == e.c.FENTRYID)
        .where(e.c.FID == fid)
    ).all()
    for entry_id, qty, unit, price, tax_price, rate in rows:
        amounts = line_amounts(_dec(qty), _tax_price(_dec(price), _dec(tax_price), _dec(rate)), _dec(rate))
        conn.execute(update(f).where(f.c.FENTRYID == entry_id).values(amounts))
        conn.execute(update(e).where(e.c.FENTRYID == entry_id).values(FBASEUNITQTY=_dec(qty), FBASEUNITID=unit or 0))


def _sales_order(conn: Connection, fid: int) -> None:
    _line_amounts(conn, "T_SAL_ORDERENTRY", "T_SAL_ORDERENTRY_F", fid, "FQTY")
    e, r = TABLES["T_SAL_ORDERENTRY"], TABLES["T_SAL_ORDERENTRY_R"]
    for entry_id, qty in conn.execute(select(e.c.FENTRYID, e.c.FQTY).where(e.c.FID == fid)).all():
        conn.execute(update(r).where(r.c.FENTRYID == entry_id).values(FREMAINOUTQTY=_dec(qty) - r.c.FSTOCKOUTQTY))
    refresh_header_totals(conn, "T_SAL_ORDER", fid)


def _outstock(conn: Connection, fid: int) -> None:
    _line_amounts(conn, "T_SAL_OUTSTOCKENTRY", "T_SAL_OUTSTOCKENTRY_F", fid, "FREALQTY")
    r = TABLES["T_SAL_OUTSTOCKENTRY_R"]
    conn.execute(
        update(r)
        .where(r.c.FID == fid, r.c.FSOORDERNO != " ", r.c.FSRCBILLNO == " ")
        .values(FSRCBILLNO=r.c.FSOORDERNO, FSRCTYPE="SAL_SaleOrder")
    )
    refresh_header_totals(conn, "T_SAL_OUTSTOCK", fid)


def _receipt(conn: Connection, fid: int) -> None:
    h, e = TABLES["T_AR_RECEIVEBILL"], TABLES["T_AR_RECEIVEBILLENTRY"]
    conn.execute(update(e).where(e.c.FID == fid, e.c.FREALRECAMOUNT == 0).values(FREALRECAMOUNT=e.c.FREALRECAMOUNTFOR))
    total = conn.execute(select(func.sum(e.c.FREALRECAMOUNTFOR)).where(e.c.FID == fid)).scalar() or 0
    conn.execute(update(h).where(h.c.FID == fid).values(FRECEIVEAMOUNTFOR=total, FRECEIVEAMOUNT=total))


def _invoice(header: str) -> Any:
    def derive(conn: Connection, fid: int) -> None:
        h, e = TABLES[header], TABLES[f"{header}ENTRY"]
        rows = conn.execute(
            select(e.c.FENTRYID, e.c.FPRICEQTY, e.c.FPRICE, e.c.FTAXPRICE, e.c.FTAXRATE).where(e.c.FID == fid)
        ).all()
        for entry_id, qty, price, tax_price, rate in rows:
            a = line_amounts(_dec(qty), _tax_price(_dec(price), _dec(tax_price), _dec(rate)), _dec(rate))
            conn.execute(
                update(e)
                .where(e.c.FENTRYID == entry_id)
                .values(
                    FPRICE=a["FPRICE"],
                    FTAXPRICE=a["FTAXPRICE"],
                    FAMOUNTFOR=a["FAMOUNT"],
                    FALLAMOUNTFOR=a["FALLAMOUNT"],
                )  # fmt: skip
            )
        total = conn.execute(select(func.sum(e.c.FALLAMOUNTFOR)).where(e.c.FID == fid)).scalar() or 0
        conn.execute(update(h).where(h.c.FID == fid).values(FAFTERTOTALTAXFOR=total))

    return derive


def _expense(conn: Connection, fid: int) -> None:
    h, e = TABLES["T_ER_EXPREIMBURSE"], TABLES["T_ER_EXPREIMBURSEENTRY"]
    conn.execute(update(e).where(e.c.FID == fid, e.c.FEXPAMOUNT == 0).values(FEXPAMOUNT=e.c.FREQAMOUNT))
    req, exp = conn.execute(select(func.sum(e.c.FREQAMOUNT), func.sum(e.c.FEXPAMOUNT)).where(e.c.FID == fid)).one()
    conn.execute(update(h).where(h.c.FID == fid).values(FREQAMOUNTSUM=req or 0, FEXPAMOUNTSUM=exp or 0))


DERIVE = {
    "SAL_SaleOrder": _sales_order,
    "SAL_OUTSTOCK": _outstock,
    "AR_RECEIVEBILL": _receipt,
    "IV_SALESIC": _invoice("T_IV_SALESIC"),
    "IV_SALESOC": _invoice("T_IV_SALESOC"),
    "ER_ExpReimbursement": _expense,
}


def derive(conn: Connection, form: FormDef, doc_id: Any) -> None:
    step = DERIVE.get(form.form_id)
    if step is not None:
        step(conn, doc_id)
