"""Outbounds as the ERP clerk keeps them, through the Kingdee WebAPI: Save, Submit, Audit, UnAudit, Delete."""

from __future__ import annotations

import json
from typing import Any

from connectors.kingdee.client import KingdeeWebApiClient
from infra.simulators.kingdee.erp import OrderLine, SalesOrderRef, insert_customer, insert_material, insert_sales_order
from tests.integration.harness import IsolatedEnv, wait_for
from tests.integration.test_deliveries_flow import delivered, deliveries, order_where
from tests.integration.test_trace import cdchub


def keyed_outbound(clerk: KingdeeWebApiClient, order: SalesOrderRef, customer_number: str,
                   lines: list[tuple[str, int, int]]) -> tuple[int, str]:
    """An outbound keyed against the order's lines (material number, entry id, quantity); saved, submitted, audited."""
    saved = clerk.save("SAL_OUTSTOCK", {
        "FDate": "2026-12-07", "FCustomerID": {"FNumber": customer_number},
        "FEntity": [{"FMaterialID": {"FNumber": material}, "FRealQty": qty, "FSrcType": "SAL_SaleOrder",
                     "FSrcBillNo": order.bill_no, "FSoorDerno": order.bill_no, "FSOEntryId": entry_id}
                    for material, entry_id, qty in lines],
    })
    fid, number = int(saved.ids[0]), saved.numbers[0]
    clerk.submit("SAL_OUTSTOCK", ids=[fid])
    clerk.audit("SAL_OUTSTOCK", ids=[fid])
    return fid, number


def live(env: IsolatedEnv, number: str) -> list[dict[str, Any]]:
    return [d for d in deliveries(env).values() if d["Outbound_No"] == number and not d["Deleted_In_Kingdee"]]


def test_an_outbound_unaudited_and_deleted_by_the_clerk_is_marked_deleted_and_its_number_reused_once(
        env: IsolatedEnv) -> None:
    customer = insert_customer(env.kingdee, "CUST0301", "上海瑞金医院")
    m1 = insert_material(env.kingdee, "1.07.0001", "一次性使用喉罩", "成人 4#")
    m2 = insert_material(env.kingdee, "1.07.0002", "麻醉面罩", "成人 5#")
    order = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 5, "20"), OrderLine(m2, 2, "113")])
    kingdee = env.start_kingdee_api()
    env.capture()
    for flow in ("customers", "materials", "sales_orders", "deliveries"):
        env.flow(flow)
    order_where(env, order.fid, "the order in the CRM", lambda o: True, 60)
    clerk = kingdee.clerk()

    fid, number = keyed_outbound(clerk, order, "CUST0301", [("1.07.0001", order.entry_ids[0], 3),
                                                            ("1.07.0002", order.entry_ids[1], 2)])
    order_where(env, order.fid, "delivered after the audit", lambda o: delivered(o) == [3, 2])
    wait_for(lambda: live(env, number), 10, "the live delivery record")

    clerk.unaudit("SAL_OUTSTOCK", ids=[fid])
    clerk.delete("SAL_OUTSTOCK", ids=[fid])
    order_where(env, order.fid, "rolled back after un-audit and delete", lambda o: delivered(o) == [0, 0])
    wait_for(lambda: deliveries(env)[str(fid)]["Deleted_In_Kingdee"] is True, 10, "the deleted delivery marked")

    again, again_number = keyed_outbound(clerk, order, "CUST0301", [("1.07.0001", order.entry_ids[0], 1)])
    assert again_number == number  # Kingdee numbers on from the highest bill left: the deleted one's number again
    order_where(env, order.fid, "the next outbound delivered", lambda o: delivered(o) == [1, 0])
    wait_for(lambda: str(again) in deliveries(env), 10, "the next delivery record")
    assert len(live(env, again_number)) == 1, deliveries(env)

    # the order's trace lists both outbounds with what became of them, and every write of the order
    done = cdchub(env, "trace", order.bill_no, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    outbounds = {d["key"]: d for d in found["related"] if d["kind"] == "outbound"}
    assert set(outbounds) == {str(fid), str(again)}
    assert outbounds[str(fid)]["op"] == "d"
    for key, doc in outbounds.items():
        (sync,) = doc["detail"]["sync"]
        assert sync.startswith("deliveries → zoho ") and sync.endswith(": written"), (key, sync)
    order_writes = [h["what"] for h in found["hops"] if h["what"].startswith("sales_orders: ")]
    assert order_writes[0] == "sales_orders: synced (insert)" and len(order_writes) >= 1
    delivery_writes = [h for h in found["hops"] if h["what"].startswith("deliveries: synced")]
    assert {h["detail"]["via"] for h in delivery_writes} >= {str(fid), str(again)}
    assert len([h for h in delivery_writes if h["detail"]["via"] == str(fid)]) == 2, "written, then marked deleted"
