"""The ZOHO simulator's search index trails writes by the configured lag; everything else sees writes at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.zoho import search_index
from infra.simulators.zoho.auth import HUMAN_USER
from infra.simulators.zoho.catalog import MODULES
from infra.simulators.zoho.reader import RecordReader
from infra.simulators.zoho.search_index import SearchIndex
from infra.simulators.zoho.store import RecordStore
from infra.simulators.zoho.timefmt import ZohoClock
from infra.simulators.zoho.writer import RecordWriter

PRODUCTS = MODULES["Products"]


class Crm:
    """Store, writer and reader wired like the simulator, with a clock the test moves (ms)."""

    def __init__(self, lag_ms: int) -> None:
        self.now = 1_800_000_000_000
        store = RecordStore(SqliteDb(None))
        self.index = SearchIndex(lag_ms)
        store.on_write = lambda module, rid, before, _at: self.index.written(module, rid, before, self.now)
        clock = ZohoClock()
        self.store = store
        self.writer = RecordWriter(store, MODULES, clock)
        self.reader = RecordReader(store, clock, MODULES, self.index)

    def create(self, kingdee_id: str, name: str) -> str:
        outcome = self.writer.insert(PRODUCTS, [{"Product_Name": name, "Kingdee_ID": kingdee_id}], HUMAN_USER)
        return str(outcome.results[0]["details"]["id"])

    def search(self, criteria: str) -> list[tuple[str, str]]:
        body = self.reader.search(PRODUCTS, {"criteria": criteria})
        return [(r["id"], r["Product_Name"]) for r in body["data"]] if body else []


@pytest.fixture()
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Crm]:
    crm = Crm(lag_ms=2_000)
    monkeypatch.setattr(search_index, "now_ms", lambda: crm.now)
    yield crm


def test_a_new_record_is_found_only_after_the_lag(crm: Crm) -> None:
    record_id = crm.create("K-1", "喉罩")
    assert crm.search("(Kingdee_ID:equals:K-1)") == []
    assert crm.search("(Product_Name:starts_with:喉)") == [], "scans lag too, not only key lookups"
    assert crm.store.get("Products", record_id) is not None, "reading by id does not lag"
    crm.now += 1_999
    assert crm.search("(Kingdee_ID:equals:K-1)") == []
    crm.now += 1
    assert crm.search("(Kingdee_ID:equals:K-1)") == [(record_id, "喉罩")]


def test_a_changed_record_is_found_by_its_old_values_until_the_lag_after_its_last_change(crm: Crm) -> None:
    record_id = crm.create("K-2", "喉罩")
    crm.now += 5_000
    crm.writer.update(PRODUCTS, [{"id": record_id, "Product_Name": "喉罩（加强型）", "Kingdee_ID": "K-2B"}], HUMAN_USER)
    assert crm.search("(Kingdee_ID:equals:K-2)") == [(record_id, "喉罩")], "the old key, the old name"
    assert crm.search("(Kingdee_ID:equals:K-2B)") == []
    crm.now += 1_500
    crm.writer.update(PRODUCTS, [{"id": record_id, "Description": "一次性"}], HUMAN_USER)  # before it was indexed
    crm.now += 1_500
    assert crm.search("(Kingdee_ID:equals:K-2)") == [(record_id, "喉罩")], "indexed the lag after the last write"
    crm.now += 500
    assert crm.search("(Kingdee_ID:equals:K-2B)") == [(record_id, "喉罩（加强型）")]
    assert crm.search("(Kingdee_ID:equals:K-2)") == []


def test_a_deleted_record_is_still_found_within_the_lag(crm: Crm) -> None:
    record_id = crm.create("K-3", "雾化器")
    crm.now += 5_000
    crm.writer.delete(PRODUCTS, [record_id], HUMAN_USER)
    assert crm.search("(Kingdee_ID:equals:K-3)") == [(record_id, "雾化器")]
    crm.now += 2_000
    assert crm.search("(Kingdee_ID:equals:K-3)") == []


def test_no_lag_means_search_sees_every_write_at_once() -> None:
    crm = Crm(lag_ms=0)
    record_id = crm.create("K-4", "吸痰管")
    assert crm.search("(Kingdee_ID:equals:K-4)") == [(record_id, "吸痰管")]
    crm.writer.update(PRODUCTS, [{"id": record_id, "Product_Name": "吸痰管 F12"}], HUMAN_USER)
    assert crm.search("(Product_Name:equals:吸痰管 F12)") == [(record_id, "吸痰管 F12")]
