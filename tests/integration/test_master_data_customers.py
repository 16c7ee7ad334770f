"""Customers both ways (Kingdee ⇄ ZOHO CRM Accounts) and converted leads → Kingdee customers, on the real stack."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from connectors.kingdee.models import china_now
from connectors.zoho.client import ZohoClient
from infra.simulators.kingdee.demo_seed import seed
from infra.simulators.kingdee.erp import delete_document, insert_customer
from tests.integration.harness import CAPTURE_MODES, IsolatedEnv, holds_for, wait_for

QUIET_S = 4.0


def customers(env: IsolatedEnv) -> dict[str, dict]:
    with env.kingdee.connect() as conn:
        rows = conn.execute(text(
            'SELECT c."FCUSTID", c."FNUMBER", c."FDOCUMENTSTATUS", c."FTEL", c."FADDRESS", l."FNAME" '
            'FROM "T_BD_CUSTOMER" c '
            'JOIN "T_BD_CUSTOMER_L" l ON l."FCUSTID" = c."FCUSTID"'))
        return {str(r.FCUSTID): dict(r._mapping) for r in rows}


def accounts(env: IsolatedEnv) -> dict[str, dict]:
    return {r["Kingdee_Customer_ID"]: r for r in env.zoho.records("Accounts") if r.get("Kingdee_Customer_ID")}


@pytest.mark.parametrize("env", CAPTURE_MODES, indirect=True)
def test_customers_reach_the_crm_with_their_types_and_name_edits_come_back(env: IsolatedEnv) -> None:
    seed(env.kingdee, materials=1, customers=6, orders=0)
    audited = {k for k, c in customers(env).items() if c["FDOCUMENTSTATUS"] == "C"}
    kingdee = env.start_kingdee_api()
    env.capture()
    env.flow("customers")
    env.poller('["Accounts"]')
    env.flow("accounts_to_kingdee")
    crm = wait_for(lambda: a if audited <= set(a := accounts(env)) else None, 90, "the audited customers")
    assert set(crm) == audited, "only audited customers are sent"
    assert {r["Customer_Type"] for r in crm.values()} <= {"公立医院", "民营医院", "经销商"}
    assert all(r["Account_Type"] in ("Customer", "Reseller") for r in crm.values())
    kd = customers(env)
    assert all(r["Phone"] == kd[k]["FTEL"] and r["Billing_Street"] == kd[k]["FADDRESS"] for k, r in crm.items())
    assert all(r["Phone"] and "市" in r["Billing_Street"] for r in crm.values()), "the demo's phones and addresses"

    some = sorted(audited)[0]
    saves = kingdee.calls("DynamicFormService.Save")
    upserts = sum(1 for r in env.zoho.requests() if r["path"].endswith("/Accounts/upsert"))
    env.zoho.human_edit("Accounts", crm[some]["id"], {"Account_Name": "北京协和医院（东单院区）"})
    wait_for(lambda: customers(env)[some]["FNAME"] == "北京协和医院（东单院区）", 60, "the new name in Kingdee")
    holds_for(lambda: kingdee.calls("DynamicFormService.Save") == saves + 1
              and sum(1 for r in env.zoho.requests() if r["path"].endswith("/Accounts/upsert")) == upserts,
              QUIET_S, "no echo of the CRM edit")

    # the rep updates the phone and the address: both reach Kingdee
    address = "北京市东城区帅府园1号"
    env.zoho.human_edit("Accounts", crm[some]["id"], {"Phone": "010-6915 6114", "Billing_Street": address})
    wait_for(lambda: (c := customers(env)[some])["FTEL"] == "010-6915 6114" and c["FADDRESS"] == address,
             60, "the new phone and address in Kingdee")


def test_an_unknown_customer_type_code_is_dead_lettered_naming_it(env: IsolatedEnv) -> None:
    entry = uuid.uuid4().hex
    with env.kingdee.begin() as conn:
        conn.execute(text('INSERT INTO "T_BAS_ASSISTANTDATAENTRY" ("FENTRYID", "FID", "FNUMBER", "FSEQ", '
                          '"FDOCUMENTSTATUS", "FFORBIDSTATUS") '
                          "VALUES (:e, 'CUSTTYPE', 'KHLB999', 9, 'C', 'A')"), {"e": entry})
        conn.execute(text('INSERT INTO "T_BAS_ASSISTANTDATAENTRY_L" ("FPKID", "FENTRYID", "FLOCALEID", "FDATAVALUE") '
                          'VALUES (:p, :e, 2052, \'军队医院\')'), {"p": uuid.uuid4().hex, "e": entry})
    odd = insert_customer(env.kingdee, "CUST9001", "解放军总医院", "301医院", cust_type_id=entry)
    fine = insert_customer(env.kingdee, "CUST9002", "浙江省人民医院", "省人民医院")
    env.capture()
    env.flow("customers")
    wait_for(lambda: str(fine) in accounts(env), 90, "the customer without a type")
    (letter,) = wait_for(lambda: env.dead_letters("customers"), 30, "the dead letter")
    assert letter["source"]["key"] == str(odd) and "unknown code 'KHLB999'" in letter["error"]
    assert str(odd) not in accounts(env)


@pytest.mark.parametrize("env", CAPTURE_MODES, indirect=True)
def test_a_customer_disabled_or_deleted_in_kingdee_is_marked_in_the_crm_never_removed(env: IsolatedEnv) -> None:
    kept = insert_customer(env.kingdee, "CUST9101", "浙江大学医学院附属第一医院", "浙大一院")
    gone = insert_customer(env.kingdee, "CUST9102", "浙江大学医学院附属第二医院", "浙大二院")
    env.capture()
    env.flow("customers")
    wait_for(lambda: {str(kept), str(gone)} <= set(accounts(env)), 90, "both customers in the CRM")
    with env.kingdee.begin() as conn:  # 禁用 and 删除, as Kingdee writes them
        conn.execute(text('UPDATE "T_BD_CUSTOMER" SET "FFORBIDSTATUS" = \'B\', "FMODIFYDATE" = :modified '
                          'WHERE "FCUSTID" = :c'), {"c": kept, "modified": china_now()})  # Kingdee's clock
    delete_document(env.kingdee, "T_BD_CUSTOMER", gone)
    wait_for(lambda: accounts(env)[str(kept)]["Kingdee_Active"] is False, 60, "the disabled customer marked")
    marked = wait_for(lambda: (a := accounts(env)[str(gone)]).get("Kingdee_Deleted") is True and a, 60,
                      "the deleted customer marked")
    assert marked["Kingdee_Active"] is False and len(env.zoho.records("Accounts")) == 2, "kept, not removed"
    assert env.dead_letters("customers") == []


def test_a_converted_lead_becomes_exactly_one_kingdee_customer_even_after_a_crash(env: IsolatedEnv) -> None:
    kingdee = env.start_kingdee_api()
    env.capture()
    env.flow("customers")
    env.poller('["Leads", "Accounts"]')
    crm = ZohoClient(env.settings.zoho, httpx.Client(timeout=10))
    lead = env.zoho.human_create("Leads", {"Last_Name": "王", "First_Name": "建国", "Company": "四川省人民医院",
                                           "Email": "wang.jianguo@example.cn"})
    _, answer = crm.request("POST", f"Leads/{lead}/actions/convert", json={"data": [{"overwrite": True}]})
    account_id = str(answer["data"][0]["details"]["Accounts"]["id"])
    # Kingdee applies the save but its answer is held back; the flow is killed while it waits (a crash between
    # the target write and its acknowledgement)
    kingdee.http.post("/__sim/faults", json={"path_regex": ".*DynamicFormService\\.Save.*", "timeout": True,
                                             "timeout_s": 60, "count": 1}).raise_for_status()
    flow = env.flow("converted_leads")
    wait_for(lambda: any(c["FNUMBER"] == f"CRM{account_id}" for c in customers(env).values()), 60,
             "the customer saved in Kingdee")
    assert "→ Kingdee customer" not in flow.log(), "the flow is still waiting for the save's answer"
    flow.kill()  # the save is applied but its answer never came: the flow did not record it
    kingdee.http.delete("/__sim/faults").raise_for_status()
    env.flow("converted_leads")
    account = wait_for(lambda: (a := crm.get("Accounts", account_id)) and a.get("Kingdee_Customer_ID") and a, 60,
                       "the Kingdee id written back to the account")
    created = [c for c in customers(env).values() if c["FNUMBER"] == f"CRM{account_id}"]
    assert len(created) == 1, "no second customer after the crash"
    assert account["Kingdee_Customer_ID"] == str(created[0]["FCUSTID"])
    assert created[0]["FNAME"] == "四川省人民医院" and created[0]["FDOCUMENTSTATUS"] == "C"
    # the customers flow sends the new customer back; it lands on the converted account, not a new one
    holds_for(lambda: len(env.zoho.records("Accounts")) == 1, QUIET_S, "a single account")
