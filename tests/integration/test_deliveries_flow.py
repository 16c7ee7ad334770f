"""Deliveries, Kingdee 销售出库单 → ZOHO CRM Deliveries + delivered quantities per order line, on the real stack."""

from __future__ import annotations

import shutil
from typing import Any

from infra.simulators.kingdee.erp import (
    OrderLine,
    OutstockLine,
    delete_outstock,
    insert_customer,
    insert_material,
    insert_outstock,
    insert_sales_order,
)
from tests.integration.harness import IsolatedEnv, holds_for, wait_for


def crm_order(env: IsolatedEnv, fid: int) -> dict[str, Any] | None:
    return next((r for r in env.zoho.records("Sales_Orders") if r.get("Kingdee_Order_ID") == str(fid)), None)


def order_where(env: IsolatedEnv, fid: int, what: str, check: Any, timeout_s: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (o := crm_order(env, fid)) is not None and check(o) and o, timeout_s, what)


def delivered(order: dict[str, Any]) -> list[float | None]:
    return [line.get("Delivered_Qty") for line in order["Ordered_Items"]]


def deliveries(env: IsolatedEnv) -> dict[str, dict[str, Any]]:
    return {r["Kingdee_Outbound_ID"]: r for r in env.zoho.records("Deliveries") if r.get("Kingdee_Outbound_ID")}


def writes(env: IsolatedEnv) -> int:
    """Calls that write deliveries: Deliveries upserts and Sales_Orders updates (the sales_orders flow upserts)."""
    return sum(1 for r in env.zoho.requests() if r["method"] in ("POST", "PUT")
               and ("/Deliveries" in r["path"] or r["path"].endswith("/Sales_Orders")))


def seed(env: IsolatedEnv) -> tuple[int, int, int]:
    customer = insert_customer(env.kingdee, "CUST0101", "北京协和医院")
    m1 = insert_material(env.kingdee, "1.05.0001", "一次性使用喉罩", "成人 4#")
    m2 = insert_material(env.kingdee, "1.05.0002", "麻醉面罩", "成人 5#")
    return customer, m1, m2


def test_outbounds_are_matched_line_by_line_rolled_back_when_deleted_and_a_replay_writes_nothing(
        env: IsolatedEnv) -> None:
    customer, m1, m2 = seed(env)
    order = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 10, "20"), OrderLine(m2, 3, "113")])
    env.capture()
    env.flow("customers")
    env.flow("materials")
    env.flow("sales_orders")
    flow = env.flow("deliveries")
    crm = order_where(env, order.fid, "the order in the CRM", lambda o: True, 60)
    line_ids = [line["id"] for line in crm["Ordered_Items"]]

    first = insert_outstock(env.kingdee, order, [OutstockLine(order.entry_ids[0], 4),
                                                 OutstockLine(order.entry_ids[1], 3)])
    crm = order_where(env, order.fid, "partly delivered", lambda o: delivered(o) == [4, 3])
    assert crm["Delivery_Status"] == "Partially Delivered"
    record = wait_for(lambda: deliveries(env).get(str(first.fid)), 10, "the delivery record")
    assert record["Name"] == record["Outbound_No"] == first.bill_no
    assert record["Sales_Order"]["id"] == crm["id"] and record["Deleted_In_Kingdee"] is False
    assert record["Delivery_Date"] and record["Account"]["id"]
    assert [(r["Order_Line_ID"], r["Delivered_Qty"]) for r in record["Delivery_Lines"]] == [
        (line_ids[0], 4), (line_ids[1], 3)]

    second = insert_outstock(env.kingdee, order)  # the rest: 6 of line 1; Kingdee closes the order
    crm = order_where(env, order.fid, "fully delivered", lambda o: delivered(o) == [10, 3]
                      and o["Delivery_Status"] == "Delivered")
    wait_for(lambda: str(second.fid) in deliveries(env), 10, "the second delivery record")
    order_where(env, order.fid, "closed, delivered quantities kept",
                lambda o: o["Kingdee_Status"] == "Closed" and delivered(o) == [10, 3])
    assert [line["id"] for line in crm["Ordered_Items"]] == line_ids

    delete_outstock(env.kingdee, first.fid)
    # The order reopens in Kingdee (the sales_orders flow writes that); the lines roll back (the deliveries flow).
    crm = order_where(env, order.fid, "the first outbound rolled back, the order reopened",
                      lambda o: delivered(o) == [6, 0] and o["Kingdee_Status"] == "Audited")
    assert crm["Delivery_Status"] == "Partially Delivered"
    wait_for(lambda: deliveries(env)[str(first.fid)]["Deleted_In_Kingdee"] is True, 10, "the deleted delivery marked")
    assert len(deliveries(env)) == 2

    # Replay everything from the start (recovery state removed): the ledger makes it write nothing.
    flow.stop()
    shutil.rmtree(env.settings.state_dir / "recovery" / "deliveries")
    before = writes(env)
    env.flow("deliveries")
    holds_for(lambda: writes(env) == before, 4, "no writes while the outbounds are replayed")
    third = insert_outstock(env.kingdee, order, [OutstockLine(order.entry_ids[1], 1)])
    order_where(env, order.fid, "a change after the replay", lambda o: delivered(o) == [6, 1])
    wait_for(lambda: str(third.fid) in deliveries(env), 10, "the third delivery record")
    holds_for(lambda: writes(env) == before + 2, 2, "two writes: the new delivery and the order's totals")


def test_an_outbound_waits_for_its_order_and_one_whose_order_never_arrives_is_dead_lettered(
        env: IsolatedEnv) -> None:
    env.env["CDCHUB_REFERENCE_WAIT_S"] = "8"
    customer, m1, _ = seed(env)
    order = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 5, "20")])
    draft = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 2, "20")], status="A")  # never in the CRM
    env.capture()
    env.flow("customers")
    env.flow("materials")
    env.flow("deliveries")
    outbound = insert_outstock(env.kingdee, order, [OutstockLine(order.entry_ids[0], 2)])
    stray = insert_outstock(env.kingdee, draft, back_write=False)
    holds_for(lambda: not deliveries(env), 2, "no delivery before its order is in the CRM")

    env.flow("sales_orders")
    crm = order_where(env, order.fid, "the waiting outbound applied once its order arrived",
                      lambda o: delivered(o) == [2] and o["Delivery_Status"] == "Partially Delivered", 40)
    assert deliveries(env)[str(outbound.fid)]["Sales_Order"]["id"] == crm["id"]

    letters = wait_for(lambda: [d for d in env.dead_letters("deliveries") if d["source"]["key"] == str(stray.fid)],
                       30, "the outbound of an order never in the CRM dead-lettered")
    assert letters[0]["stage"] == "resolve" and draft.bill_no in letters[0]["error"], letters[0]["error"]
    assert str(stray.fid) not in deliveries(env)


def test_a_waiting_outbound_survives_a_crash_of_the_flow(env: IsolatedEnv) -> None:
    customer, m1, m2 = seed(env)
    order = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 5, "20"), OrderLine(m2, 4, "100")])
    env.capture()
    env.flow("customers")
    env.flow("materials")
    flow = env.flow("deliveries")
    waiting = insert_outstock(env.kingdee, order, [OutstockLine(order.entry_ids[0], 3)])
    later = insert_outstock(env.kingdee, order, [OutstockLine(order.entry_ids[1], 4)])
    holds_for(lambda: not deliveries(env), 3, "both outbounds waiting for their order (and a recovery snapshot)")
    flow.kill()  # a crash while the join holds them
    env.flow("deliveries")
    env.flow("sales_orders")
    order_where(env, order.fid, "both waiting outbounds applied after the crash",
                lambda o: delivered(o) == [3, 4] and o["Delivery_Status"] == "Partially Delivered", 60)
    # the delivery records and the order's quantities are two independent writes: either may land first
    wait_for(lambda: set(deliveries(env)) == {str(waiting.fid), str(later.fid)}, 30, "both delivery records")
