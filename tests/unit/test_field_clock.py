"""The field clock's rules: echoes dropped, owned fields always written, shared fields last-writer-wins."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from core.field_clock import ClockEntry, FieldClock, newer, value_fingerprint
from core.ledger import open_engine

SHARED = frozenset({"Product_Name"})


def entry(side: str, t: int, value: object) -> ClockEntry:
    return ClockEntry(side, t, value_fingerprint(value), value)


def test_a_value_the_other_side_already_has_is_not_written_again() -> None:
    known = {"Product_Name": entry("crm", 5_000, "喉罩"), "Description": entry("crm", 5_000, "说明")}
    d = FieldClock.decide(known, "kingdee", 9_000, {"Product_Name": "喉罩", "Description": "说明"}, SHARED)
    assert d.write == {} and d.dropped == {"Product_Name": "unchanged", "Description": "unchanged"}


def test_a_shared_field_older_than_the_other_sides_change_is_dropped() -> None:
    known = {"Product_Name": entry("crm", 9_000, "CRM 的名字")}
    older = FieldClock.decide(known, "kingdee", 7_000, {"Product_Name": "Kingdee 的名字"}, SHARED)
    assert older.write == {} and older.dropped == {"Product_Name": "newer in crm"}
    later = FieldClock.decide(known, "kingdee", 11_000, {"Product_Name": "Kingdee 的名字"}, SHARED)
    assert later.write == {"Product_Name": "Kingdee 的名字"}


def test_an_owned_field_is_written_whatever_the_times() -> None:
    known = {"Product_Code": entry("crm", 9_000, "HAND")}
    d = FieldClock.decide(known, "kingdee", 1_000, {"Product_Code": "1.01.0001"}, SHARED)
    assert d.write == {"Product_Code": "1.01.0001"}


def test_times_compare_in_whole_seconds_with_the_incoming_change_winning_a_tie() -> None:
    assert newer(2_000, 1_999) and not newer(1_999, 1_000) and not newer(1_900, 1_100)


def test_claims_are_recorded_and_a_failed_write_is_released(tmp_path: Path) -> None:
    clock = FieldClock(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    clock.record("materials:1", "kingdee", 1_000, {"Product_Name": "旧", "Specification": "4#"})
    before = clock.known(["materials:1"])["materials:1"]
    clock.record("materials:1", "crm", 2_000, {"Product_Name": "新", "Description": "新增"})
    assert clock.known(["materials:1"])["materials:1"]["Product_Name"].value == "新"
    clock.restore("materials:1", {"Product_Name": before["Product_Name"], "Description": None})
    after = clock.known(["materials:1"])["materials:1"]
    assert after["Product_Name"] == before["Product_Name"]
    assert "Description" not in after and after["Specification"].value == "4#"


def test_an_unconfirmed_claim_counts_for_the_other_side_only(tmp_path: Path) -> None:
    clock = FieldClock(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    clock.record_many([("materials:1", "crm", 5_000, {"Product_Name": "新"})], pending=True)
    known = clock.known(["materials:1"])["materials:1"]
    echo = FieldClock.decide(known, "kingdee", 6_000, {"Product_Name": "新"}, SHARED)
    assert echo.dropped == {"Product_Name": "unchanged"}, "the write's echo finds its value"
    again = FieldClock.decide(known, "crm", 5_000, {"Product_Name": "新"}, SHARED)
    assert again.write == {"Product_Name": "新"}, "after a crash the writer does not trust its own claim"
    clock.record_many([("materials:1", "kingdee", 5_000, {"Description": "说明"})], pending=True)
    clock.confirm([("materials:1", "crm", 5_000), ("materials:2", "crm", 5_000)])
    known = clock.known(["materials:1"])["materials:1"]
    assert FieldClock.decide(known, "crm", 5_000, {"Product_Name": "新"}, SHARED).write == {}
    assert known["Description"].pending, "another side's claim of the same entity is not confirmed by this one"


def test_values_are_kept_as_the_standard_library_would_read_them_back(tmp_path: Path) -> None:
    """The clock writes values with orjson; every kind of value reads back as ``json.dumps`` had written it, the
    ones orjson writes otherwise or refuses (non-finite floats, integers beyond 64 bits) included."""
    values = {"name": "喉罩 ✓", "price": 12.5, "qty": 3, "active": True, "none": None, "tags": ["甲", 1],
              "lookup": {"id": "77", "name": "华东"}, "int_keys": {1: "x"}, "when": datetime(2026, 12, 8, 9, 30),
              "amount": Decimal("12.50"), "huge": 2**70, "nan": float("nan"), "inf": float("-inf")}
    clock = FieldClock(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    clock.record("materials:1", "kingdee", 5_000, values)
    known = clock.known(["materials:1"])["materials:1"]
    for name, value in values.items():
        expected = json.loads(json.dumps(value, ensure_ascii=False, default=str))
        got = known[name].value
        assert got == expected or (got != got and expected != expected), name  # NaN is not equal to itself
        assert known[name].fingerprint == value_fingerprint(value)
