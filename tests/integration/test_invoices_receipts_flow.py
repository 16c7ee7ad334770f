"""Invoices (both kinds) and receipts, Kingdee → ZOHO CRM Invoices / Payments, and the invoiced and received
amounts of the CRM order, on the real stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update

from connectors.kingdee import models as m
from core.settings import PROJECT_ROOT
from infra.simulators.kingdee import erp
from infra.simulators.kingdee.erp import (
    OrderLine,
    delete_document,
    ensure_users,
    insert_customer,
    insert_material,
    insert_outstock,
    insert_sales_order,
    set_document_status,
)
from tests.integration.harness import IsolatedEnv, holds_for, wait_for


def insert_invoice(env: IsolatedEnv, kind: str, customer: int, order_no: str,
                   lines: Sequence[tuple[int, int, str]], bill_no: str,
                   from_outbound: tuple[str, Sequence[int]] | None = None) -> int:
    return erp.insert_invoice(env.kingdee, kind, customer, order_no, lines, bill_no, from_outbound)


def insert_receipt(env: IsolatedEnv, customer: int, order_no: str, amount: str, bill_no: str) -> int:
    return erp.insert_receipt(env.kingdee, customer, order_no, amount, bill_no)


def records(env: IsolatedEnv, module: str, key: str) -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in env.zoho.records(module) if r.get(key)}


def order(env: IsolatedEnv, fid: int) -> dict[str, Any] | None:
    return records(env, "Sales_Orders", "Kingdee_Order_ID").get(str(fid))


def writes(env: IsolatedEnv) -> int:
    """Writes the invoices and receipts flows make: upserts of Invoices / Payments and updates of orders."""
    return sum(1 for r in env.zoho.requests()
               if r["path"].endswith(("/Invoices/upsert", "/Payments/upsert"))
               or (r["path"].endswith("/Sales_Orders") and r.get("method") == "PUT"))


def written_since(env: IsolatedEnv, before: int) -> list[str]:
    """The flows' writes after the first ``before`` of them (method, path, records, time), for a failure's message."""
    calls = [r for r in env.zoho.requests() if r["path"].endswith(("/Invoices/upsert", "/Payments/upsert"))
             or (r["path"].endswith("/Sales_Orders") and r.get("method") == "PUT")]
    return [f"{r.get('method')} {r['path']} records={r.get('records')} at {r.get('time_ms')}" for r in calls[before:]]


def test_invoices_and_receipts_show_on_the_order_a_deleted_receipt_rolls_back_and_a_replay_writes_nothing(
        env: IsolatedEnv) -> None:
    ensure_users(env.kingdee)
    customer = insert_customer(env.kingdee, "CUST0501", "四川大学华西医院")
    m1 = insert_material(env.kingdee, "1.05.0001", "一次性使用喉罩", "成人 4#")
    m2 = insert_material(env.kingdee, "1.05.0002", "麻醉面罩", "成人 5#")
    so = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 10, "20"), OrderLine(m2, 3, "113")])
    special = insert_invoice(env, "special", customer, so.bill_no, [(m1, 10, "20")], "XSZYFP000901")
    ordinary = insert_invoice(env, "ordinary", customer, so.bill_no, [(m2, 3, "113")], "XSPTFP000901")
    paid = insert_receipt(env, customer, so.bill_no, "300", "SKD00000901")
    extra = insert_receipt(env, customer, so.bill_no, "100", "SKD00000902")
    env.capture()
    env.flow("customers")
    env.flow("materials")
    env.flow("sales_orders")
    flows = {"invoices": env.flow("invoices"), "receipts": env.flow("receipts")}

    crm = wait_for(lambda: (o := order(env, so.fid)) is not None and o.get("Invoiced_Amount") == 539
                   and o.get("Received_Amount") == 400 and o, 90, "invoiced 200 + 339, received 300 + 100")
    account = records(env, "Accounts", "Kingdee_Customer_ID")[str(customer)]
    invoices = wait_for(lambda: len(r := records(env, "Invoices", "Kingdee_Invoice_ID")) == 2 and r, 30,
                        "both invoices in the CRM")
    assert set(invoices) == {f"IC-{special}", f"OC-{ordinary}"}, "keys unique per kind"
    ic, oc = invoices[f"IC-{special}"], invoices[f"OC-{ordinary}"]
    assert (ic["Invoice_Type"], oc["Invoice_Type"]) == ("VAT Special", "Ordinary")
    assert ic["Subject"] == "XSZYFP000901" and ic["Invoice_No"] == f"{special:08d}"
    assert ic["Account_Name"]["id"] == oc["Account_Name"]["id"] == account["id"]
    assert ic["Sales_Order"]["id"] == oc["Sales_Order"]["id"] == crm["id"]
    assert ic["Amount_With_Tax"] == 200 and ic["Amount_Without_Tax"] == 176.99
    assert oc["Amount_With_Tax"] == 339 and oc["Kingdee_Status"] == "Audited"
    products = env.zoho.by_kingdee_id()
    assert [row["Product_Name"]["id"] for row in oc["Invoiced_Items"]] == [products[str(m2)]["id"]]
    # the receipts flow runs on its own: wait for its records rather than assume they came with the invoices
    payments = wait_for(lambda: p if set(p := records(env, "Payments", "Kingdee_Receipt_ID")) == {str(paid), str(extra)}
                        else None, 60, "both receipts in the CRM")
    assert payments[str(paid)]["Amount"] == 300 and payments[str(paid)]["Sales_Order"]["id"] == crm["id"]
    assert payments[str(paid)]["Account"]["id"] == account["id"]
    assert payments[str(paid)]["Kingdee_Approver"] == "王静" and payments[str(paid)]["Kingdee_Approved_At"]
    traced = subprocess.run([sys.executable, "-m", "cdchub.cli", "trace", so.bill_no, "--json"], cwd=PROJECT_ROOT,
                            text=True, capture_output=True, env={**os.environ, **env.env}, timeout=120)
    related = {(d["kind"], d["number"]) for d in json.loads(traced.stdout)["related"]}
    assert {("invoice (VAT special)", "XSZYFP000901"), ("invoice (ordinary)", "XSPTFP000901"),
            ("receipt", "SKD00000901"), ("receipt", "SKD00000902")} <= related, "the order's related documents"

    # A deleted receipt is marked and its amount rolled back; an un-audited one rolls back too.
    delete_document(env.kingdee, "T_AR_RECEIVEBILL", extra)
    wait_for(lambda: records(env, "Payments", "Kingdee_Receipt_ID")[str(extra)]["Deleted_In_Kingdee"] is True,
             30, "the deleted receipt marked")
    wait_for(lambda: (order(env, so.fid) or {}).get("Received_Amount") == 300, 30, "received back to 300")
    set_document_status(env.kingdee, "T_AR_RECEIVEBILL", paid, "D")
    wait_for(lambda: (order(env, so.fid) or {}).get("Received_Amount") == 0, 30, "un-audited: received 0")
    unaudited = records(env, "Payments", "Kingdee_Receipt_ID")[str(paid)]
    assert unaudited["Kingdee_Status"] == "Un-audited" and not unaudited.get("Kingdee_Approver")
    # A voided invoice leaves the invoiced amount, and shows as voided.
    with env.kingdee.begin() as conn:
        conn.execute(update(m.T_IV_SALESOC).where(m.T_IV_SALESOC.c.FID == ordinary).values(FCANCELSTATUS="B"))
    wait_for(lambda: (order(env, so.fid) or {}).get("Invoiced_Amount") == 200, 30, "voided: invoiced 200")
    assert records(env, "Invoices", "Kingdee_Invoice_ID")[f"OC-{ordinary}"]["Kingdee_Status"] == "Voided"

    # Replay both flows from the start (recovery state removed): the ledger makes it write nothing.
    for name, child in flows.items():
        child.stop()
        shutil.rmtree(env.settings.state_dir / "recovery" / name)
    before = writes(env)
    env.flow("invoices")
    env.flow("receipts")
    set_document_status(env.kingdee, "T_AR_RECEIVEBILL", paid, "C")  # lands after the replay
    wait_for(lambda: (order(env, so.fid) or {}).get("Received_Amount") == 300, 60, "re-audited after the replay")
    wait_for(lambda: records(env, "Payments", "Kingdee_Receipt_ID")[str(paid)]["Kingdee_Status"] == "Audited",
             30, "the payment re-audited")
    holds_for(lambda: writes(env) == before + 2, 3, lambda: "two writes: the payment and the order, nothing "
              f"replayed (writes after the replay began: {written_since(env, before)})")
    assert len(env.zoho.records("Invoices")) == 2 and len(env.zoho.records("Payments")) == 2, "no duplicates"


def test_a_bill_whose_account_never_syncs_is_dead_lettered_and_one_whose_order_is_unknown_is_unlinked(
        env: IsolatedEnv) -> None:
    env.env["CDCHUB_REFERENCE_WAIT_S"] = "6"
    env.env["CDCHUB_FLOWS__ORDER_LINK_WAIT_S"] = "1"
    synced = insert_customer(env.kingdee, "CUST0502", "华中科技大学同济医院")
    draft = insert_customer(env.kingdee, "CUST0503", "草稿客户", status="A")  # never audited, never synced
    material = insert_material(env.kingdee, "1.05.0003", "呼吸过滤器", "成人型")
    orphan = insert_receipt(env, synced, "XSDD999999", "80", "SKD00000903")
    stuck = insert_invoice(env, "ordinary", draft, "XSDD999998", [(material, 1, "113")], "XSPTFP000903")
    env.capture()
    env.flow("customers")
    env.flow("materials")
    env.flow("invoices")
    env.flow("receipts")

    payment = wait_for(lambda: records(env, "Payments", "Kingdee_Receipt_ID").get(str(orphan)), 40,
                       "the payment, unlinked")
    assert payment.get("Sales_Order") is None and payment["Amount"] == 80
    letters = wait_for(lambda: [d for d in env.dead_letters("invoices") if d["source"]["key"] == f"OC-{stuck}"],
                       40, "the invoice whose customer never syncs dead-lettered")
    assert letters[0]["stage"] == "resolve" and "CUST0503" in letters[0]["error"], letters[0]["error"]
    assert not env.zoho.records("Invoices")
    totals = wait_for(lambda: [d for d in env.dead_letters("receipts") if d["source"]["key"] == "order:XSDD999999"],
                      40, "the received amount of an order not in the CRM dead-lettered, named")
    assert "XSDD999999" in totals[0]["error"]


def test_an_invoice_pushed_down_from_an_outbound_reaches_the_order_that_outbound_delivers(env: IsolatedEnv) -> None:
    customer = insert_customer(env.kingdee, "CUST0601", "复旦大学附属中山医院")
    m1 = insert_material(env.kingdee, "1.06.0001", "呼吸过滤器", "HEPA")
    so = insert_sales_order(env.kingdee, customer, [OrderLine(m1, 20, "50")])
    out = insert_outstock(env.kingdee, so)
    insert_invoice(env, "special", customer, "", [(m1, 20, "50")], "XSZYFP000951",
                   from_outbound=(out.bill_no, out.entry_ids))
    env.capture()
    for flow in ("customers", "materials", "sales_orders", "invoices"):
        env.flow(flow)
    crm = wait_for(lambda: (o := order(env, so.fid)) is not None and o.get("Invoiced_Amount") == 1000 and o, 90,
                   "the order's invoiced amount from an outbound-sourced invoice")
    invoice = next(iter(records(env, "Invoices", "Kingdee_Invoice_ID").values()))
    assert (invoice.get("Sales_Order") or {}).get("id") == crm["id"], "the invoice is linked to the order"
