"""What the ERP clerk does in Kingdee (through the WebAPI) and what the ERP then holds (read from its database, as an
observer).  Documents carry what this installation's forms require (bill type, organisation, date)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text

from connectors.kingdee.client import KingdeeWebApiClient

REQUIRED_ORDER = {"FBillTypeID": {"FNumber": "XSDD01_SYS"}, "FSaleOrgId": {"FNumber": "100"}}
WAREHOUSE = "CK001"  # 成品仓


def save_submit_audit(clerk: KingdeeWebApiClient, form: str, model: dict[str, Any]) -> tuple[int, str]:
    """The clerk's ordinary path: Save, Submit, Audit; the document's id and number."""
    saved = clerk.save(form, model)
    fid, number = int(saved.ids[0]), str(saved.numbers[0])
    clerk.submit(form, ids=[fid])
    clerk.audit(form, ids=[fid])
    return fid, number


def sales_order(clerk: KingdeeWebApiClient, customer: str, lines: list[tuple[str, int, int]]) -> tuple[int, str]:
    """A sales order keyed and audited by the clerk: (material number, quantity, price with tax) per line."""
    return save_submit_audit(clerk, "SAL_SaleOrder", {
        **REQUIRED_ORDER, "FDate": date.today().isoformat(), "FCustId": {"FNumber": customer},
        "FSaleOrderEntry": [{"FMaterialId": {"FNumber": m}, "FQty": q, "FTaxPrice": p, "FUnitID": {"FNumber": "Pcs"}}
                            for m, q, p in lines]})


def order_entries(clerk: KingdeeWebApiClient, fid: int) -> list[int]:
    viewed = clerk.view("SAL_SaleOrder", id=fid)
    return [int(e["Id"]) for e in sorted(viewed["SaleOrderEntry"], key=lambda e: int(e["Seq"]))]


def outbound(clerk: KingdeeWebApiClient, customer: str, order_no: str,
             lines: list[tuple[str, int, int]]) -> tuple[int, str]:
    """An outbound keyed against the order's lines (material number, order entry id, quantity) from the finished
    goods warehouse; saved, submitted, audited."""
    return save_submit_audit(clerk, "SAL_OUTSTOCK", {
        "FDate": date.today().isoformat(), "FCustomerID": {"FNumber": customer},
        "FEntity": [{"FMaterialID": {"FNumber": m}, "FRealQty": q, "FStockID": {"FNumber": WAREHOUSE},
                     "FSrcType": "SAL_SaleOrder", "FSrcBillNo": order_no, "FSoorDerno": order_no,
                     "FSOEntryId": entry} for m, entry, q in lines]})


def one(kingdee: Engine, sql: str, **params: Any) -> Any:
    with kingdee.connect() as conn:
        return conn.execute(text(sql), params).first()


def material_text(kingdee: Engine, fid: int, column: str) -> str | None:
    row = one(kingdee, f'SELECT "{column}" FROM "T_BD_MATERIAL_L" WHERE "FMATERIALID" = :id AND "FLOCALEID" = 2052',
              id=fid)
    return str(row[0]).strip() if row else None


def customer_row(kingdee: Engine, **where: Any) -> Any:
    (column, value), = where.items()
    return one(kingdee, f'SELECT "FCUSTID", "FNUMBER", "FTEL", "FADDRESS" FROM "T_BD_CUSTOMER" WHERE "{column}" = :v',
               v=value)


def order_by_link(kingdee: Engine, crm_order_id: str) -> Any:
    return one(kingdee, 'SELECT "FID", "FBILLNO", "FDOCUMENTSTATUS" FROM "T_SAL_ORDER" WHERE "F_CDC_CRMORDERID" = :v',
               v=crm_order_id)


def stocked_material(kingdee: Engine, at_least: int) -> tuple[str, Decimal]:
    """A material with at least this much in the finished goods warehouse, and its stock over all warehouses."""
    row = one(kingdee, '''
        SELECT m."FNUMBER", (SELECT SUM(a."FBASEQTY") FROM "T_STK_INVENTORY" a WHERE a."FMATERIALID" = m."FMATERIALID")
        FROM "T_BD_MATERIAL" m JOIN "T_STK_INVENTORY" i ON i."FMATERIALID" = m."FMATERIALID"
        JOIN "T_BD_STOCK" s ON s."FSTOCKID" = i."FSTOCKID"
        WHERE s."FNUMBER" = :stock AND m."FDOCUMENTSTATUS" = 'C' AND m."FFORBIDSTATUS" = 'A'
        GROUP BY m."FNUMBER", m."FMATERIALID" HAVING SUM(i."FBASEQTY") >= :n ORDER BY m."FNUMBER" LIMIT 1''',
              stock=WAREHOUSE, n=at_least)
    assert row is not None, f"the demo data has no material with {at_least} in {WAREHOUSE}"
    return str(row[0]).strip(), Decimal(row[1])
