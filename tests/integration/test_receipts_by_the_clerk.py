"""A receipt as the finance clerk keys it through the Kingdee WebAPI (no push-down: the order number typed on its
rows), linked to its CRM order and counted in the order's received amount."""

from __future__ import annotations

import json

from infra.simulators.kingdee.erp import OrderLine, insert_customer, insert_material, insert_sales_order
from tests.integration.harness import IsolatedEnv, wait_for
from tests.integration.test_invoices_receipts_flow import order, records
from tests.integration.test_trace import cdchub


def test_a_receipt_keyed_with_the_order_number_links_the_order_and_counts_until_it_is_unaudited(
        env: IsolatedEnv) -> None:
    customer = insert_customer(env.kingdee, "CUST0601", "浙江大学医学院附属第一医院")
    material = insert_material(env.kingdee, "1.06.0001", "一次性使用喉罩", "成人 4#")
    so = insert_sales_order(env.kingdee, customer, [OrderLine(material, 10, "113")])
    kingdee = env.start_kingdee_api()
    env.capture()
    for flow in ("customers", "materials", "sales_orders", "receipts"):
        env.flow(flow)
    crm = wait_for(lambda: order(env, so.fid), 60, "the order in the CRM")

    clerk = kingdee.clerk()
    saved = clerk.save("AR_RECEIVEBILL", {
        "FDATE": "2026-12-07", "FCONTACTUNITTYPE": "BD_Customer", "FCONTACTUNIT": {"FNumber": "CUST0601"},
        "FRECEIVEBILLENTRY": [{"FREALRECAMOUNTFOR": 700, "FSALEORDERNO": so.bill_no, "FSALEORDERID": so.fid},
                              {"FREALRECAMOUNTFOR": 30}],  # a row for no order (e.g. a fee) counts for none
    })
    fid = int(saved.ids[0])
    clerk.submit("AR_RECEIVEBILL", ids=[fid])
    clerk.audit("AR_RECEIVEBILL", ids=[fid])

    wait_for(lambda: (o := order(env, so.fid)) and o.get("Received_Amount") == 700, 30, "received 700 on the order")
    payment = wait_for(lambda: records(env, "Payments", "Kingdee_Receipt_ID").get(str(fid)), 30, "the payment")
    assert payment["Sales_Order"]["id"] == crm["id"]

    # another receipt pushed down from the order (its whole amount, a 源单明细 naming it): both count, once each
    pushed = clerk.push("SAL_SaleOrder", "AR_RECEIVEBILL", numbers=[so.bill_no])
    (pushed_id,) = pushed.ids
    clerk.submit("AR_RECEIVEBILL", ids=[pushed_id])
    clerk.audit("AR_RECEIVEBILL", ids=[pushed_id])
    wait_for(lambda: (o := order(env, so.fid)) and o.get("Received_Amount") == 700 + 1130, 30,
             "received 700 keyed + 1,130 pushed down")

    clerk.unaudit("AR_RECEIVEBILL", ids=[fid])
    wait_for(lambda: (o := order(env, so.fid)) and o.get("Received_Amount") == 1130, 30, "rolled back after un-audit")

    # the order's trace lists both receipts, the keyed one too, and their Payments writes
    done = cdchub(env, "trace", so.bill_no, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    receipts = {d["key"]: d for d in json.loads(done.stdout)["related"] if d["kind"] == "receipt"}
    assert set(receipts) == {str(fid), str(pushed_id)}
    assert all(d["detail"]["sync"][0].startswith("receipts → zoho ") for d in receipts.values()), receipts
