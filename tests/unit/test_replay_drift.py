"""How replay compares a flow's record with the target's, and how its window bounds are read."""

from __future__ import annotations

import io

import pytest

from cdchub.replay import Bound, ProgressBar, ReplayRefused
from connectors.common.drift import differing_fields, same
from connectors.common.replay_mode import ReplaySession
from connectors.common.sync import SyncCommand
from connectors.zoho.listed import LIST_FROM, list_for
from core.ledger import Position


@pytest.mark.parametrize(("desired", "current"), [
    (None, ""), ("", None), (200.0, 200), (176.99, "176.99"), ({"id": "48768"}, {"id": "48768", "name": "协和医院"}),
    ("2026-11-30T10:00:00+08:00", "2026-11-30T02:00:00Z"), (True, True),
    ([{"Product_Name": {"id": "1"}, "Quantity": 10}], [{"id": "9", "Product_Name": {"id": "1", "name": "喉罩"},
                                                       "Quantity": 10.0, "Net_Total": 226}]),
])
def test_values_the_target_shows_differently_are_the_same(desired: object, current: object) -> None:
    assert same(desired, current)


@pytest.mark.parametrize(("desired", "current"), [
    ("喉罩", "喉罩（手改）"), (True, False), (200, 200.01), ({"id": "1"}, {"id": "2"}), ("x", None),
    ([{"Quantity": 10}], [{"Quantity": 10}, {"Quantity": 1}]), ("2026-11-30T10:00:00+08:00", "2026-11-30T10:00:00Z"),
])
def test_real_differences_are_drift(desired: object, current: object) -> None:
    assert not same(desired, current)


def test_only_differing_non_identity_fields_are_reported() -> None:
    desired = {"Kingdee_ID": "100001", "Product_Name": "喉罩", "Product_Active": True}
    current = {"Kingdee_ID": "100001", "Product_Name": "喉罩", "Product_Active": False, "Owner": {"id": "7"}}
    assert differing_fields(desired, current, {"Kingdee_ID"}) == {
        "Product_Active": {"target": False, "replay": True}}


def test_bounds_are_beginning_an_offset_or_a_china_time() -> None:
    assert Bound.parse("beginning") == Bound() and Bound.parse("120") == Bound(offset=120)
    assert Bound.parse("2026-11-30T10:00:00") == Bound.parse("2026-11-30T10:00:00+08:00") \
        == Bound(time_ms=1_796_004_000_000)
    with pytest.raises(ReplayRefused, match="not an offset"):
        Bound.parse("yesterday")


def test_the_window_and_the_sample_choose_what_is_compared() -> None:
    session = ReplaySession(dry_run=True, window={("kingdee.material", 0): (10, 20)}, sample_percent=0)
    assert session.in_window(Position("kingdee.material", 0, 10))
    assert not session.in_window(Position("kingdee.material", 0, 20))
    assert session.in_window(Position("kingdee.material", 1, 0)), "a partition outside the window map: all of it"
    assert not session.sampled("100001")
    assert ReplaySession(dry_run=True).sampled("100001")


def test_the_progress_line_shows_position_rate_and_share() -> None:
    session = ReplaySession(dry_run=True)
    for _ in range(50):
        session.saw("kingdee.material")
    line = ProgressBar(session, 200, io.StringIO()).line()
    assert "25%" in line and "50/200 events" in line and "/s" in line


class Listing:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def list_records(self, module: str, fields: list[str]) -> list[dict[str, object]]:
        self.asked.append(fields)
        return [{"id": "48768001", "Kingdee_ID": "100001", "Product_Name": "喉罩"}]


def command(key: str, **record: object) -> SyncCommand:
    return SyncCommand(flow="materials", key=key, number=None, version=1, record=record, fingerprint="f",
                       captured_at_ms=0, position=Position())


def test_many_records_are_listed_page_by_page_with_the_fields_written() -> None:
    client = Listing()
    many = [command(str(100001 + i), Kingdee_ID=str(100001 + i), Product_Name="喉罩") for i in range(LIST_FROM)]
    listed = list_for(client, "Products", many, "Kingdee_ID")  # type: ignore[arg-type]
    assert listed is not None and client.asked == [["Kingdee_ID", "Product_Name", "id"]]
    assert listed.find(None, "100001") == listed.find("48768001") == {"id": "48768001", "Kingdee_ID": "100001",
                                                                      "Product_Name": "喉罩"}
    assert listed.find("1", "100002") is None, "not in the CRM: to be created"


def test_few_records_or_line_items_are_read_one_by_one() -> None:
    client = Listing()
    assert list_for(client, "Products", [command("1", Kingdee_ID="1")], "Kingdee_ID") is None  # type: ignore[arg-type]
    orders = [command(str(i), Kingdee_Order_ID=str(i), Ordered_Items=[{"Quantity": 1}]) for i in range(LIST_FROM)]
    assert list_for(client, "Sales_Orders", orders, "Kingdee_Order_ID") is None  # type: ignore[arg-type]
    assert client.asked == []
