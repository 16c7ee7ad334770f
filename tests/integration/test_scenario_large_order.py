"""The case's scenario end to end, across flows, on the real stack: a customer's large order is placed in the CRM →
appears in Kingdee → is audited there → outbound is created and audited → the CRM order shows delivery per line;
part of the delivery is deleted → the CRM reflects it."""

from __future__ import annotations

from decimal import Decimal

from infra.simulators.kingdee.erp import (
    OutstockLine,
    SalesOrderRef,
    delete_outstock,
    insert_outstock,
    set_document_status,
)
from tests.integration.harness import IsolatedEnv, wait_for
from tests.integration.test_crm_orders_to_kingdee import crm_get, kingdee_orders, start


def delivered(env: IsolatedEnv, order_id: str) -> list:
    return [line.get("Delivered_Qty") for line in crm_get(env, order_id)["Ordered_Items"]]


def test_a_large_crm_order_through_kingdee_audit_and_delivery_back_to_the_crm(env: IsolatedEnv) -> None:
    _, products, account = start(env)  # Kingdee API, capture, customers, materials, the CRM poller
    for flow in ("crm_orders_to_kingdee", "sales_orders", "deliveries"):
        env.flow(flow)
    oid = env.zoho.human_create("Sales_Orders", {
        "Subject": "协和医院 年度麻醉耗材采购", "Account_Name": {"id": account}, "Status": "Confirmed",
        "Ordered_Items": [{"Product_Name": {"id": products["1.01.0001"]}, "Quantity": 500, "List_Price": 18},
                          {"Product_Name": {"id": products["1.01.0002"]}, "Quantity": 200, "List_Price": 95}],
    })
    order = wait_for(lambda: kingdee_orders(env).get(oid), 60, "the CRM order in Kingdee")
    assert [(m, q) for m, q, _ in order["lines"]] == [("1.01.0001", Decimal(500)), ("1.01.0002", Decimal(200))]

    set_document_status(env.kingdee, "T_SAL_ORDER", int(order["fid"]), "C")  # audited in Kingdee
    wait_for(lambda: crm_get(env, oid).get("Kingdee_Status") == "Audited", 60, "the audit shown in the CRM")
    entries = [int(e) for _, _, e in order["lines"]]
    ref = SalesOrderRef(int(order["fid"]), order["number"], tuple(entries))
    first = insert_outstock(env.kingdee, ref, [OutstockLine(entries[0], 300), OutstockLine(entries[1], 200)])
    wait_for(lambda: delivered(env, oid) == [300, 200], 60, "the first outbound per line in the CRM")
    assert crm_get(env, oid)["Delivery_Status"] == "Partially Delivered"
    second = insert_outstock(env.kingdee, ref, [OutstockLine(entries[0], 200)])
    wait_for(lambda: delivered(env, oid) == [500, 200] and crm_get(env, oid)["Delivery_Status"] == "Delivered",
             60, "fully delivered")

    delete_outstock(env.kingdee, second.fid)  # part of the delivery is deleted in Kingdee
    wait_for(lambda: delivered(env, oid) == [300, 200]
             and crm_get(env, oid)["Delivery_Status"] == "Partially Delivered", 60, "the deletion reflected")
    # the delivery record and the order's quantities are two independent writes: either may land first
    records = wait_for(lambda: (rs := {r["Kingdee_Outbound_ID"]: r for r in env.zoho.records("Deliveries")})
                       and rs[str(second.fid)]["Deleted_In_Kingdee"] is True and rs, 30, "the delivery marked deleted")
    assert records[str(first.fid)].get("Deleted_In_Kingdee") in (False, None)
    assert len(env.zoho.records("Sales_Orders")) == 1, "one CRM order throughout, never a second"
