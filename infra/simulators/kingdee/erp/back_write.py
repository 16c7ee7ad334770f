"""反写 (back-write): an audited outbound's delivered quantities written back to its sales order's lines.

The order's ``_R`` rows (出库数量, 剩余未出数量) move by the quantities delivered; an order with nothing left to
deliver is closed (业务关闭), and one that has something again (an outbound un-audited or deleted) is reopened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, func, select, update

from connectors.kingdee import models as m


def back_write_deliveries(
    conn: Connection, order_fid: int, deliveries: Sequence[tuple[int, Decimal]], ts: datetime, user_id: int
) -> None:
    """Add ``(order entry id, quantity)`` deliveries (negative to take back) to the order's ``_R`` rows; close or
    reopen the order."""
    r, h = m.T_SAL_ORDERENTRY_R, m.T_SAL_ORDER
    for entry_id, qty in deliveries:
        conn.execute(
            update(r)
            .where(r.c.FENTRYID == entry_id)
            .values(
                FSTOCKOUTQTY=r.c.FSTOCKOUTQTY + qty,
                FBASESTOCKOUTQTY=r.c.FBASESTOCKOUTQTY + qty,
                FREMAINOUTQTY=r.c.FREMAINOUTQTY - qty,
            )
        )
    open_lines = conn.execute(
        select(func.count()).select_from(r).where(r.c.FID == order_fid, r.c.FREMAINOUTQTY > 0)
    ).scalar_one()
    closed = conn.execute(select(h.c.FCLOSESTATUS).where(h.c.FID == order_fid)).scalar_one() == "B"
    if open_lines == 0 and not closed:
        conn.execute(
            update(h).where(h.c.FID == order_fid).values(FCLOSESTATUS="B", FCLOSERID=user_id, FCLOSEDATE=ts)
        )
    elif open_lines > 0 and closed:
        conn.execute(
            update(h).where(h.c.FID == order_fid).values(FCLOSESTATUS="A", FCLOSERID=0, FCLOSEDATE=None)
        )
