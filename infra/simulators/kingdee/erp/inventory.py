"""即时库存 (inventory): one row per material, warehouse and lot, adjusted by stock movements.

Pitfall: the seed's inventory rows are a separate snapshot, outbounds written by the write helpers do not
decrement them; the WebAPI simulator's audit of an outbound does (``status_ops``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from connectors.kingdee import models as m
from infra.simulators.kingdee.erp.amounts import to_decimal
from infra.simulators.kingdee.erp.company import ORG_ID, STOCK_STATUS_AVAILABLE
from infra.simulators.kingdee.erp.transaction import kingdee_time, transaction


def inventory_row(
    fid: str,
    material_id: int,
    stock_id: int,
    lot_id: int,
    unit_id: int,
    qty: Decimal,
    ts: datetime,
    produce: datetime | None = None,
    expiry: datetime | None = None,
) -> dict[str, Any]:
    """A 即时库存 row of the demo organisation (keeper and owner), stock status available."""
    return {
        "FID": fid,
        "FSTOCKORGID": ORG_ID,
        "FKEEPERTYPEID": "BD_KeeperOrg",
        "FKEEPERID": ORG_ID,
        "FOWNERTYPEID": "BD_OwnerOrg",
        "FOWNERID": ORG_ID,
        "FSTOCKID": stock_id,
        "FSTOCKLOCID": 0,
        "FSTOCKSTATUSID": STOCK_STATUS_AVAILABLE,
        "FMATERIALID": material_id,
        "FLOT": lot_id,
        "FBASEUNITID": unit_id,
        "FBASEQTY": qty,
        "FBASELOCKQTY": Decimal(0),
        "FSTOCKUNITID": unit_id,
        "FQTY": qty,
        "FPRODUCEDATE": produce,
        "FEXPIRYDATE": expiry,
        "FUPDATETIME": ts,
    }


def adjust_inventory(
    bind: Connection | Engine,
    material_id: int,
    stock_id: int,
    delta: Decimal | int | float | str,
    *,
    lot_id: int = 0,
    unit_id: int = 0,
    now: datetime | None = None,
) -> str:
    """Add ``delta`` to the 即时库存 row of material, warehouse and lot (created if missing); returns FID."""
    ts = kingdee_time(now)
    t = m.T_STK_INVENTORY
    with transaction(bind) as conn:
        where = (t.c.FMATERIALID == material_id, t.c.FSTOCKID == stock_id, t.c.FLOT == lot_id)
        fid = conn.execute(select(t.c.FID).where(*where).order_by(t.c.FID).limit(1)).scalar()
        if fid is None:
            fid = uuid.uuid4().hex
            conn.execute(
                insert(t), [inventory_row(fid, material_id, stock_id, lot_id, unit_id, to_decimal(delta), ts)]
            )
        else:
            conn.execute(
                update(t)
                .where(t.c.FID == fid)
                .values(
                    FBASEQTY=t.c.FBASEQTY + to_decimal(delta), FQTY=t.c.FQTY + to_decimal(delta), FUPDATETIME=ts
                )
            )
        return str(fid)
