"""Contract suite of the ZOHO CRM API as cdchub uses it: each documented behaviour of the simulator, exercised.

By default it runs against the simulator (started here on a free port with a temporary state folder). With
``ZOHO_CONTRACT_CLIENT_ID``, ``ZOHO_CONTRACT_CLIENT_SECRET``, ``ZOHO_CONTRACT_REFRESH_TOKEN`` and
``ZOHO_CONTRACT_ACCOUNTS_URL`` (e.g. ``https://accounts.zoho.com.cn/oauth/v2/token``) set, the same tests run
against that real org (a sandbox, please: records are created, then deleted). The org must have the catalog's
custom fields and the custom modules ``Deliveries`` and ``Payments`` (``infra/simulators/zoho/catalog.py``).
Tests that need the simulator's control API (human edits, credits, the notification log, expiring channels)
are skipped against a real org, with the reason printed. Facts marked [L] in the reference are asserted only
against the simulator.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.simulators.common.process import SimulatorProcess, free_port

pytestmark = pytest.mark.integration

ENV = ("ZOHO_CONTRACT_CLIENT_ID", "ZOHO_CONTRACT_CLIENT_SECRET", "ZOHO_CONTRACT_REFRESH_TOKEN",
       "ZOHO_CONTRACT_ACCOUNTS_URL")  # fmt: skip
SIM_CLIENT = ("1000.CONTRACT", "contract-secret", "1000.contract.refresh")
ORG_TZ = timezone(timedelta(hours=8))


@dataclass
class Target:
    """The CRM under test: the simulator (with its control API) or a real org."""

    token: str
    api_domain: str
    admin: httpx.Client | None
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    created: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_sim(self) -> bool:
        return self.admin is not None

    def api(self, version: str = "v8") -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.api_domain}/crm/{version}",
            headers={"Authorization": f"Zoho-oauthtoken {self.token}"},
            timeout=30,
        )

    def key(self, label: str) -> str:
        return f"{label}-{self.run}-{uuid.uuid4().hex[:6]}"

    def need_sim(self, why: str) -> httpx.Client:
        if self.admin is None:
            pytest.skip(f"needs the simulator's control API: {why}")
        return self.admin


def _report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    print(line)


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if all(os.environ.get(name) for name in ENV):
        client_id, secret, refresh, accounts = (os.environ[name] for name in ENV)
        minted = httpx.post(
            accounts,
            data={"grant_type": "refresh_token", "client_id": client_id, "client_secret": secret,
                  "refresh_token": refresh},
            timeout=30,
        ).json()  # fmt: skip
        assert "access_token" in minted, minted
        _report(request.config, f"ZOHO contract suite: against the REAL org at {minted['api_domain']}")
        real = Target(minted["access_token"], minted["api_domain"], None)
        yield real
        with real.api() as api:
            for module, record_id in reversed(real.created):
                api.delete(f"/{module}", params={"ids": record_id})
        return
    missing = [name for name in ENV if not os.environ.get(name)]
    _report(
        request.config,
        f"ZOHO contract suite: real-org run skipped (not set: {', '.join(missing)}); running against the simulator",
    )
    root = tmp_path_factory.mktemp("zoho-contract")
    client_id, secret, refresh = SIM_CLIENT
    args = ["--state-dir", str(root / "state"), "--secrets-dir", str(root / "secrets"), "--client-id", client_id,
            "--client-secret", secret, "--refresh-token", refresh]  # fmt: skip
    process = SimulatorProcess("infra.simulators.zoho", args=args, log_path=root / "sim.log").start()
    admin = httpx.Client(base_url=process.base_url, timeout=10)
    minted = httpx.post(
        f"{process.base_url}/oauth/v2/token",
        data={"grant_type": "refresh_token", "client_id": client_id, "client_secret": secret, "refresh_token": refresh},
    ).json()
    yield Target(minted["access_token"], minted["api_domain"], admin)
    admin.close()
    process.stop()


@pytest.fixture
def crm(target: Target) -> Iterator[Target]:
    if target.admin is not None:
        target.admin.put("/__sim/limits", json={"reset_credits": True, "daily_credits": 50_000})
        target.admin.delete("/__sim/faults")
    yield target


@pytest.fixture
def api(crm: Target) -> Iterator[httpx.Client]:
    with crm.api() as client:
        yield client


def create(crm: Target, api: httpx.Client, module: str, *records: dict[str, Any]) -> list[str]:
    response = api.post(f"/{module}", json={"data": list(records)})
    assert response.status_code == 201, response.text
    ids = [r["details"]["id"] for r in response.json()["data"]]
    crm.created += [(module, i) for i in ids]
    return ids


def first_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return dict(body["data"][0]) if "data" in body else dict(body)


# -- records of every module ---------------------------------------------------------------------------------
@dataclass
class Refs:
    product: str
    account: str


@pytest.fixture
def refs(crm: Target, api: httpx.Client) -> Refs:
    (product,) = create(crm, api, "Products", {"Product_Name": crm.key("P"), "Kingdee_ID": crm.key("K"),
                                               "Unit_Price": 12.5})  # fmt: skip
    (account,) = create(crm, api, "Accounts", {"Account_Name": crm.key("A"), "Kingdee_Customer_ID": crm.key("C")})
    return Refs(product, account)


def minimal(module: str, key: str, refs: Refs) -> dict[str, Any]:
    """A valid record of ``module`` whose display field is ``key``."""
    line = {"Product_Name": {"id": refs.product}, "Quantity": 2}
    records: dict[str, dict[str, Any]] = {
        "Leads": {"Last_Name": key, "Company": f"Co {key}", "Email": f"{key}@example.com"},
        "Contacts": {"Last_Name": key, "Email": f"{key}@example.com", "Account_Name": {"id": refs.account}},
        "Accounts": {"Account_Name": key, "Kingdee_Customer_ID": key},
        "Deals": {"Deal_Name": key, "Stage": "Qualification", "Amount": 100},
        "Campaigns": {"Campaign_Name": key, "Start_Date": "2026-01-05"},
        "Products": {"Product_Name": key, "Kingdee_ID": key},
        "Sales_Orders": {"Subject": key, "Kingdee_Order_ID": key, "Account_Name": {"id": refs.account},
                         "Ordered_Items": [line]},
        "Invoices": {"Subject": key, "Account_Name": {"id": refs.account}, "Invoiced_Items": [line]},
        "Notes": {"Note_Title": key, "Note_Content": "内容", "Parent_Id": {"id": refs.account,
                                                                          "module": {"api_name": "Accounts"}}},
        "Deliveries": {"Name": key, "Kingdee_Outbound_ID": key, "Outbound_No": key},
        "Payments": {"Name": key, "Kingdee_Receipt_ID": key, "Amount": "88.80", "Account": {"id": refs.account}},
    }  # fmt: skip
    return records[module]


DISPLAY = {"Leads": "Last_Name", "Contacts": "Last_Name", "Accounts": "Account_Name", "Deals": "Deal_Name",
           "Campaigns": "Campaign_Name", "Products": "Product_Name", "Sales_Orders": "Subject",
           "Invoices": "Subject", "Notes": "Note_Title", "Deliveries": "Name", "Payments": "Name"}  # fmt: skip
MODULES = list(DISPLAY)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_lists_pages_filters_searches_and_deletes(
    crm: Target, api: httpx.Client, refs: Refs, module: str
) -> None:
    display = DISPLAY[module]
    keys = [crm.key(module[:3]) for _ in range(3)]
    ids = create(crm, api, module, *(minimal(module, k, refs) for k in keys))
    time.sleep(0.02)
    (later,) = create(crm, api, module, minimal(module, crm.key(module[:3]), refs))
    stamp = api.get(f"/{module}/{ids[-1]}").json()["data"][0]["Modified_Time"]

    no_fields = api.get(f"/{module}")
    first = api.get(f"/{module}", params={"fields": display, "per_page": 2, "sort_by": "Modified_Time",
                                          "sort_order": "asc"})  # fmt: skip
    assert (no_fields.status_code, no_fields.json()["code"]) == (400, "REQUIRED_PARAM_MISSING")
    assert first.status_code == 200
    assert {k for k in first.json()["data"][0] if not k.startswith("$converted")} == {"id", display}
    assert first.json()["info"]["more_records"] is True
    seen, token = [r["id"] for r in first.json()["data"]], first.json()["info"]["next_page_token"]
    while token:
        page = api.get(f"/{module}", params={"fields": display, "per_page": 2, "page_token": token}).json()
        seen += [r["id"] for r in page["data"]]
        token = page["info"]["next_page_token"]
    assert set(ids + [later]) <= set(seen) and len(seen) == len(set(seen))

    since = api.get(f"/{module}", params={"fields": display}, headers={"If-Modified-Since": stamp})
    assert later in [r["id"] for r in since.json()["data"]]

    found = api.get(f"/{module}/search", params={"criteria": f"({display}:equals:{keys[1]})"})
    assert found.status_code == 200 and [r["id"] for r in found.json()["data"]] == [ids[1]]
    assert api.get(f"/{module}/search", params={"criteria": f"({display}:equals:none-{crm.run})"}).status_code == 204

    deleted = api.delete(f"/{module}", params={"ids": ids[0]})
    assert deleted.status_code == 200 and deleted.json()["data"][0]["code"] == "SUCCESS"
    assert api.get(f"/{module}/{ids[0]}").status_code == 204
    gone = api.get(f"/{module}/deleted", params={"type": "recycle"}).json()["data"]
    assert ids[0] in [r["id"] for r in gone]

    too_many = api.post(f"/{module}", json={"data": [minimal(module, f"x{i}", refs) for i in range(101)]})
    assert (too_many.status_code, too_many.json()["code"]) == (400, "LIMIT_EXCEEDED")


MANDATORY = [
    ("Leads", {"Company": "x"}, "Last_Name"),
    ("Contacts", {"First_Name": "x"}, "Last_Name"),
    ("Accounts", {"Phone": "1"}, "Account_Name"),
    ("Deals", {"Stage": "Qualification"}, "Deal_Name"),
    ("Deals", {"Deal_Name": "x"}, "Stage"),
    ("Campaigns", {"Type": "Webinar"}, "Campaign_Name"),
    ("Products", {"Unit_Price": 1}, "Product_Name"),
    ("Sales_Orders", {"Subject": "x"}, "Ordered_Items"),
    ("Sales_Orders", {"Ordered_Items": []}, "Subject"),
    ("Invoices", {"Subject": "x"}, "Invoiced_Items"),
    ("Notes", {"Note_Title": "x"}, "Note_Content"),
    ("Deliveries", {"Outbound_No": "x"}, "Name"),
    ("Payments", {"Amount": 1}, "Name"),
]


@pytest.mark.parametrize(("module", "record", "missing"), MANDATORY)
def test_mandatory_fields_are_named(api: httpx.Client, module: str, record: dict[str, Any], missing: str) -> None:
    response = api.post(f"/{module}", json={"data": [record]})

    error = first_error(response)
    assert response.status_code == 400
    assert (error["code"], error["details"]["api_name"]) == ("MANDATORY_NOT_FOUND", missing)


def test_lookups_and_types_are_validated(crm: Target, api: httpx.Client, refs: Refs) -> None:
    missing_id = "4876876000999999999"
    bad_account = api.post("/Contacts", json={"data": [{"Last_Name": "x", "Account_Name": {"id": missing_id}}]})
    bad_order = api.post("/Payments", json={"data": [{"Name": "x", "Sales_Order": {"id": missing_id}}]})
    bad_line = api.post("/Sales_Orders", json={"data": [{"Subject": "x", "Ordered_Items": [
        {"Product_Name": {"id": missing_id}, "Quantity": 1}]}]})  # fmt: skip
    bad_email = api.post("/Leads", json={"data": [{"Last_Name": "x", "Email": "not-an-email"}]})
    bad_amount = api.post("/Payments", json={"data": [{"Name": "x", "Amount": "12.3.4"}]})
    bad_date = api.post("/Deliveries", json={"data": [{"Name": "x", "Delivery_Date": "2026/01/05"}]})

    for response, name in ((bad_account, "Account_Name"), (bad_order, "Sales_Order"), (bad_line, "Product_Name"),
                           (bad_email, "Email"), (bad_amount, "Amount"), (bad_date, "Delivery_Date")):  # fmt: skip
        error = first_error(response)
        assert (response.status_code, error["code"], error["details"]["api_name"]) == (400, "INVALID_DATA", name)
    if crm.is_sim:
        assert first_error(bad_line)["details"]["json_path"] == "$.data[0].Ordered_Items[0].Product_Name"


@pytest.mark.parametrize(
    ("module", "key_field"),
    [("Accounts", "Kingdee_Customer_ID"), ("Sales_Orders", "Kingdee_Order_ID"), ("Deliveries", "Kingdee_Outbound_ID"),
     ("Payments", "Kingdee_Receipt_ID"), ("Products", "Kingdee_ID")],
)  # fmt: skip
def test_kingdee_keys_are_unique_and_upserts_match_on_them(
    crm: Target, api: httpx.Client, refs: Refs, module: str, key_field: str
) -> None:
    key = crm.key("U")
    record = {**minimal(module, crm.key("N"), refs), key_field: key}
    inserted = api.post(f"/{module}/upsert", json={"data": [record], "duplicate_check_fields": [key_field]})
    record_id = inserted.json()["data"][0]["details"]["id"]
    crm.created.append((module, record_id))
    renamed = {**record, DISPLAY[module]: crm.key("R")}
    updated = api.post(f"/{module}/upsert", json={"data": [renamed], "duplicate_check_fields": [key_field]})
    duplicate = api.post(f"/{module}", json={"data": [{**minimal(module, crm.key("D"), refs), key_field: key}]})

    assert (inserted.status_code, inserted.json()["data"][0]["action"]) == (201, "insert")
    assert updated.json()["data"][0]["action"] == "update"
    assert updated.json()["data"][0]["details"]["id"] == record_id
    assert updated.json()["data"][0]["duplicate_field"] == key_field
    error = first_error(duplicate)
    assert (error["code"], error["details"]["api_name"]) == ("DUPLICATE_DATA", key_field)


# -- line items ----------------------------------------------------------------------------------------------
def test_line_items_in_both_shapes_stored_once_shown_per_version(crm: Target, refs: Refs) -> None:
    with crm.api("v2") as v2, crm.api("v8") as v8:
        (order_id,) = create(crm, v2, "Sales_Orders", {"Subject": crm.key("SO"), "Product_Details": [
            {"product": {"id": refs.product}, "quantity": 3, "list_price": 10, "Discount": 5}]})  # fmt: skip
        as_v8 = v8.get(f"/Sales_Orders/{order_id}").json()["data"][0]
        as_v2 = v2.get(f"/Sales_Orders/{order_id}").json()["data"][0]
        (row,) = as_v8["Ordered_Items"]
        assert row["Product_Name"]["id"] == refs.product
        assert (row["Quantity"], row["List_Price"], row["Discount"]) == (3, 10, 5)
        assert (row["Total"], row["Net_Total"]) == (30, 25)
        assert as_v8["Grand_Total"] == 25
        assert as_v2["Product_Details"][0]["product"]["id"] == refs.product
        assert as_v2["Product_Details"][0]["quantity"] == 3
        if crm.is_sim:
            assert "Ordered_Items" not in as_v2 and "Product_Details" not in as_v8

        # v3+ shape on update: edit the row by id, add one; rows not sent are dropped.
        (second_product,) = create(crm, v8, "Products", {"Product_Name": crm.key("P2"), "Unit_Price": 7})
        updated = v8.put(f"/Sales_Orders/{order_id}", json={"data": [{"Ordered_Items": [
            {"id": row["id"], "Quantity": 4}, {"Product_Name": {"id": second_product}, "Quantity": 1}]}]})  # fmt: skip
        assert updated.status_code == 200, updated.text
        rows = v8.get(f"/Sales_Orders/{order_id}").json()["data"][0]["Ordered_Items"]
        assert [(r["id"] == row["id"], r["Quantity"]) for r in rows] == [(True, 4), (False, 1)]
        assert rows[1]["List_Price"] == 7  # defaulted from the product's Unit_Price

        invoice = {"Subject": crm.key("INV"), "Invoiced_Items": [{"Product_Name": {"id": refs.product}, "Quantity": 1}]}
        (invoice_id,) = create(crm, v8, "Invoices", invoice)
        assert v2.get(f"/Invoices/{invoice_id}").json()["data"][0]["Product_Details"][0]["quantity"] == 1


def test_deliveries_and_payments_point_at_the_order(crm: Target, api: httpx.Client, refs: Refs) -> None:
    (order_id,) = create(crm, api, "Sales_Orders", minimal("Sales_Orders", crm.key("SO"), refs))
    line_id = api.get(f"/Sales_Orders/{order_id}").json()["data"][0]["Ordered_Items"][0]["id"]
    delivery = {
        "Name": "OUT-1", "Kingdee_Outbound_ID": crm.key("OUT"), "Outbound_No": "XSCKD000001",
        "Sales_Order": {"id": order_id}, "Delivery_Date": "2026-11-30",
        "Delivery_Lines": [{"Order_Line_ID": line_id, "Product": {"id": refs.product}, "Delivered_Qty": 1.5}],
        "Deleted_In_Kingdee": False,
    }  # fmt: skip
    payment = {
        "Name": "SKD-1", "Kingdee_Receipt_ID": crm.key("RCV"), "Receipt_No": "SKD000001",
        "Account": {"id": refs.account}, "Sales_Order": {"id": order_id}, "Amount": "1234.56",
        "Receipt_Date": "2026-11-30", "Deleted_In_Kingdee": False,
    }  # fmt: skip
    (delivery_id,) = create(crm, api, "Deliveries", delivery)
    (payment_id,) = create(crm, api, "Payments", payment)

    stored_delivery = api.get(f"/Deliveries/{delivery_id}").json()["data"][0]
    stored_payment = api.get(f"/Payments/{payment_id}").json()["data"][0]
    assert stored_delivery["Sales_Order"]["id"] == order_id
    assert stored_delivery["Delivery_Lines"][0]["Order_Line_ID"] == line_id
    assert stored_delivery["Delivery_Lines"][0]["Delivered_Qty"] == 1.5
    assert (stored_payment["Amount"], stored_payment["Sales_Order"]["id"]) == (1234.56, order_id)
    missing_qty = api.post("/Deliveries", json={"data": [{"Name": "x", "Delivery_Lines": [{"Order_Line_ID": "1"}]}]})
    assert first_error(missing_qty)["details"]["api_name"] == "Delivered_Qty"


# -- leads ---------------------------------------------------------------------------------------------------
def test_lead_conversion_makes_account_contact_and_deal(crm: Target, api: httpx.Client) -> None:
    company = crm.key("新公司")
    (lead_id,) = create(crm, api, "Leads", {"Last_Name": "王", "First_Name": "小明", "Company": company,
                                            "Email": f"{crm.run}@example.com", "Phone": "13800000000"})  # fmt: skip
    converted = api.post(
        f"/Leads/{lead_id}/actions/convert",
        json={
            "data": [
                {"overwrite": True, "Deals": {"Deal_Name": crm.key("D"), "Stage": "Qualification", "Amount": 1000}}
            ]
        },
    )

    assert converted.status_code == 200, converted.text
    result = converted.json()["data"][0]
    assert (result["code"], result["status"]) == ("SUCCESS", "success")
    details = result["details"]
    crm.created += [("Deals", details["Deals"]["id"]), ("Contacts", details["Contacts"]["id"]),
                    ("Accounts", details["Accounts"]["id"])]  # fmt: skip
    account = api.get(f"/Accounts/{details['Accounts']['id']}").json()["data"][0]
    contact = api.get(f"/Contacts/{details['Contacts']['id']}").json()["data"][0]
    deal = api.get(f"/Deals/{details['Deals']['id']}").json()["data"][0]
    assert account["Account_Name"] == company
    assert (contact["Last_Name"], contact["Account_Name"]["id"]) == ("王", account["id"])
    assert (deal["Account_Name"]["id"], deal["Contact_Name"]["id"]) == (account["id"], contact["id"])
    lead = api.get(f"/Leads/{lead_id}").json()["data"][0]
    assert lead["$converted"] is True
    again = api.post(f"/Leads/{lead_id}/actions/convert", json={"data": [{}]})
    assert again.status_code == 400
    if crm.is_sim:
        assert again.json()["code"] == "ID_ALREADY_CONVERTED"
        with crm.api("v2") as v2:
            (other,) = create(crm, v2, "Leads", {"Last_Name": "Li", "Company": company})
            flat = v2.post(f"/Leads/{other}/actions/convert").json()["data"][0]
            assert flat["Accounts"] == account["id"] and flat["Deals"] is None  # same company: same account


# -- attachments and notes -----------------------------------------------------------------------------------
def test_attachments_upload_list_download_delete(crm: Target, api: httpx.Client, refs: Refs, tmp_path: Path) -> None:
    name = "合同 scan (v2).pdf"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "upload.bin"
    path.write_bytes(payload)
    with path.open("rb") as handle:
        uploaded = api.post(f"/Accounts/{refs.account}/Attachments", files={"file": (name, handle, "application/pdf")})
    linked = api.post(f"/Accounts/{refs.account}/Attachments", data={"attachmentUrl": "https://example.com/a.png"})
    orphan = api.post("/Accounts/4876876000999999999/Attachments", files={"file": ("a.txt", b"x")})

    assert uploaded.status_code == 200, uploaded.text
    result = uploaded.json()["data"][0]
    assert (result["code"], result["message"]) == ("SUCCESS", "attachment uploaded successfully")
    attachment_id = result["details"]["id"]
    assert linked.status_code == 200
    assert (orphan.status_code, orphan.json()["code"]) == (400, "INVALID_DATA")

    listed = api.get(f"/Accounts/{refs.account}/Attachments", params={"fields": "id,File_Name,Size,$type"})
    rows = {r["id"]: r for r in listed.json()["data"]}
    assert rows[attachment_id]["File_Name"] == name
    assert int(rows[attachment_id]["Size"]) == len(payload)
    downloaded = api.get(f"/Accounts/{refs.account}/Attachments/{attachment_id}")
    assert downloaded.status_code == 200 and downloaded.content == payload
    assert "UTF-8''%E5%90%88%E5%90%8C" in downloaded.headers["content-disposition"]

    removed = api.delete(f"/Accounts/{refs.account}/Attachments/{attachment_id}")
    assert removed.json()["data"][0]["code"] == "SUCCESS"
    left = api.get(f"/Accounts/{refs.account}/Attachments", params={"fields": "id,File_Name"})
    assert attachment_id not in [r["id"] for r in left.json()["data"]]


def test_notes_on_a_record(crm: Target, api: httpx.Client, refs: Refs) -> None:
    (order_id,) = create(crm, api, "Sales_Orders", minimal("Sales_Orders", crm.key("SO"), refs))
    added = api.post(f"/Sales_Orders/{order_id}/Notes", json={"data": [
        {"Note_Title": "发货", "Note_Content": "第一批已发货"}, {"Note_Content": "第二批"}]})  # fmt: skip
    listed = api.get(f"/Sales_Orders/{order_id}/Notes", params={"fields": "Note_Title,Note_Content,Parent_Id"})

    assert added.status_code == 201, added.text
    crm.created += [("Notes", r["details"]["id"]) for r in added.json()["data"]]
    notes = listed.json()["data"]
    assert sorted(n["Note_Content"] for n in notes) == ["第一批已发货", "第二批"]
    assert all(n["Parent_Id"]["id"] == order_id for n in notes)
    no_content = api.post(f"/Sales_Orders/{order_id}/Notes", json={"data": [{"Note_Title": "x"}]})
    assert first_error(no_content)["code"] == "MANDATORY_NOT_FOUND"


# -- users, limits -------------------------------------------------------------------------------------------
def test_modified_by_tells_integration_and_human_edits_apart(crm: Target, api: httpx.Client, refs: Refs) -> None:
    admin = crm.need_sim("a human edit")
    (order_id,) = create(crm, api, "Sales_Orders", minimal("Sales_Orders", crm.key("SO"), refs))
    me = api.get("/users", params={"type": "CurrentUser"}).json()["users"][0]
    human = admin.patch(f"/__sim/records/Sales_Orders/{order_id}", json={"data": {"Status": "Approved"}})
    after_human = api.get(f"/Sales_Orders/{order_id}").json()["data"][0]
    api.put(f"/Sales_Orders/{order_id}", json={"data": [{"Status": "Delivered"}]})
    after_us = api.get(f"/Sales_Orders/{order_id}").json()["data"][0]

    assert human.status_code == 200
    assert after_human["Modified_By"]["name"] == "Sales Rep" and after_human["Modified_By"]["id"] != me["id"]
    assert after_us["Modified_By"]["id"] == me["id"]
    assert after_us["Created_By"]["id"] == me["id"]


def test_credits_writes_cost_per_ten_records_everything_else_one(crm: Target, api: httpx.Client, refs: Refs) -> None:
    admin = crm.need_sim("the credit meter")
    admin.put("/__sim/limits", json={"reset_credits": True})

    def spent(call: Callable[[], httpx.Response]) -> int:
        before = admin.get("/__sim/limits").json()["credits_used"]
        call()
        return int(admin.get("/__sim/limits").json()["credits_used"]) - before

    records = [minimal("Payments", crm.key("PAY"), refs) for _ in range(25)]
    created = api.post("/Payments", json={"data": records})
    ids = ",".join(r["details"]["id"] for r in created.json()["data"])
    assert (
        spent(
            lambda: api.post(
                "/Payments/upsert", json={"data": records[:11], "duplicate_check_fields": ["Kingdee_Receipt_ID"]}
            )
        )
        == 2
    )
    assert spent(lambda: api.delete("/Payments", params={"ids": ids})) == 1
    assert spent(lambda: api.get("/Payments", params={"fields": "Name"})) == 1
    assert spent(lambda: api.get("/settings/fields", params={"module": "Payments"})) == 1


# -- OAuth scopes, conditional updates, the search index ---------------------------------------------------------
NARROW_CLIENT = ("1000.NARROWSCOPE", "narrow-secret", "1000.narrow.refresh")
SCOPE_MISMATCH = {"code": "OAUTH_SCOPE_MISMATCH", "details": {}, "message": "invalid oauth scope to access this URL",
                  "status": "error"}  # fmt: skip


def next_second() -> None:
    """ZOHO keeps Modified_Time to the second: changes meant to be ordered are made in different seconds."""
    start = int(time.time())
    while int(time.time()) <= start:
        time.sleep(0.02)


def test_a_call_outside_the_grants_scopes_gets_oauth_scope_mismatch(crm: Target) -> None:
    admin = crm.need_sim("registers a client whose grant has two scopes")
    client_id, secret, refresh = NARROW_CLIENT
    admin.post("/__sim/clients", json={"client_id": client_id, "client_secret": secret, "refresh_token": refresh,
                                       "scopes": "ZohoCRM.modules.leads.READ,ZohoCRM.users.READ"}).raise_for_status()
    minted = httpx.post(f"{crm.api_domain}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": client_id, "client_secret": secret, "refresh_token": refresh,
    }).json()  # fmt: skip
    assert minted["scope"].split() == ["ZohoCRM.modules.leads.READ", "ZohoCRM.users.READ"]
    with Target(minted["access_token"], minted["api_domain"], admin).api() as narrow:
        assert narrow.get("/Leads", params={"fields": "Last_Name"}).status_code in (200, 204)
        assert narrow.get("/users", params={"type": "CurrentUser"}).status_code == 200
        refused = [narrow.post("/Leads", json={"data": [{"Last_Name": crm.key("L")}]}),
                   narrow.get("/Accounts", params={"fields": "Account_Name"}),
                   narrow.get("/org"), narrow.get("/settings/fields", params={"module": "Leads"})]
    assert [(r.status_code, r.json()) for r in refused] == [(401, SCOPE_MISMATCH)] * 4


def test_an_update_with_if_unmodified_since_refuses_records_changed_after_it(crm: Target, api: httpx.Client) -> None:
    a, b = create(crm, api, "Products", *({"Product_Name": crm.key(n), "Kingdee_ID": crm.key("K")} for n in "AB"))

    def modified(record_id: str) -> str:
        return str(api.get(f"/Products/{record_id}").json()["data"][0]["Modified_Time"])

    seen = max(modified(a), modified(b), key=lambda t: datetime.fromisoformat(t))
    same = api.put(f"/Products/{a}", headers={"If-Unmodified-Since": modified(a)},
                   json={"data": [{"Description": "1"}]})
    assert same.status_code == 200 and same.json()["data"][0]["code"] == "SUCCESS", "unchanged since: written"
    next_second()
    api.put("/Products", json={"data": [{"id": b, "Description": "someone else"}]}).raise_for_status()
    both = api.put("/Products", headers={"If-Unmodified-Since": seen},
                   json={"data": [{"id": a, "Description": "2"}, {"id": b, "Description": "2"}]})
    assert [r["code"] for r in both.json()["data"]] == ["SUCCESS", "ALREADY_MODIFIED"]
    assert both.status_code == 207
    only_b = api.put(f"/Products/{b}", headers={"If-Unmodified-Since": seen}, json={"data": [{"Description": "3"}]})
    assert only_b.json()["data"][0]["code"] == "ALREADY_MODIFIED"
    if crm.is_sim:  # [L] the status of a call that wrote nothing
        assert only_b.status_code == 412
        assert only_b.json()["data"][0]["details"] == {"id": b}
    assert api.get(f"/Products/{b}").json()["data"][0]["Description"] == "someone else", "left as it was"
    again = api.put(f"/Products/{b}", headers={"If-Unmodified-Since": modified(b)},
                    json={"data": [{"Description": "3"}]})
    assert again.status_code == 200, "read again, written"


def test_search_trails_writes_by_the_index_lag_and_nothing_else_does(crm: Target, api: httpx.Client) -> None:
    admin = crm.need_sim("sets the search index lag")
    admin.put("/__sim/limits", json={"search_lag_s": 1.5}).raise_for_status()
    try:
        key, name = crm.key("LAG"), crm.key("喉罩")
        (record_id,) = create(crm, api, "Products", {"Product_Name": name, "Kingdee_ID": key})

        def found(criteria: str) -> list[tuple[str, str]]:
            answer = api.get("/Products/search", params={"criteria": criteria})
            return [(r["id"], r["Product_Name"]) for r in answer.json()["data"]] if answer.status_code == 200 else []

        assert found(f"(Kingdee_ID:equals:{key})") == [], "just created: not in the index yet"
        assert api.get(f"/Products/{record_id}").status_code == 200, "reading by id does not lag"
        upserted = api.post("/Products/upsert", json={"data": [{"Kingdee_ID": key, "Description": "x"}],
                                                      "duplicate_check_fields": ["Kingdee_ID"]})
        assert upserted.json()["data"][0]["action"] == "update", "upsert matching does not lag: no duplicate"
        time.sleep(1.6)
        assert found(f"(Kingdee_ID:equals:{key})") == [(record_id, name)]
        api.put(f"/Products/{record_id}", json={"data": [{"Product_Name": f"{name}-2"}]}).raise_for_status()
        assert found(f"(Product_Name:equals:{name})") == [(record_id, name)], "found by its old values"
        assert found(f"(Product_Name:equals:{name}-2)") == []
        time.sleep(1.6)
        assert found(f"(Product_Name:equals:{name}-2)") == [(record_id, f"{name}-2")]
        assert found(f"(Product_Name:equals:{name})") == []
    finally:
        admin.put("/__sim/limits", json={"search_lag_s": 0}).raise_for_status()


# -- metadata ------------------------------------------------------------------------------------------------
def test_metadata_describes_the_modules_and_their_fields(crm: Target, api: httpx.Client) -> None:
    modules = {m["api_name"]: m for m in api.get("/settings/modules").json()["modules"]}
    assert set(MODULES) <= set(modules)
    assert modules["Deliveries"]["generated_type"] == "custom"
    assert modules["Leads"]["convertable"] is True and modules["Leads"]["api_supported"] is True
    one = api.get("/settings/modules/Sales_Orders").json()["modules"][0]
    assert one["api_name"] == "Sales_Orders"

    fields = {f["api_name"]: f for f in api.get("/settings/fields", params={"module": "Sales_Orders"}).json()["fields"]}
    assert fields["Subject"]["system_mandatory"] is True
    assert fields["Kingdee_Order_ID"]["unique"]["casesensitive"] == "false"
    assert fields["Account_Name"]["lookup"]["module"]["api_name"] == "Accounts"
    assert fields["Ordered_Items"]["data_type"] == "subform"
    subform = fields["Ordered_Items"]["associated_module"]["module"]
    rows = {f["api_name"]: f for f in api.get("/settings/fields", params={"module": subform}).json()["fields"]}
    assert rows["Product_Name"]["lookup"]["module"]["api_name"] == "Products"
    assert "Quantity" in rows
    deals = {f["api_name"]: f for f in api.get("/settings/fields", params={"module": "Deals"}).json()["fields"]}
    assert deals["Stage"]["system_mandatory"] is True and deals["Stage"]["data_type"] == "picklist"

    org = api.get("/org").json()["org"][0]
    assert org["zgid"] and org["time_zone"]
    users = api.get("/users", params={"type": "CurrentUser"}).json()["users"]
    assert len(users) == 1 and users[0]["email"]
    everyone = api.get("/users", params={"type": "AllUsers"}).json()["users"]
    assert users[0]["id"] in [u["id"] for u in everyone]


# -- watch ---------------------------------------------------------------------------------------------------
class _Receiver:
    """A local notify_url: records each JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/zoho/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    yield server
    server.close()


def zoho_time(moment: datetime) -> str:
    return moment.astimezone(ORG_TZ).isoformat(timespec="seconds")


def test_watch_notifies_ids_only_and_channels_can_be_renewed_and_removed(
    crm: Target, api: httpx.Client, refs: Refs, receiver: _Receiver
) -> None:
    crm.need_sim("a notify_url the CRM can reach (a real org needs a public URL)")
    channel = int(time.time() * 1000)
    expiry = zoho_time(datetime.now(UTC) + timedelta(hours=2))
    subscribed = api.post("/actions/watch", json={"watch": [{
        "channel_id": channel, "events": ["Sales_Orders.edit", "Products.all"], "channel_expiry": expiry,
        "token": "cdchub-secret", "notify_url": receiver.url}]})  # fmt: skip
    assert subscribed.status_code == 200, subscribed.text
    result = subscribed.json()["watch"][0]
    assert result["code"] == "SUCCESS"
    assert {e["resource_name"] for e in result["details"]["events"]} == {"Sales_Orders", "Products"}
    assert result["details"]["events"][0]["channel_expiry"] == expiry

    (order_id,) = create(crm, api, "Sales_Orders", minimal("Sales_Orders", crm.key("SO"), refs))  # create: no event
    api.put(f"/Sales_Orders/{order_id}", json={"data": [{"Status": "Approved"}]})
    api.post("/Products/upsert", json={"data": [{"Product_Name": "W", "Kingdee_ID": crm.key("W")}],
                                       "duplicate_check_fields": ["Kingdee_ID"]})  # fmt: skip
    bodies = receiver.wait(2)
    assert len(bodies) == 2
    by_module = {b["module"]: b for b in bodies}
    assert by_module["Sales_Orders"]["ids"] == [order_id]
    assert by_module["Sales_Orders"]["operation"] == "update"
    assert by_module["Products"]["operation"] == "insert"
    assert {b["channel_id"] for b in bodies} == {channel} and {b["token"] for b in bodies} == {"cdchub-secret"}
    assert set(by_module["Sales_Orders"]) >= {"module", "ids", "operation", "channel_id", "token", "server_time",
                                              "query_params", "resource_uri"}  # fmt: skip
    assert "data" not in by_module["Sales_Orders"]  # ids only: the subscriber fetches the records

    listed = api.get("/actions/watch").json()["watch"]
    assert channel in [w["channel_id"] for w in listed]
    renewed_to = zoho_time(datetime.now(UTC) + timedelta(days=3))
    renewed = api.patch("/actions/watch", json={"watch": [{"channel_id": channel, "channel_expiry": renewed_to,
                                                           "notify_url": receiver.url,
                                                           "events": ["Sales_Orders.edit"]}]})  # fmt: skip
    assert renewed.json()["watch"][0]["details"]["events"][0]["channel_expiry"] == renewed_to
    api.post("/Products", json={"data": [{"Product_Name": crm.key("W2")}]})
    time.sleep(0.3)
    assert len(receiver.bodies) == 2  # Products.all was dropped by the renewal

    removed = api.delete("/actions/watch", params={"channel_ids": str(channel)})
    assert removed.json()["watch"][0]["code"] == "SUCCESS"
    assert api.get("/actions/watch").status_code == 204


def test_watch_channels_expire(crm: Target, api: httpx.Client, receiver: _Receiver) -> None:
    admin = crm.need_sim("waiting for a channel to expire")
    soon = zoho_time(datetime.now(UTC) + timedelta(seconds=2))
    too_late = zoho_time(datetime.now(UTC) + timedelta(days=30))
    api.post("/actions/watch", json={"watch": [
        {"channel_id": 1, "events": ["Products.create"], "channel_expiry": soon, "notify_url": receiver.url},
        {"channel_id": 2, "events": ["Products.create"], "channel_expiry": too_late, "notify_url": receiver.url},
    ]})  # fmt: skip
    channels = {w["channel_id"]: w for w in api.get("/actions/watch").json()["watch"]}
    capped = datetime.fromisoformat(channels[2]["channel_expiry"])
    assert capped <= datetime.now(UTC) + timedelta(days=7, minutes=1)  # at most a week [L]
    time.sleep(2.2)
    api.post("/Products", json={"data": [{"Product_Name": "after expiry"}]})
    bodies = receiver.wait(1)
    assert [b["channel_id"] for b in bodies] == [2]
    assert [w["channel_id"] for w in api.get("/actions/watch").json()["watch"]] == [2]
    log = admin.get("/__sim/notifications").json()["notifications"]
    assert log[-1]["status"] == 200
    api.delete("/actions/watch", params={"channel_ids": "2"})
