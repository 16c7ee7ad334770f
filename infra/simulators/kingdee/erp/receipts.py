"""收款单 (receipts) pushed down from a sales order, written audited."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, Engine, insert

from connectors.kingdee import models as m
from connectors.kingdee.models import TABLES
from infra.simulators.kingdee.erp.company import DEMO_USER_ID
from infra.simulators.kingdee.erp.transaction import transaction


def insert_receipt(bind: Connection | Engine, customer: int, order_no: str, amount: str, bill_no: str) -> int:
    """An audited receipt of ``amount`` from ``customer`` for the sales order ``order_no``, pushed down from it (one
    source entry naming the order)."""
    with transaction(bind) as conn:
        fid = m.next_ids(conn, "T_AR_RECEIVEBILL", 1)[0]
        conn.execute(insert(TABLES["T_AR_RECEIVEBILL"]).values(
            FID=fid, FBILLNO=bill_no, FDOCUMENTSTATUS="C", FCANCELSTATUS="A", FCONTACTUNITTYPE="BD_Customer",
            FAPPROVERID=DEMO_USER_ID, FAPPROVEDATE=m.china_now(),
            FCONTACTUNIT=customer, FRECEIVEAMOUNTFOR=Decimal(amount), FRECEIVEAMOUNT=Decimal(amount)))
        conn.execute(insert(TABLES["T_AR_RECEIVEBILLENTRY"]).values(
            FENTRYID=m.next_ids(conn, "T_AR_RECEIVEBILLENTRY", 1)[0], FID=fid, FSEQ=1,
            FREALRECAMOUNTFOR=Decimal(amount), FREALRECAMOUNT=Decimal(amount), FSALEORDERNO=order_no))
        conn.execute(insert(TABLES["T_AR_RECEIVEBILLSRCENTRY"]).values(
            FENTRYID=m.next_ids(conn, "T_AR_RECEIVEBILLSRCENTRY", 1)[0], FID=fid, FSEQ=1,
            FSRCBILLTYPEID="SAL_SaleOrder", FSRCBILLNO=order_no, FORDERBILLNO=order_no,
            FREALRECAMOUNT=Decimal(amount)))
    return fid
