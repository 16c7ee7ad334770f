"""Sales orders, Kingdee → ZOHO CRM Sales_Orders (with account and product lookups), on the real stack."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from sqlalchemy import text

from connectors.kingdee.models import china_now
from infra.simulators.kingdee.erp import (
    API_USER_ID,
    OrderLine,
    delete_sales_order,
    ensure_users,
    insert_customer,
    insert_material,
    insert_sales_order,
    set_document_status,
    update_order_line,
)
from tests.integration.harness import CAPTURE_MODES, IsolatedEnv, holds_for, wait_for


def orders(env: IsolatedEnv) -> dict[str, dict[str, Any]]:
    return {r["Kingdee_Order_ID"]: r for r in env.zoho.records("Sales_Orders") if r.get("Kingdee_Order_ID")}


def order_where(env: IsolatedEnv, fid: int, what: str, check: Any, timeout_s: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (o := orders(env).get(str(fid))) is not None and check(o) and o, timeout_s, what)


def set_header(env: IsolatedEnv, fid: int, **values: str) -> None:
    """A Kingdee save of header fields: the modified time moves, on Kingdee's clock (China time)."""
    sets = ", ".join(f'"{k}" = :{k}' for k in values)
    with env.kingdee.begin() as conn:
        conn.execute(text(f'UPDATE "T_SAL_ORDER" SET {sets}, "FMODIFYDATE" = :modified WHERE "FID" = :fid'),
                     {**values, "fid": fid, "modified": china_now()})


def kingdee_approved_at(env: IsolatedEnv, fid: int) -> str:
    """The order's FAPPROVEDATE as the CRM shows it: China time with its offset, to the second."""
    with env.kingdee.connect() as conn:
        value = conn.execute(text('SELECT "FAPPROVEDATE" FROM "T_SAL_ORDER" WHERE "FID" = :f'), {"f": fid}).scalar_one()
    return str(value.replace(microsecond=0).isoformat()) + "+08:00"


def upserts(env: IsolatedEnv) -> int:
    return sum(1 for r in env.zoho.requests() if r["path"].endswith("/Sales_Orders/upsert"))


@pytest.mark.parametrize("env", CAPTURE_MODES, indirect=True)
def test_orders_reach_the_crm_linked_with_status_changes_and_a_replay_writes_nothing(env: IsolatedEnv) -> None:
    ensure_users(env.kingdee)
    customer = insert_customer(env.kingdee, "CUST0001", "北京协和医院")
    m1 = insert_material(env.kingdee, "1.01.0001", "一次性使用喉罩", "成人 4#")
    m2 = insert_material(env.kingdee, "1.01.0002", "麻醉面罩", "成人 5#")
    first = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 10, "20"), OrderLine(m2, 3, "113")])
    draft = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 1, "20")], status="A")
    env.capture()
    env.flow("customers")
    env.flow("materials")
    flow = env.flow("sales_orders")

    crm = order_where(env, first.fid, "the audited order in the CRM", lambda o: True, 90)
    account = {r["Kingdee_Customer_ID"]: r for r in env.zoho.records("Accounts")}[str(customer)]
    products = env.zoho.by_kingdee_id()
    assert crm["Subject"] == crm["Kingdee_Bill_No"] == first.bill_no
    assert crm["Account_Name"]["id"] == account["id"]
    assert crm["Kingdee_Status"] == "Audited" and crm["Deleted_In_Kingdee"] is False
    approved_at = kingdee_approved_at(env, first.fid)
    assert crm["Kingdee_Approver"] == "王静" and crm["Kingdee_Approved_At"] == approved_at, "finance's audit shown"
    lines = crm["Ordered_Items"]
    assert [line["Product_Name"]["id"] for line in lines] == [products[str(m1)]["id"], products[str(m2)]["id"]]
    assert [line["Quantity"] for line in lines] == [10, 3]
    assert [line["Kingdee_Entry_ID"] for line in lines] == [str(e) for e in first.entry_ids]
    assert lines[0]["Amount_With_Tax"] == 200 and lines[1]["Tax_Price"] == 113
    assert str(draft.fid) not in orders(env), "an order never audited is not sent"

    row_ids = [line["id"] for line in lines]
    update_order_line(env.kingdee, first.entry_ids[0], qty=12)
    crm = order_where(env, first.fid, "the edited quantity", lambda o: o["Ordered_Items"][0]["Quantity"] == 12)
    assert [line["id"] for line in crm["Ordered_Items"]] == row_ids, "CRM line ids are kept across updates"

    set_document_status(env.kingdee, "T_SAL_ORDER", first.fid, "D")
    order_where(env, first.fid, "un-audited", lambda o: o["Kingdee_Status"] == "Un-audited"
                and not o.get("Kingdee_Approver") and not o.get("Kingdee_Approved_At"))
    set_document_status(env.kingdee, "T_SAL_ORDER", first.fid, "C", user_id=API_USER_ID)
    order_where(env, first.fid, "re-audited by another user", lambda o: o["Kingdee_Approver"] == "集成接口"
                and o["Kingdee_Approved_At"] == kingdee_approved_at(env, first.fid))
    set_header(env, first.fid, FCLOSESTATUS="B")
    order_where(env, first.fid, "closed", lambda o: o["Kingdee_Status"] == "Closed")

    second = insert_sales_order(env.kingdee, customer, [OrderLine(m2, 1, "113")])
    order_where(env, second.fid, "a second order", lambda o: o["Kingdee_Status"] == "Audited")
    set_document_status(env.kingdee, "T_SAL_ORDER", second.fid, "D")
    set_header(env, second.fid, FCANCELSTATUS="B")
    order_where(env, second.fid, "voided", lambda o: o["Kingdee_Status"] == "Voided")
    delete_sales_order(env.kingdee, second.fid)
    order_where(env, second.fid, "deleted, marked", lambda o: o["Deleted_In_Kingdee"] is True
                and o["Kingdee_Status"] == "Deleted")

    odd = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 1, "20")])
    order_where(env, odd.fid, "a third order", lambda o: True)
    set_header(env, odd.fid, FCLOSESTATUS="X")
    letters = wait_for(lambda: [d for d in env.dead_letters("sales_orders") if d["source"]["key"] == str(odd.fid)],
                       30, "the unknown close status dead-lettered")
    assert "'X'" in letters[0]["error"] and "FCLOSESTATUS" in letters[0]["error"]

    # Replay everything from the start (recovery state removed): the ledger makes it write nothing.
    flow.stop()
    shutil.rmtree(env.settings.state_dir / "recovery" / "sales_orders")
    before = upserts(env)
    env.flow("sales_orders")
    update_order_line(env.kingdee, first.entry_ids[1], qty=4)  # same key, same partition: lands after the replay
    order_where(env, first.fid, "a change after the replay", lambda o: o["Ordered_Items"][1]["Quantity"] == 4)
    holds_for(lambda: upserts(env) == before + 1, 3, "one upsert: the new change, nothing replayed")
    assert len(env.zoho.records("Sales_Orders")) == 3, "no duplicates"


def test_an_order_waits_for_its_customer_and_one_whose_material_never_syncs_is_dead_lettered(
        env: IsolatedEnv) -> None:
    env.env["CDCHUB_REFERENCE_WAIT_S"] = "10"
    customer = insert_customer(env.kingdee, "CUST0002", "上海瑞金医院")
    synced = insert_material(env.kingdee, "1.02.0001", "呼吸过滤器", "成人型")
    never = insert_material(env.kingdee, "1.02.0002", "草稿物料", "—", status="A")  # never audited, never synced
    waits = insert_sales_order(env.kingdee, customer, [OrderLine(synced, 5, "30")])
    stuck = insert_sales_order(env.kingdee, customer, [OrderLine(synced, 1, "30"), OrderLine(never, 2, "50")])
    env.capture()
    env.flow("materials")
    env.flow("sales_orders")

    wait_for(lambda: str(synced) in env.zoho.by_kingdee_id(), 60, "the material in the CRM")
    holds_for(lambda: not orders(env), 2, "no order before its customer is in the CRM")
    env.flow("customers")
    crm = order_where(env, waits.fid, "the waiting order, once its customer arrived", lambda o: True, 30)
    assert crm["Ordered_Items"][0]["Quantity"] == 5

    letters = wait_for(lambda: [d for d in env.dead_letters("sales_orders") if d["source"]["key"] == str(stuck.fid)],
                       40, "the order with a material that never syncs dead-lettered")
    assert letters[0]["stage"] == "resolve"
    assert "1.02.0002" in letters[0]["error"] and "1.02.0001" not in letters[0]["error"], letters[0]["error"]
    assert str(stuck.fid) not in orders(env)
