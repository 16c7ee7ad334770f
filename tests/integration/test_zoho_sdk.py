"""ZOHO's official Python SDK (``zohocrmsdk8_0``), unchanged, against the simulator.

Only the SDK's URLs are pointed at the simulator (``DataCenter.Environment(api_url, accounts_url,
file_upload_url)``); tokens go through the SDK's own ``FileStore``. The SDK is the strictest client there is: it
refreshes the token, asks ``/users?type=CurrentUser`` and ``/org`` for its token store, reads
``/settings/fields`` of each module it touches (and, recursively, of every lookup and subform target) and
parses every answer against its type table. The SDK is a test dependency only: the test is skipped without it.

The SDK keeps its configuration in class-level globals, so everything runs in one test (its phases are steps).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.simulators.common.process import SimulatorProcess

pytestmark = pytest.mark.integration

sdk = pytest.importorskip(
    "zohocrmsdk.src.com.zoho.crm.api.initializer", reason="zohocrmsdk8_0 (the official SDK) is not installed"
)

CLIENT_ID = "1000.SDKCLIENT"
CLIENT_SECRET = "sdk-secret"
REFRESH_TOKEN = "1000.sdk.refresh"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    root = tmp_path_factory.mktemp("zoho-sdk")
    args = [
        "--state-dir", str(root / "state"), "--secrets-dir", str(root / "secrets"), "--client-id", CLIENT_ID,
        "--client-secret", CLIENT_SECRET, "--refresh-token", REFRESH_TOKEN,
    ]  # fmt: skip
    process = SimulatorProcess("infra.simulators.zoho", args=args, log_path=root / "zoho-sim.log").start()
    yield process
    process.stop()


def _initialize(base_url: str, work: Path) -> None:
    from zohocrmsdk.src.com.zoho.api.authenticator.oauth_token import OAuthToken
    from zohocrmsdk.src.com.zoho.api.authenticator.store import FileStore
    from zohocrmsdk.src.com.zoho.api.logger import Logger
    from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter
    from zohocrmsdk.src.com.zoho.crm.api.initializer import Initializer
    from zohocrmsdk.src.com.zoho.crm.api.sdk_config import SDKConfig

    environment = DataCenter.Environment(base_url, f"{base_url}/oauth/v2/token", base_url)
    token = OAuthToken(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN)
    (work / "resources").mkdir(parents=True, exist_ok=True)
    Initializer.initialize(
        environment=environment,
        token=token,
        store=FileStore(file_path=str(work / "sdk_tokens.txt")),
        sdk_config=SDKConfig(auto_refresh_fields=False, pick_list_validation=False),
        resource_path=str(work / "resources"),
        logger=Logger.get_instance(level=Logger.Levels.INFO, file_path=str(work / "sdk.log")),
    )


def _record(module: str, **values: Any) -> Any:
    from zohocrmsdk.src.com.zoho.crm.api.record import Record

    record = Record()
    for name, value in values.items():
        record.add_key_value(name, value)
    return record


def _upsert(module: str, records: list[Any], check_fields: list[str]) -> list[Any]:
    from zohocrmsdk.src.com.zoho.crm.api.record import ActionWrapper, BodyWrapper, RecordOperations

    body = BodyWrapper()
    body.set_data(records)
    body.set_duplicate_check_fields(check_fields)
    response = RecordOperations(module).upsert_records(body)
    assert response is not None, "the SDK swallowed an error (see sdk.log)"
    assert response.get_status_code() in (200, 201), response.get_status_code()
    answer = response.get_object()
    assert isinstance(answer, ActionWrapper), answer
    return list(answer.get_data())


def _ids(results: list[Any]) -> list[int]:
    from zohocrmsdk.src.com.zoho.crm.api.record import SuccessResponse

    ids = []
    for result in results:
        assert isinstance(result, SuccessResponse), (result.get_code().get_value(), result.get_details())
        ids.append(int(result.get_details()["id"]))
    return ids


def test_the_official_sdk_works_unchanged(sim: SimulatorProcess, tmp_path: Path) -> None:
    from zohocrmsdk.src.com.zoho.crm.api import ParameterMap
    from zohocrmsdk.src.com.zoho.crm.api.record import (
        ActionWrapper,
        DeleteRecordsParam,
        GetRecordParam,
        RecordOperations,
        ResponseWrapper,
        SearchRecordsParam,
        SuccessResponse,
    )

    admin = httpx.Client(base_url=sim.base_url, timeout=10)
    assert admin.post("/__sim/reset").status_code == 200
    _initialize(sim.base_url, tmp_path)

    # Upsert Products (the SDK first reads /settings/fields?module=Products) and Accounts.
    product_ids = _ids(
        _upsert(
            "Products",
            [_record("Products", Product_Name=f"SDK bolt {i}", Kingdee_ID=f"SDK-{i}", Unit_Price=1.5 + i)
             for i in range(3)],
            ["Kingdee_ID"],
        )
    )  # fmt: skip
    again = _upsert("Products", [_record("Products", Product_Name="SDK bolt 0", Kingdee_ID="SDK-0")], ["Kingdee_ID"])
    assert _ids(again) == product_ids[:1]
    assert again[0].get_details()["Modified_By"] is not None
    account_ids = _ids(
        _upsert(
            "Accounts",
            [_record("Accounts", Account_Name="上海测试有限公司", Kingdee_Customer_ID="CUST-1", Kingdee_Number="C001")],
            ["Kingdee_Customer_ID"],
        )
    )

    # Get one record; the SDK parses its fields by the metadata it fetched.
    params = ParameterMap()
    params.add(GetRecordParam.fields, "Product_Name,Kingdee_ID,Unit_Price")
    got = RecordOperations("Products").get_record(product_ids[1], params)
    assert got is not None and got.get_status_code() == 200
    wrapper = got.get_object()
    assert isinstance(wrapper, ResponseWrapper)
    (product,) = wrapper.get_data()
    assert product.get_id() == product_ids[1]
    assert product.get_key_value("Kingdee_ID") == "SDK-1"
    assert product.get_key_value("Unit_Price") == 2.5

    account = RecordOperations("Accounts").get_record(account_ids[0]).get_object().get_data()[0]
    assert account.get_key_value("Account_Name") == "上海测试有限公司"
    assert account.get_key_value("Modified_By").get_name() == "CDC Hub Integration"

    # A Sales Order with line items: the SDK now also reads the metadata of Ordered_Items (a subform) and of
    # every lookup target, recursively, and parses the rows as LineItemProduct.
    from zohocrmsdk.src.com.zoho.crm.api.record import BodyWrapper, Record

    line = Record()
    from zohocrmsdk.src.com.zoho.crm.api.record import LineItemProduct

    line_product = LineItemProduct()
    line_product.set_id(product_ids[2])
    line.add_key_value("Product_Name", line_product)
    line.add_key_value("Quantity", 4.0)
    line.add_key_value("Kingdee_Entry_ID", "E-1")
    order = _record("Sales_Orders", Subject="SO-SDK-1", Kingdee_Order_ID="O-SDK-1", Ordered_Items=[line])
    order.add_key_value("Account_Name", _record("Accounts", id=account_ids[0]))
    body = BodyWrapper()
    body.set_data([order])
    created = RecordOperations("Sales_Orders").create_records(body)
    assert created is not None and created.get_status_code() == 201, created and created.get_object()
    (order_id,) = _ids(created.get_object().get_data())
    fetched = RecordOperations("Sales_Orders").get_record(order_id).get_object().get_data()[0]
    (row,) = fetched.get_key_value("Ordered_Items")
    assert row.get_key_value("Quantity") == 4.0
    assert row.get_key_value("Total") == 14.0  # 4 × Unit_Price 3.5, the list price defaulted from the product
    assert fetched.get_key_value("Grand_Total") == 14.0

    from zohocrmsdk.src.com.zoho.crm.api.modules import ModulesOperations
    from zohocrmsdk.src.com.zoho.crm.api.modules import ResponseWrapper as ModulesWrapper

    modules = ModulesOperations().get_modules(ParameterMap())
    assert isinstance(modules.get_object(), ModulesWrapper)
    names = {m.get_api_name(): m.get_generated_type().get_value() for m in modules.get_object().get_modules()}
    assert names["Deliveries"] == "custom" and names["Sales_Orders"] == "default"

    # Search.
    search = ParameterMap()
    search.add(SearchRecordsParam.criteria, "(Kingdee_ID:equals:SDK-2)")
    found = RecordOperations("Products").search_records(search)
    assert found is not None and found.get_status_code() == 200
    assert [r.get_id() for r in found.get_object().get_data()] == [product_ids[2]]
    nothing = ParameterMap()
    nothing.add(SearchRecordsParam.criteria, "(Kingdee_ID:equals:nope)")
    assert RecordOperations("Products").search_records(nothing).get_status_code() == 204

    # Delete.
    delete = ParameterMap()
    for record_id in product_ids[:2]:
        delete.add(DeleteRecordsParam.ids, str(record_id))
    deleted = RecordOperations("Products").delete_records(delete)
    assert deleted is not None and deleted.get_status_code() == 200
    answer = deleted.get_object()
    assert isinstance(answer, ActionWrapper)
    assert all(isinstance(r, SuccessResponse) for r in answer.get_data())
    live = admin.get("/__sim/records/Products").json()["records"]
    assert [r["Kingdee_ID"] for r in live] == ["SDK-2"]

    # What the SDK called: one token refresh, the metadata it needs, and the calls above.
    log = admin.get("/__sim/requests").json()["requests"]
    paths = [(e["method"], e["path"]) for e in log]
    assert sum(p == "/oauth/v2/token" for _, p in paths) == 1
    assert ("GET", "/crm/v8/settings/fields") in paths
    assert ("GET", "/crm/v8/users") in paths
    assert ("GET", "/crm/v8/org") in paths
    fetched_fields = [e["query"]["module"] for e in log if e["path"] == "/crm/v8/settings/fields"]
    assert {"Products", "Accounts", "Sales_Orders", "Ordered_Items"} <= set(fetched_fields)
    assert all(e["status"] < 400 for e in log), [(e["path"], e["status"]) for e in log if e["status"] >= 400]
    logging.getLogger(__name__).info("SDK calls: %s", paths)
    admin.close()
