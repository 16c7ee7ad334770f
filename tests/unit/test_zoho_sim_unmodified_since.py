"""Conditional updates of the ZOHO simulator: ``If-Unmodified-Since`` refuses records changed after it."""

from __future__ import annotations

from starlette.testclient import TestClient

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.zoho.app import create_app
from infra.simulators.zoho.auth import HUMAN_USER
from infra.simulators.zoho.catalog import MODULES
from infra.simulators.zoho.config import ZohoCredentials, ZohoSimConfig
from infra.simulators.zoho.store import RecordStore
from infra.simulators.zoho.timefmt import ZohoClock
from infra.simulators.zoho.writer import RecordWriter

PRODUCTS = MODULES["Products"]


def writer_with(*names: str) -> tuple[RecordWriter, RecordStore, list[str]]:
    store = RecordStore(SqliteDb(None))
    writer = RecordWriter(store, MODULES, ZohoClock())
    outcome = writer.insert(PRODUCTS, [{"Product_Name": n, "Kingdee_ID": n} for n in names], HUMAN_USER)
    return writer, store, [str(r["details"]["id"]) for r in outcome.results]


def set_modified(store: RecordStore, record_id: str, ms: int) -> None:
    store.db.execute("UPDATE records SET modified_ms = ? WHERE id = ?", (ms, record_id))


def test_a_record_changed_after_the_time_is_refused_and_left_as_it_was() -> None:
    writer, store, [a] = writer_with("A")
    set_modified(store, a, 1_800_000_005_400)
    outcome = writer.update(PRODUCTS, [{"id": a, "Product_Name": "A2"}], HUMAN_USER,
                            unmodified_since_ms=1_800_000_004_000)
    assert outcome.results == [{"code": "ALREADY_MODIFIED", "details": {"id": a},
                                "message": "the record has been modified since the given time", "status": "error"}]
    assert outcome.http_status() == 412
    record = store.get("Products", a)
    assert record is not None and record.data["Product_Name"] == "A" and record.modified_ms == 1_800_000_005_400


def test_times_compare_to_the_second_as_zoho_shows_them() -> None:
    writer, store, [a] = writer_with("A")
    set_modified(store, a, 1_800_000_005_999)  # shown as …05, the time a client read and sends back
    outcome = writer.update(PRODUCTS, [{"id": a, "Product_Name": "A2"}], HUMAN_USER,
                            unmodified_since_ms=1_800_000_005_000)
    assert outcome.http_status() == 200 and outcome.results[0]["code"] == "SUCCESS"


def test_a_bulk_update_writes_the_unchanged_records_only() -> None:
    writer, store, [a, b] = writer_with("A", "B")
    set_modified(store, a, 1_800_000_001_000)
    set_modified(store, b, 1_800_000_009_000)
    outcome = writer.update(PRODUCTS, [{"id": a, "Description": "x"}, {"id": b, "Description": "y"}], HUMAN_USER,
                            unmodified_since_ms=1_800_000_002_000)
    assert [r["code"] for r in outcome.results] == ["SUCCESS", "ALREADY_MODIFIED"]
    assert outcome.http_status() == 207
    without = writer.update(PRODUCTS, [{"id": b, "Description": "y"}], HUMAN_USER)
    assert without.http_status() == 200, "without the header nothing is conditional"


def test_the_header_on_the_api() -> None:
    config = ZohoSimConfig(ZohoCredentials("1000.C", "s", "1000.r"), None)
    with TestClient(create_app(config)) as sim:
        token = sim.post("/oauth/v2/token", data={"grant_type": "refresh_token", "client_id": "1000.C",
                                                  "client_secret": "s", "refresh_token": "1000.r"}).json()
        auth = {"Authorization": f"Zoho-oauthtoken {token['access_token']}"}
        created = sim.post("/crm/v8/Products", headers=auth, json={"data": [{"Product_Name": "A"}]}).json()
        record_id, shown = created["data"][0]["details"]["id"], created["data"][0]["details"]["Modified_Time"]
        ok = sim.put(f"/crm/v8/Products/{record_id}", headers={**auth, "If-Unmodified-Since": shown},
                     json={"data": [{"Description": "x"}]})
        assert ok.status_code == 200
        stale = sim.put("/crm/v8/Products", headers={**auth, "If-Unmodified-Since": "2020-01-01T00:00:00+08:00"},
                        json={"data": [{"id": record_id, "Description": "y"}]})
        assert stale.status_code == 412 and stale.json()["data"][0]["code"] == "ALREADY_MODIFIED"
        bad = sim.put(f"/crm/v8/Products/{record_id}", headers={**auth, "If-Unmodified-Since": "yesterday"},
                      json={"data": [{"Description": "z"}]})
        assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_DATA")
        assert sim.get(f"/crm/v8/Products/{record_id}", headers=auth).json()["data"][0]["Description"] == "x"
