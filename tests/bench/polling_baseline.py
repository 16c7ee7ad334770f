"""The polling baseline: how the case's integration platform syncs materials (an ``ExecuteBillQuery``-style query
with a ``{{LAST_SYNC_TIME}}`` filter and paging, on a fixed schedule), written to the CRM the same way cdchub does.

It reads the database directly with the query ExecuteBillQuery runs rather than over HTTP, which only favours the
baseline.  It sees neither deletes nor intermediate states, which is part of why logs beat polling.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, select

from connectors.kingdee import models as m
from connectors.zoho.client import MAX_RECORDS_PER_WRITE, ZohoClient

PAGE = 2000  # ExecuteBillQuery's Limit


class PollingBaseline(threading.Thread):
    def __init__(self, kingdee: Engine, crm: ZohoClient, interval_s: float, overlap_s: float = 1.0) -> None:
        super().__init__(daemon=True, name="polling-baseline")
        self.kingdee = kingdee
        self.crm = crm
        self.interval_s = interval_s
        self.overlap = timedelta(seconds=overlap_s)
        self.stop_event = threading.Event()
        self.last_sync: datetime | None = None
        self.polls = 0

    def query(self, since: datetime | None, start_row: int) -> list[dict]:  # type: ignore[type-arg]
        t, tl = m.T_BD_MATERIAL, m.T_BD_MATERIAL_L
        stmt = (
            select(t.c.FMATERIALID, t.c.FNUMBER, t.c.FFORBIDSTATUS, tl.c.FNAME, tl.c.FSPECIFICATION)
            .join(tl, and_(tl.c.FMATERIALID == t.c.FMATERIALID, tl.c.FLOCALEID == m.LOCALE_ZH_CN))
            .where(t.c.FDOCUMENTSTATUS == "C")
            .order_by(t.c.FMODIFYDATE, t.c.FMATERIALID)
            .offset(start_row)
            .limit(PAGE)
        )
        if since is not None:
            stmt = stmt.where(t.c.FMODIFYDATE >= since - self.overlap)
        with self.kingdee.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def poll_once(self) -> None:
        started = datetime.now()
        start_row = 0
        while True:
            rows = self.query(self.last_sync, start_row)
            for i in range(0, len(rows), MAX_RECORDS_PER_WRITE):
                records = [
                    {"Kingdee_ID": str(r["FMATERIALID"]), "Product_Code": r["FNUMBER"],
                     "Product_Name": r["FNAME"].strip(), "Specification": r["FSPECIFICATION"].strip(),
                     "Product_Active": r["FFORBIDSTATUS"] == "A"}
                    for r in rows[i : i + MAX_RECORDS_PER_WRITE]
                ]
                self.crm.upsert("Products", records, ["Kingdee_ID"])
            if len(rows) < PAGE:
                break
            start_row += PAGE
        self.last_sync = started
        self.polls += 1

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            self.poll_once()
            next_at += self.interval_s
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))
