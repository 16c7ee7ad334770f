"""Bill numbers (单据编号) as the demo installation's coding rules make them: a prefix and a zero-padded sequence.

``next_bill_no`` continues the highest number in the table (``XSDD000042`` → ``XSDD000043``), as the WebAPI
simulator's Save does when no number is sent.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from connectors.kingdee.models import TABLES

BILL_PREFIX = {
    "T_SAL_ORDER": ("XSDD", 6),
    "T_SAL_OUTSTOCK": ("XSCKD", 6),
    "T_AR_RECEIVEBILL": ("SKD", 8),
    "T_IV_SALESIC": ("XSZYFP", 6),
    "T_IV_SALESOC": ("XSPTFP", 6),
}
"""Header table → (prefix, digits)."""


def format_bill_no(table: str, sequence: int) -> str:
    prefix, width = BILL_PREFIX[table]
    return f"{prefix}{sequence:0{width}d}"


def next_bill_no(conn: Connection, table: str) -> str:
    """The number after the highest one of ``table`` (the first one if there is none)."""
    prefix, _ = BILL_PREFIX[table]
    col = TABLES[table].c.FBILLNO
    numbers = conn.execute(select(col).where(col.like(f"{prefix}%"))).scalars()
    last = max((int(n[len(prefix) :]) for n in numbers if n and n[len(prefix) :].isdigit()), default=0)
    return format_bill_no(table, last + 1)
