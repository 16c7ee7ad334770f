"""The demo company's users (T_SEC_USER): reference data every installation has, written idempotently."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select

from connectors.kingdee import models as m
from infra.simulators.kingdee.erp.company import USERS
from infra.simulators.kingdee.erp.transaction import kingdee_time, transaction


def ensure_users(bind: Connection | Engine, now: datetime | None = None) -> int:
    """Insert the demo company's users that are missing (idempotent); returns how many were added."""
    with transaction(bind) as conn:
        present = set(conn.execute(select(m.T_SEC_USER.c.FUSERID)).scalars())
        rows = [{"FUSERID": uid, "FNAME": name, "FUSERACCOUNT": account, "FMODIFYDATE": kingdee_time(now)}
                for uid, (name, account) in USERS.items() if uid not in present]
        if rows:
            conn.execute(insert(m.T_SEC_USER), rows)
        return len(rows)
