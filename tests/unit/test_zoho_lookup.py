"""Finding a CRM record by its key although the search index trails writes (``connectors/zoho/lookup.py``)."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from connectors.zoho.client import ZohoClient
from connectors.zoho.lookup import find_by_key
from connectors.zoho.settings import ZohoSettings


class Crm:
    """Records as they are, and what the (stale) search index shows of them."""

    def __init__(self, records: dict[str, dict], indexed: dict[str, dict]) -> None:
        self.records = records
        self.indexed = indexed
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if path == "/crm/v8/Products/search":
            key = request.url.params["criteria"].split(":equals:")[1].rstrip(")")
            hits = [r for r in self.indexed.values() if r["Kingdee_ID"] == key]
            return httpx.Response(200, json={"data": hits}) if hits else httpx.Response(204)
        if path == "/crm/v8/Products":
            assert "If-Modified-Since" in request.headers and request.url.params["sort_order"] == "desc"
            rows = [{"id": r["id"], "Kingdee_ID": r["Kingdee_ID"]} for r in self.records.values()]
            return httpx.Response(200, json={"data": rows, "info": {"more_records": False}})
        record = self.records.get(path.rsplit("/", 1)[1])
        return httpx.Response(200, json={"data": [record]}) if record else httpx.Response(204)


def client_of(crm: Crm) -> ZohoClient:
    settings = ZohoSettings(accounts_url="http://crm", api_domain="http://crm", client_secret=SecretStr("s"),
                            refresh_token=SecretStr("r"))
    return ZohoClient(settings, httpx.Client(transport=httpx.MockTransport(crm)))


def test_a_record_search_does_not_see_yet_is_found_in_the_recent_list() -> None:
    crm = Crm({"z1": {"id": "z1", "Kingdee_ID": "K-1", "Product_Name": "喉罩"}}, indexed={})
    assert find_by_key(client_of(crm), "Products", "Kingdee_ID", "K-1") == crm.records["z1"]
    assert "GET /crm/v8/Products" in crm.calls


def test_a_stale_hit_is_read_again_and_dropped_when_it_lost_the_key() -> None:
    now = {"z1": {"id": "z1", "Kingdee_ID": "K-1B", "Product_Name": "喉罩（新）"}}
    crm = Crm(now, indexed={"z1": {"id": "z1", "Kingdee_ID": "K-1", "Product_Name": "喉罩"}})
    assert find_by_key(client_of(crm), "Products", "Kingdee_ID", "K-1") is None


def test_a_hit_is_returned_as_the_record_is_now_without_listing() -> None:
    now = {"z1": {"id": "z1", "Kingdee_ID": "K-1", "Product_Name": "喉罩（新）"}}
    crm = Crm(now, indexed={"z1": {"id": "z1", "Kingdee_ID": "K-1", "Product_Name": "喉罩"}})
    assert find_by_key(client_of(crm), "Products", "Kingdee_ID", "K-1") == now["z1"]
    assert "GET /crm/v8/Products" not in crm.calls
