"""Sales orders, CRM → Kingdee (flows/crm_orders_to_kingdee.py), on the real stack with the Kingdee WebAPI simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import text

from infra.simulators.kingdee.erp import insert_customer, insert_material
from tests.integration.harness import IsolatedEnv, KingdeeSim, holds_for, wait_for

QUIET_S = 3.0


def kingdee_orders(env: IsolatedEnv) -> dict[str, dict[str, Any]]:
    """Orders in the Kingdee database by the CRM order they came from (the link field cdchub writes; Kingdee's coding
    rule numbers them): number, customer number, status, lines (material number, qty)."""
    with env.kingdee.connect() as conn:
        heads = conn.execute(text(
            'SELECT o."FID", o."FBILLNO", o."F_CDC_CRMORDERID" AS crm, o."FDOCUMENTSTATUS", c."FNUMBER" AS cust '
            'FROM "T_SAL_ORDER" o '
            'JOIN "T_BD_CUSTOMER" c ON c."FCUSTID" = o."FCUSTID"')).all()
        lines = conn.execute(text(
            'SELECT e."FID", e."FENTRYID", e."FSEQ", e."FQTY", m."FNUMBER" AS mat FROM "T_SAL_ORDERENTRY" e '
            'JOIN "T_BD_MATERIAL" m ON m."FMATERIALID" = e."FMATERIALID" ORDER BY e."FID", e."FSEQ"')).all()
    out = {}
    for h in heads:
        out[h.crm.strip()] = {
            "fid": str(h.FID), "number": h.FBILLNO.strip(), "status": h.FDOCUMENTSTATUS, "customer": h.cust.strip(),
            "lines": [(r.mat.strip(), Decimal(r.FQTY).normalize(), str(r.FENTRYID)) for r in lines if r.FID == h.FID],
        }
    return out


def qty(order: dict[str, Any]) -> list[tuple[str, Decimal]]:
    return [(m, q) for m, q, _ in order["lines"]]


def start(env: IsolatedEnv) -> tuple[KingdeeSim, dict[str, str], str]:
    """Kingdee API, capture, master data in the CRM, the poller on Sales_Orders; returns products and the account."""
    customer = insert_customer(env.kingdee, "CUST0001", "北京协和医院")
    m1 = insert_material(env.kingdee, "1.01.0001", "一次性使用喉罩", "成人 4#")
    m2 = insert_material(env.kingdee, "1.01.0002", "麻醉面罩", "成人 5#")
    kingdee = env.start_kingdee_api()
    env.capture()
    env.flow("customers")
    env.flow("materials")
    env.poller('["Sales_Orders"]')
    products = wait_for(lambda: (p := env.zoho.by_kingdee_id()) and {str(m1), str(m2)} <= set(p) and p, 60,
                        "products in the CRM")
    account = wait_for(lambda: next((a["id"] for a in env.zoho.records("Accounts")
                                     if a.get("Kingdee_Customer_ID") == str(customer)), None), 60, "the account")
    return kingdee, {"1.01.0001": products[str(m1)]["id"], "1.01.0002": products[str(m2)]["id"]}, account


def crm_order(env: IsolatedEnv, account: str, products: dict[str, str], status: str = "Confirmed") -> str:
    return env.zoho.human_create("Sales_Orders", {
        "Subject": "协和医院 2026 Q4 麻醉耗材", "Account_Name": {"id": account}, "Status": status,
        "Ordered_Items": [{"Product_Name": {"id": products["1.01.0001"]}, "Quantity": 100, "List_Price": 20},
                          {"Product_Name": {"id": products["1.01.0002"]}, "Quantity": 30, "List_Price": 100}],
    })


def crm_get(env: IsolatedEnv, order_id: str) -> dict[str, Any]:
    return next(r for r in env.zoho.records("Sales_Orders") if r["id"] == order_id)


def test_a_confirmed_crm_order_is_created_in_kingdee_edited_until_audited_then_refused_with_a_note(
        env: IsolatedEnv) -> None:
    kingdee, products, account = start(env)
    env.flow("crm_orders_to_kingdee")
    env.flow("sales_orders")  # the other direction runs too: it must not re-create or fight the order

    draft = crm_order(env, account, products, status="Created")
    oid = crm_order(env, account, products)
    bill = oid
    order = wait_for(lambda: kingdee_orders(env).get(bill), 60, "the order in Kingdee")
    assert order["number"].startswith("XSDD"), "numbered by Kingdee's coding rule, not by the number asked for"
    assert order["customer"] == "CUST0001" and order["status"] == "A"
    assert qty(order) == [("1.01.0001", Decimal(100)), ("1.01.0002", Decimal(30))]
    crm = wait_for(lambda: (o := crm_get(env, oid)).get("Kingdee_Order_ID") and o, 30, "the write-back")
    assert crm["Kingdee_Bill_No"] == order["number"] and crm["Kingdee_Order_ID"] == order["fid"]
    assert [r["Kingdee_Entry_ID"] for r in crm["Ordered_Items"]] == [e for *_, e in order["lines"]]
    assert draft not in kingdee_orders(env), "an unconfirmed order stays in the CRM"
    saves = kingdee.calls("DynamicFormService.Save")
    holds_for(lambda: kingdee.calls("DynamicFormService.Save") == saves and len(kingdee_orders(env)) == 1,
              QUIET_S, "no echo of the write-back")

    # an edit before the audit reaches Kingdee: a quantity changed, a line removed (not sent), a line added
    rows = crm["Ordered_Items"]
    env.zoho.human_edit("Sales_Orders", oid, {"Ordered_Items": [
        {"id": rows[0]["id"], "Quantity": 120},
        {"Product_Name": {"id": products["1.01.0002"]}, "Quantity": 5, "List_Price": 90}]})
    edited = wait_for(lambda: (o := kingdee_orders(env)[bill]) and qty(o) == [
        ("1.01.0001", Decimal(120)), ("1.01.0002", Decimal(5))] and o, 30, "the edit in Kingdee")
    assert edited["lines"][0][2] == order["lines"][0][2], "the kept line is the same Kingdee entry"
    wait_for(lambda: [r.get("Kingdee_Entry_ID") for r in crm_get(env, oid)["Ordered_Items"]]
             == [e for *_, e in edited["lines"]], 30, "the new line's entry id written back")

    # audited in Kingdee by the clerk: the sales_orders flow updates the same CRM order (no second one), in place:
    # the rep's subject and the CRM's line rows stay (only Kingdee's fields change)
    line_ids = [r["id"] for r in crm_get(env, oid)["Ordered_Items"]]
    clerk = kingdee.clerk()
    clerk.submit("SAL_SaleOrder", ids=[order["fid"]])
    clerk.audit("SAL_SaleOrder", ids=[order["fid"]])
    audited = wait_for(lambda: (o := crm_get(env, oid)).get("Kingdee_Status") == "Audited" and o, 30,
                       "the audit reflected in the CRM")
    assert audited["Subject"] == "协和医院 2026 Q4 麻醉耗材"
    assert [r["id"] for r in audited["Ordered_Items"]] == line_ids
    assert [r["Quantity"] for r in audited["Ordered_Items"]] == [120, 5]
    assert audited["Kingdee_Approved_At"]
    assert len(env.zoho.records("Sales_Orders")) == 2  # the order and the unconfirmed draft

    # a CRM edit now is refused by Kingdee: a note on the CRM order with Kingdee's message, and a dead letter
    rows = crm_get(env, oid)["Ordered_Items"]
    env.zoho.human_edit("Sales_Orders", oid, {"Ordered_Items": [{"id": rows[0]["id"], "Quantity": 200},
                                                                {"id": rows[1]["id"]}]})
    (letter,) = wait_for(lambda: env.dead_letters("crm_orders_to_kingdee"), 30, "the dead letter")
    assert letter["source"]["key"] == oid and "不允许修改" in letter["error"]
    note = wait_for(lambda: [n for n in env.zoho.records("Notes")
                             if (n.get("Parent_Id") or {}).get("id") == oid], 30, "the note")
    assert "不允许修改" in note[0]["Note_Content"] and "已审核" in note[0]["Note_Content"]
    assert qty(kingdee_orders(env)[bill]) == [("1.01.0001", Decimal(120)), ("1.01.0002", Decimal(5))]
    assert len(kingdee_orders(env)) == 1


def test_a_crash_between_the_kingdee_save_and_its_answer_creates_one_order(env: IsolatedEnv) -> None:
    kingdee, products, account = start(env)
    # Kingdee applies the save at once but holds its answer back (a `timeout` rule; a `latency_ms` rule would
    # delay the save itself); the flow is killed while it waits: a crash between the write and its acknowledgement
    kingdee.http.post("/__sim/faults", json={"path_regex": ".*DynamicFormService\\.Save.*", "timeout": True,
                                             "timeout_s": 60, "apply": True, "count": 1}).raise_for_status()
    flow = env.flow("crm_orders_to_kingdee")
    oid = crm_order(env, account, products)
    bill = oid
    wait_for(lambda: bill in kingdee_orders(env), 60, "the order saved in Kingdee")
    flow.kill()
    kingdee.http.delete("/__sim/faults").raise_for_status()
    env.flow("crm_orders_to_kingdee")
    crm = wait_for(lambda: (o := crm_get(env, oid)).get("Kingdee_Order_ID") and o, 60, "the write-back")
    orders = kingdee_orders(env)
    assert list(orders) == [bill], "no second order after the crash"
    # a second Save would have been refused (the number is taken) and dead-lettered, with no write-back
    assert not env.dead_letters("crm_orders_to_kingdee"), "found by its number, not saved again"
    assert crm["Kingdee_Order_ID"] == orders[bill]["fid"] and crm["Kingdee_Bill_No"] == orders[bill]["number"]
    assert qty(orders[bill]) == [("1.01.0001", Decimal(100)), ("1.01.0002", Decimal(30))]
