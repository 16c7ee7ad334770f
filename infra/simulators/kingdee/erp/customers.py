"""客户 (customers) written as Kingdee writes them: header and zh-CN texts (``_L``), in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from connectors.kingdee import models as m
from connectors.kingdee.models import LOCALE_ZH_CN
from infra.simulators.kingdee.erp.company import CURRENCY_CNY, DEMO_USER_ID, ORG_ID, SALES_DEPT_ID
from infra.simulators.kingdee.erp.status import audit_columns
from infra.simulators.kingdee.erp.transaction import insert_rows, kingdee_time, transaction


def customer_rows(
    ids: tuple[int, int],
    number: str,
    name: str,
    short_name: str,
    *,
    status: str,
    forbid: str,
    cust_type_id: str,
    invoice_type: str,
    tel: str,
    address: str,
    tax_code: str,
    seller_id: int,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one customer, ``ids`` = (FCUSTID, ``_L`` FPKID)."""
    cust_id, pkid = ids
    return {
        "T_BD_CUSTOMER": [
            {
                "FCUSTID": cust_id,
                "FNUMBER": number,
                "FMASTERID": cust_id,
                "FCREATEORGID": ORG_ID,
                "FUSEORGID": ORG_ID,
                **audit_columns(status, created, modified, None, user),
                "FFORBIDSTATUS": forbid,
                "FFORBIDDERID": user if forbid == "B" else 0,
                "FFORBIDDATE": modified if forbid == "B" else None,
                "FCUSTTYPEID": cust_type_id,
                "FSELLER": seller_id,
                "FSALDEPTID": SALES_DEPT_ID,
                "FTRADINGCURRID": CURRENCY_CNY,
                "FINVOICETYPE": invoice_type,
                "FTEL": tel,
                "FADDRESS": address,
                "FTAXREGISTERCODE": tax_code,
            }
        ],
        "T_BD_CUSTOMER_L": [
            {
                "FPKID": pkid,
                "FCUSTID": cust_id,
                "FLOCALEID": LOCALE_ZH_CN,
                "FNAME": name,
                "FSHORTNAME": short_name,
            }
        ],
    }


def insert_customer(
    bind: Connection | Engine,
    number: str,
    name: str,
    short_name: str = " ",
    *,
    status: str = "C",
    forbid: str = "A",
    cust_type_id: str = " ",
    invoice_type: str = "2",
    tel: str = " ",
    address: str = " ",
    tax_code: str = " ",
    seller_id: int = 0,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> int:
    """Insert one customer (header and zh-CN texts) in one transaction; returns its ``FCUSTID``."""
    ts = kingdee_time(now)
    with transaction(bind) as conn:
        ids = (m.next_ids(conn, "T_BD_CUSTOMER", 1)[0], m.next_ids(conn, "T_BD_CUSTOMER_L", 1)[0])
        rows = customer_rows(
            ids,
            number,
            name,
            short_name,
            status=status,
            forbid=forbid,
            cust_type_id=cust_type_id,
            invoice_type=invoice_type,
            tel=tel,
            address=address,
            tax_code=tax_code,
            seller_id=seller_id,
            created=ts,
            modified=ts,
            user=user_id,
        )
        insert_rows(conn, rows)
        return ids[0]
