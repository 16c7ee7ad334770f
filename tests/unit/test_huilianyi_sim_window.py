"""The Huilianyi simulator's report query: request times, body parsing, the lastModify window, paging."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.huilianyi.errors import HuilianyiApiError
from infra.simulators.huilianyi.generator import ReportFactory, ReportSpec
from infra.simulators.huilianyi.query import parse_window_query
from infra.simulators.huilianyi.reports import ReportStore, WindowQuery, api_view
from infra.simulators.huilianyi.timefmt import format_instant, parse_request_time

T0 = parse_request_time("2024-01-01 00:00:00")  # = 2023-12-31T16:00:00Z


@pytest.fixture
def store() -> Iterator[ReportStore]:
    db = SqliteDb(None)
    yield ReportStore(db)
    db.close()


def add(store: ReportStore, modified_ms: int, status: int = 1001) -> str:
    report_id, code = store.new_keys()
    doc = ReportFactory("HQ01", "oid").build(
        random.Random(1), ReportSpec(), report_id=report_id, business_code=code, at_ms=modified_ms
    )
    doc["status"] = status
    store.put(doc)
    return code


def codes(store: ReportStore, **query: object) -> list[str]:
    return [d["businessCode"] for d in store.search(WindowQuery(**query))]  # type: ignore[arg-type]


def test_request_times_are_utc8_and_responses_iso_instants_in_utc() -> None:
    assert format_instant(T0) == "2023-12-31T16:00:00Z"
    assert format_instant(T0 + 250) == "2023-12-31T16:00:00.250Z"
    assert parse_request_time("2024-01-01") == T0
    assert parse_request_time("2023-12-31T16:00:00Z") == T0
    assert parse_request_time("2024-01-01 00:00:00.5") == T0 + 500
    assert parse_request_time("2024-01-01T00:00:00+08:00") == T0
    for bad in ("2024/01/01", "yesterday", "2024-13-01 00:00:00", ""):
        with pytest.raises(ValueError):
            parse_request_time(bad)


def test_window_is_inclusive_start_exclusive_end_at_millisecond_precision(store: ReportStore) -> None:
    before = add(store, T0 - 1)
    at_start = add(store, T0)
    inside = add(store, T0 + 999)
    at_end = add(store, T0 + 1000)

    assert codes(store, start_ms=T0, end_ms=T0 + 1000) == [at_start, inside]
    assert codes(store, start_ms=T0 + 1000) == [at_end]
    assert codes(store, end_ms=T0) == [before]
    # Consecutive windows see every report exactly once.
    windows = [(None, T0), (T0, T0 + 500), (T0 + 500, T0 + 1000), (T0 + 1000, None)]
    seen = [c for s, e in windows for c in codes(store, start_ms=s, end_ms=e)]
    assert sorted(seen) == sorted([before, at_start, inside, at_end])


def test_status_filter_and_stable_order_by_modified_then_id(store: ReportStore) -> None:
    first = add(store, T0 + 10, 1003)
    second = add(store, T0 + 10, 1002)  # same time: id decides
    third = add(store, T0 + 5, 1003)  # earlier time comes first

    assert codes(store) == [third, first, second]
    assert codes(store, statuses=(1003,)) == [third, first]
    assert codes(store, statuses=(1002, 1003)) == [third, first, second]
    assert codes(store, statuses=(1006,)) == []


def test_pages_from_one_and_past_the_end_empty(store: ReportStore) -> None:
    all_codes = [add(store, T0 + i) for i in range(5)]

    pages = [codes(store, page=p, size=2) for p in (1, 2, 3, 4)]

    assert pages == [all_codes[:2], all_codes[2:4], all_codes[4:], []]


def test_body_parsing_defaults_and_lenient_forms() -> None:
    assert parse_window_query(None) == WindowQuery()
    query = parse_window_query(
        {
            "lastModifyStartDate": "2024-01-01 00:00:00",
            "lastModifyEndDate": "2024-01-02 00:00:00",
            "statusList": ["1003", 1002, 1003],
            "page": "2",
            "size": 50,
        }
    )
    assert query == WindowQuery(T0, T0 + 86_400_000, (1002, 1003), 2, 50)
    assert parse_window_query({"statusList": "1002,1004"}).statuses == (1002, 1004)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lastModifyStartDate": "01/01/2024"}, "lastModifyStartDate"),
        ({"lastModifyStartDate": "2024-01-02", "lastModifyEndDate": "2024-01-01"}, "lastModifyEndDate"),
        ({"page": 0}, "page"),
        ({"size": 101}, "size"),
        ({"size": "many"}, "size"),
        ({"statusList": {"a": 1}}, "statusList"),
        ({"statusList": ["x"]}, "statusList"),
        ([1, 2], "body"),
    ],
)
def test_bad_bodies_get_a_400_naming_the_field(body: object, field: str) -> None:
    with pytest.raises(HuilianyiApiError) as caught:
        parse_window_query(body)
    assert caught.value.status == 400
    assert caught.value.body()["errorCode"] == "INVALID_PARAMETER"
    assert field in caught.value.body()["message"]


def test_api_view_renders_times_and_keeps_the_documented_fields(store: ReportStore) -> None:
    code = add(store, T0)
    view = api_view(store.get(code) or {})

    assert view["lastModifiedDate"] == view["createdDate"] == "2023-12-31T16:00:00Z"
    assert view["lastSubmittedDate"] is None
    expected = {
        "id", "expenseReportOID", "businessCode", "title", "status", "rejectType", "type", "applicantOID",
        "applicantName", "applicantEmployeeId", "departmentName", "companyCode", "currencyCode",
        "totalAmount", "baseCurrencyAmount", "realPaymentAmount", "createdDate", "lastSubmittedDate",
        "lastModifiedDate", "customFormValueVOList", "invoiceVOList",
    }  # fmt: skip
    assert expected <= set(view)
    line_keys = {"invoiceOID", "expenseTypeCode", "expenseTypeName", "amount", "currencyCode", "taxAmount",
                 "taxRate", "comment", "attachments"}  # fmt: skip
    assert all(line_keys <= set(line) for line in view["invoiceVOList"])
    assert round(sum(line["amount"] for line in view["invoiceVOList"]), 2) == view["totalAmount"]
