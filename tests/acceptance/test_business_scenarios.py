"""The case's business scenarios, end to end, as the company's people act: the ERP clerk through the Kingdee WebAPI
(Save, Submit, Audit, UnAudit, Delete, Push), sales and marketing through the ZOHO CRM REST API with their own
OAuth apps, approvers in the OA, employees and approvers in Huilianyi — with ``cdchub run`` (every flow) in between.

Each scenario times every hop (printed in the run's summary) and checks what the receiving system's users see."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from tests.acceptance.conftest import Company
from tests.acceptance.hops import Hops
from tests.acceptance.kingdee_views import (
    customer_row,
    material_text,
    one,
    order_by_link,
    order_entries,
    outbound,
    sales_order,
    save_submit_audit,
    stocked_material,
)
from tests.integration.harness import wait_for
from tests.integration.run_harness import dead_letters

APPROVE = "approve:<p>同意。</p>"


def tag() -> str:
    return uuid.uuid4().hex[:4].upper()


def crm_where(company: Company, module: str, field: str, value: str) -> dict[str, Any] | None:
    return next((r for r in company.crm.records(module) if str(r.get(field)) == str(value)), None)


def crm_record(company: Company, module: str, record_id: str) -> dict[str, Any]:
    return next(r for r in company.crm.records(module) if r["id"] == record_id)


def demo_customer(company: Company) -> tuple[str, dict[str, Any]]:
    """An audited demo customer the CRM has (its Kingdee number and account)."""
    account = next(a for a in company.crm.records("Accounts")
                   if a.get("Kingdee_Number") and a.get("Kingdee_Active") is not False and not a.get("Kingdee_Deleted"))
    return str(account["Kingdee_Number"]), account


def demo_products(company: Company, n: int) -> list[dict[str, Any]]:
    products = [p for p in company.crm.records("Products")
                if p.get("Product_Code") and p.get("Product_Active") is not False and not p.get("Kingdee_Deleted")]
    assert len(products) >= n
    return products[:n]


def delivered(order: dict[str, Any]) -> list[Any]:
    return [line.get("Delivered_Qty") for line in order.get("Ordered_Items") or []]


def test_1_master_data_both_ways_and_a_converted_lead(company: Company, hops: Hops) -> None:
    s = hops.scenario("1 master data: materials, customers, a converted lead")
    number = f"1.01.9{tag()}"
    fid, _ = s.act("clerk saves and audits a material", lambda: save_submit_audit(company.clerk, "BD_MATERIAL", {
        "FNumber": number, "FName": "一次性使用可视喉罩", "FSpecification": "成人 3#",
        "FMaterialGroup": {"FNumber": "1.01"}, "FBaseUnitId": {"FNumber": "Pcs"}}))
    product = s.reach("CRM product", lambda: company.crm.by_kingdee_id().get(str(fid)))
    assert product["Product_Code"] == number and product["Product_Name"] == "一次性使用可视喉罩"
    assert product["Usage_Unit"] and product["Product_Category"]
    s.act("rep describes the product in the CRM",
          lambda: company.rep.update("Products", product["id"], {"Description": "适用于困难气道，单次使用"}))
    s.reach("Kingdee material description",
            lambda: material_text(company.kingdee, fid, "FDESCRIPTION") == "适用于困难气道，单次使用")

    code = f"CUST9{tag()}"
    cust, _ = s.act("clerk saves and audits a customer", lambda: save_submit_audit(company.clerk, "BD_Customer", {
        "FNumber": code, "FName": "温州医科大学附属第一医院", "FShortName": "温医一院",
        "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"}, "FCustTypeId": {"FNumber": "KHLB001"},
        "FTEL": "0577-5557 9999", "FADDRESS": "浙江省温州市瓯海区南白象街道"}))
    account = s.reach("CRM account", lambda: crm_where(company, "Accounts", "Kingdee_Customer_ID", str(cust)))
    assert account["Phone"] == "0577-5557 9999" and account["Billing_Street"] == "浙江省温州市瓯海区南白象街道"
    assert account["Customer_Type"] == "公立医院"
    s.act("rep corrects the account's phone", lambda: company.rep.update("Accounts", account["id"],
                                                                        {"Phone": "0577-5557 8888"}))
    s.reach("Kingdee customer phone", lambda: customer_row(company.kingdee, FCUSTID=cust).FTEL == "0577-5557 8888")

    lead = company.rep.create("Leads", {"Last_Name": "陈", "First_Name": "医生", "Company": f"台州医院{tag()}",
                                        "Phone": "0576-8519 9999", "Lead_Status": "Contacted"})
    converted = s.act("rep converts a lead", lambda: company.rep.convert_lead(lead))
    linked = s.reach("Kingdee customer, its number back on the account",
                     lambda: (a := crm_record(company, "Accounts", converted)).get("Kingdee_Customer_ID") and a)
    new = customer_row(company.kingdee, FCUSTID=int(linked["Kingdee_Customer_ID"]))
    assert new is not None and new.FNUMBER.strip() == linked["Kingdee_Number"] == f"CRM{converted}"


def test_2_an_order_placed_in_the_crm_is_created_in_kingdee_and_audited_there_in_place(
        company: Company, hops: Hops) -> None:
    s = hops.scenario("2 an order placed in the CRM, audited in Kingdee")
    _, account = demo_customer(company)
    p1, p2 = demo_products(company, 2)
    subject = f"华东区 Q1 备货 {tag()}"
    oid = s.act("rep places and confirms an order", lambda: company.rep.create("Sales_Orders", {
        "Subject": subject, "Account_Name": {"id": account["id"]}, "Status": "Confirmed",
        "Ordered_Items": [{"Product_Name": {"id": p1["id"]}, "Quantity": 20, "List_Price": 50},
                          {"Product_Name": {"id": p2["id"]}, "Quantity": 5, "List_Price": 300}]}))
    order = s.reach("Kingdee sales order", lambda: order_by_link(company.kingdee, oid))
    assert order.FDOCUMENTSTATUS == "A" and order.FBILLNO.startswith("XSDD"), "numbered by Kingdee's coding rule"
    placed = s.reach("Kingdee number on the CRM order",
                     lambda: (o := company.rep.get("Sales_Orders", oid)).get("Kingdee_Bill_No") == order.FBILLNO and o)
    line_ids = [r["id"] for r in placed["Ordered_Items"]]

    s.act("clerk submits and audits it", lambda: (company.clerk.submit("SAL_SaleOrder", ids=[order.FID]),
                                                 company.clerk.audit("SAL_SaleOrder", ids=[order.FID])))
    audited = s.reach("CRM order shows Audited",
                      lambda: (o := company.rep.get("Sales_Orders", oid)).get("Kingdee_Status") == "Audited" and o)
    assert audited["Subject"] == subject, "the rep's subject is hers"
    assert [r["id"] for r in audited["Ordered_Items"]] == line_ids, "the CRM's line rows are updated in place"
    assert sum(1 for o in company.crm.records("Sales_Orders") if o.get("Kingdee_Order_ID") == str(order.FID)) == 1


def test_3_deliveries_follow_the_outbounds_including_one_unaudited_deleted_and_its_number_reused(
        company: Company, hops: Hops) -> None:
    s = hops.scenario("3 deliveries: outbound audited, un-audited and deleted, number reused")
    customer, _ = demo_customer(company)
    p1, p2 = demo_products(company, 2)
    fid, number = s.act("clerk keys and audits a sales order", lambda: sales_order(
        company.clerk, customer, [(p1["Product_Code"], 10, 113), (p2["Product_Code"], 4, 226)]))
    order = s.reach("CRM sales order", lambda: crm_where(company, "Sales_Orders", "Kingdee_Order_ID", str(fid)))
    e1, e2 = order_entries(company.clerk, fid)

    out, out_no = s.act("clerk audits an outbound of 6 + 4", lambda: outbound(
        company.clerk, customer, number, [(p1["Product_Code"], e1, 6), (p2["Product_Code"], e2, 4)]))
    s.reach("CRM delivered quantities", lambda: delivered(crm_record(company, "Sales_Orders", order["id"])) == [6, 4])
    record = s.reach("CRM delivery record", lambda: crm_where(company, "Deliveries", "Kingdee_Outbound_ID", str(out)))
    assert record["Outbound_No"] == out_no and record["Deleted_In_Kingdee"] is False

    s.act("clerk un-audits and deletes the outbound", lambda: (
        company.clerk.unaudit("SAL_OUTSTOCK", ids=[out]), company.clerk.delete("SAL_OUTSTOCK", ids=[out])))
    s.reach("CRM quantities rolled back", lambda: delivered(crm_record(company, "Sales_Orders", order["id"])) == [0, 0])
    s.reach("CRM delivery marked deleted",
            lambda: crm_where(company, "Deliveries", "Kingdee_Outbound_ID", str(out))["Deleted_In_Kingdee"] is True)

    again, again_no = s.act("clerk audits the next outbound (3)", lambda: outbound(
        company.clerk, customer, number, [(p1["Product_Code"], e1, 3)]))
    s.reach("CRM delivered quantities", lambda: delivered(crm_record(company, "Sales_Orders", order["id"])) == [3, 0])
    # the delivery record and the order's quantities are two independent writes: either may land first
    s.reach("one live CRM delivery for the reused number", lambda: [
        d["Kingdee_Outbound_ID"] for d in company.crm.records("Deliveries")
        if d.get("Outbound_No") == again_no and not d.get("Deleted_In_Kingdee")] == [str(again)])


def test_4_invoices_and_receipts_show_on_the_order(company: Company, hops: Hops) -> None:
    s = hops.scenario("4 invoices and receipts")
    customer, _ = demo_customer(company)
    (p1,) = demo_products(company, 1)
    fid, number = s.act("clerk keys and audits a sales order (10 × 113)", lambda: sales_order(
        company.clerk, customer, [(p1["Product_Code"], 10, 113)]))
    order = s.reach("CRM sales order", lambda: crm_where(company, "Sales_Orders", "Kingdee_Order_ID", str(fid)))

    s.act("clerk audits an ordinary invoice for it", lambda: save_submit_audit(company.clerk, "IV_SALESOC", {
        "FCUSTOMERID": {"FNumber": customer}, "FDATE": date.today().isoformat(), "FINVOICENO": f"0{tag()}1234",
        "FSALESOCENTRY": [{"FMATERIALID": {"FNumber": p1["Product_Code"]}, "FPRICEQTY": 10, "FTAXPRICE": 113,
                           "FSRCBILLTYPEID": "SAL_SaleOrder", "FSRCBILLNO": number}]}))
    s.reach("CRM invoiced amount", lambda: crm_record(company, "Sales_Orders", order["id"]).get("Invoiced_Amount")
            == 1130)

    keyed, _ = s.act("clerk keys a receipt of 500 naming the order", lambda: save_submit_audit(
        company.clerk, "AR_RECEIVEBILL", {
            "FDATE": date.today().isoformat(), "FCONTACTUNITTYPE": "BD_Customer",
            "FCONTACTUNIT": {"FNumber": customer},
            "FRECEIVEBILLENTRY": [{"FREALRECAMOUNTFOR": 500, "FSALEORDERNO": number, "FSALEORDERID": fid}]}))
    s.reach("CRM received amount", lambda: crm_record(company, "Sales_Orders", order["id"]).get("Received_Amount")
            == 500)
    payment = crm_where(company, "Payments", "Kingdee_Receipt_ID", str(keyed))
    assert payment is not None and payment["Sales_Order"]["id"] == order["id"]

    def push_the_balance() -> None:
        pushed = company.clerk.push("SAL_SaleOrder", "AR_RECEIVEBILL", numbers=[number])
        company.clerk.submit("AR_RECEIVEBILL", ids=pushed.ids)
        company.clerk.audit("AR_RECEIVEBILL", ids=pushed.ids)

    s.act("clerk pushes a receipt down from the order (1,130)", push_the_balance)
    s.reach("CRM received amount", lambda: crm_record(company, "Sales_Orders", order["id"]).get("Received_Amount")
            == 1630)


def test_5_stock_follows_the_warehouse(company: Company, hops: Hops) -> None:
    s = hops.scenario("5 stock")
    material, stock = stocked_material(company.kingdee, 5)
    customer, _ = demo_customer(company)
    product = next(p for p in company.crm.records("Products") if p.get("Product_Code") == material)
    wait_for(lambda: Decimal(str(crm_record(company, "Products", product["id"]).get("Qty_in_Stock") or 0)) == stock,
             120, "the CRM showing the stock Kingdee has")
    fid, number = s.act("clerk keys and audits a sales order of 5",
                        lambda: sales_order(company.clerk, customer, [(material, 5, 100)]))
    s.reach("CRM sales order", lambda: crm_where(company, "Sales_Orders", "Kingdee_Order_ID", str(fid)))
    (entry,) = order_entries(company.clerk, fid)
    s.act("clerk audits an outbound of 5 from the warehouse",
          lambda: outbound(company.clerk, customer, number, [(material, entry, 5)]))
    s.reach("CRM product stock down by 5", lambda: Decimal(str(crm_record(company, "Products", product["id"])
                                                               .get("Qty_in_Stock") or 0)) == stock - 5)


def test_6_a_campaign_is_approved_in_the_oa_after_a_rejection_and_a_resubmission(
        company: Company, hops: Hops) -> None:
    s = hops.scenario("6 campaign approval")
    name = f"2027 华南区 麻醉学术会议 {tag()}"
    cid = s.act("marketer creates a campaign", lambda: company.marketer.create("Campaigns", {
        "Campaign_Name": name, "Type": "Conference", "Budgeted_Cost": 90000, "Expected_Revenue": 500000,
        "Start_Date": "2027-03-10", "End_Date": "2027-03-12", "Description": "广州白云国际会议中心"}))
    campaign = s.reach("OA request, the CRM shows In Approval", lambda: (
        c := crm_record(company, "Campaigns", cid)).get("Approval_Status") == "In Approval" and c)
    rid = str(campaign["Weaver_Request_ID"])
    assert company.oa.request(rid)["creatorId"] == "101", "created by the campaign's owner, 李娜, in the OA"

    company.oa.script(rid, ["reject:<p>预算超标，请压缩到 6 万以内。</p>"])
    s.act("department manager rejects it in the OA", lambda: company.oa.act(rid))
    s.reach("CRM shows Rejected with the opinion", lambda: crm_record(company, "Campaigns", cid)
            .get("Approval_Status") == "Rejected" and any("预算超标" in n["Note_Content"]
                                                         for n in notes_of(company, cid)))
    s.act("marketer lowers the budget and re-submits", lambda: company.marketer.update("Campaigns", cid, {
        "Budgeted_Cost": 58000, "Approval_Status": "Re-submit"}))
    s.reach("the same request back in approval, new budget", lambda: (r := company.oa.request(rid))
            ["currentNodeType"] == "1" and r["main"]["ysje"] == "58000")
    company.oa.script(rid, [APPROVE, APPROVE])
    s.act("manager and director approve", lambda: company.oa.act(rid))
    s.reach("CRM shows Approved", lambda: crm_record(company, "Campaigns", cid).get("Approval_Status") == "Approved")


def notes_of(company: Company, record_id: str) -> list[dict[str, Any]]:
    return [n for n in company.crm.records("Notes") if (n.get("Parent_Id") or {}).get("id") == record_id]


def test_7_a_contract_approved_in_the_oa_reaches_the_deal_with_its_attachments(
        company: Company, hops: Hops) -> None:
    s = hops.scenario("7 contract approval")
    deal = company.rep.create("Deals", {"Deal_Name": f"宁波二院 麻醉机项目 {tag()}", "Stage": "Negotiation/Review",
                                        "Amount": 260000})
    started = s.act("sales person starts the contract workflow in the OA",
                    lambda: company.oa.start_contract(deal, [APPROVE, APPROVE, APPROVE]))
    rid = str(started["requestId"])
    s.reach("CRM deal In Approval", lambda: crm_record(company, "Deals", deal).get("Approval_Status")
            == "In Approval")
    files = s.reach("the contract's attachments on the deal",
                    lambda: (a := company.rep.attachments("Deals", deal)) and len(a) >= 2 and a)
    assert {f["File_Name"] for f in files} == {r["name"] for r in started["attachments"]}
    s.act("legal, finance and the general manager approve", lambda: company.oa.act(rid))
    final = s.reach("CRM deal Approved", lambda: (d := crm_record(company, "Deals", deal))
                    .get("Approval_Status") == "Approved" and d)
    assert final["Weaver_Request_ID"] == rid


def test_8_an_approved_expense_report_becomes_a_kingdee_bill_its_number_and_the_campaign_cost(
        company: Company, hops: Hops) -> None:
    s = hops.scenario("8 expenses")
    cid = company.marketer.create("Campaigns", {"Campaign_Name": f"2027 西南区 呼吸科沙龙 {tag()}",
                                                "Type": "Seminar/Conference", "Budgeted_Cost": 20000})
    report = s.act("the report is approved in Huilianyi", lambda: company.hly.create(
        status=1003, campaignId=cid, title="李娜-呼吸科沙龙场地及茶歇",
        lines=[{"expenseTypeCode": "MEETING", "amount": "3200.00", "comment": "场地费"},
               {"expenseTypeCode": "MEETING", "amount": "800.00", "comment": "茶歇"}]))
    code = report["businessCode"]
    bill = s.reach("Kingdee expense bill", lambda: one(
        company.kingdee, 'SELECT "FID", "FBILLNO" FROM "T_ER_EXPREIMBURSE" WHERE "FSOURCEBILLNO" = :c', c=code))
    s.reach("its number back in Huilianyi", lambda: company.hly.journal_no(code) == bill.FBILLNO.strip())
    s.reach("CRM campaign actual cost", lambda: crm_record(company, "Campaigns", cid).get("Actual_Cost") == 4000)


def test_9_nothing_the_people_did_was_dead_lettered(company: Company) -> None:
    letters = dead_letters(company.settings)
    assert letters and set(letters.values()) == {0}, letters
