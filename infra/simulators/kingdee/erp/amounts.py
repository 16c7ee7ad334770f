"""Amounts as K/3 Cloud computes them: line amounts from a tax-included price, header (财务) totals of the lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, func, select, update

from connectors.kingdee.models import TABLES
from infra.simulators.kingdee.erp.company import CURRENCY_CNY


def to_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def line_amounts(qty: Decimal, tax_price: Decimal, tax_rate: Decimal) -> dict[str, Decimal]:
    """Line amounts as Kingdee computes them from a tax-included price: all-amount first, tax split off."""
    all_amount = cents(qty * tax_price)
    amount = cents(all_amount / (1 + tax_rate / 100))
    price = (tax_price / (1 + tax_rate / 100)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    return {
        "FPRICE": price,
        "FTAXPRICE": tax_price,
        "FTAXRATE": tax_rate,
        "FAMOUNT": amount,
        "FTAXAMOUNT": all_amount - amount,
        "FALLAMOUNT": all_amount,
    }


def header_totals_row(fin_id: int, fid: int, lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The 财务 row (``…FIN``) of a bill whose line amounts are ``lines``."""
    return {
        "FENTRYID": fin_id,
        "FID": fid,
        "FSETTLECURRID": CURRENCY_CNY,
        "FEXCHANGERATE": Decimal(1),
        "FBILLAMOUNT": sum((r["FAMOUNT"] for r in lines), Decimal(0)),
        "FBILLTAXAMOUNT": sum((r["FTAXAMOUNT"] for r in lines), Decimal(0)),
        "FBILLALLAMOUNT": sum((r["FALLAMOUNT"] for r in lines), Decimal(0)),
    }


def refresh_header_totals(conn: Connection, header: str, fid: int) -> None:
    """Recompute the 财务 totals of bill ``fid`` (``header`` e.g. ``T_SAL_ORDER``) from its ``ENTRY_F`` lines."""
    split, fin = TABLES[f"{header}ENTRY_F"], TABLES[f"{header}FIN"]
    sums = conn.execute(
        select(func.sum(split.c.FAMOUNT), func.sum(split.c.FTAXAMOUNT), func.sum(split.c.FALLAMOUNT)).where(
            split.c.FID == fid
        )
    ).one()
    conn.execute(
        update(fin)
        .where(fin.c.FID == fid)
        .values(FBILLAMOUNT=sums[0] or 0, FBILLTAXAMOUNT=sums[1] or 0, FBILLALLAMOUNT=sums[2] or 0)
    )
