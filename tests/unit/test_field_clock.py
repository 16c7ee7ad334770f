"""The field clock's rules: echoes dropped, owned fields always written, shared fields last-writer-wins."""

from __future__ import annotations

import hashlib
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


def test_a_ledger_of_an_earlier_version_keeps_what_its_clock_knew(tmp_path: Path) -> None:
    """Earlier versions kept a row per field (``field_clock``); opening the clock moves them into entity rows once,
    claims not confirmed included, and the old table goes."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE field_clock (entity VARCHAR(128), field VARCHAR(128), side VARCHAR(16), "
            "source_time_ms BIGINT, fingerprint VARCHAR(32), value TEXT, pending INTEGER, updated_at_ms BIGINT, "
            "PRIMARY KEY (entity, field))")
        conn.exec_driver_sql(
            "INSERT INTO field_clock VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [("materials:1", "Product_Name", "crm", 5_000, value_fingerprint("喉罩"), json.dumps("喉罩"), 0, 1),
             ("materials:1", "Qty", "kingdee", 6_000, value_fingerprint(1.5), "1.5", 1, 1),
             ("materials:2", "Description", "kingdee", 7_000, value_fingerprint(None), None, 0, 1)])
    clock = FieldClock(engine)
    known = clock.known(["materials:1", "materials:2"])
    assert known["materials:1"]["Product_Name"] == ClockEntry("crm", 5_000, value_fingerprint("喉罩"), "喉罩")
    assert known["materials:1"]["Qty"] == ClockEntry("kingdee", 6_000, value_fingerprint(1.5), 1.5, pending=True)
    assert known["materials:2"]["Description"].value is None
    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'field_clock'").scalar() == 0
    clock.confirm([("materials:1", "kingdee", 6_000)])
    assert not FieldClock(open_engine(url)).known(["materials:1"])["materials:1"]["Qty"].pending


def test_fields_with_any_name_are_restored(tmp_path: Path) -> None:
    """Kingdee keys carry dots; a name with a quote must not break the restore either."""
    clock = FieldClock(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    names = ["FMaterialGroup.FNumber", 'say "hi"', "普通"]
    clock.record("materials:1", "kingdee", 5_000, {n: "旧" for n in names})
    before = clock.known(["materials:1"])["materials:1"]
    clock.record_many([("materials:1", "kingdee", 6_000, {n: "新" for n in names} | {"Extra": 1})], pending=True)
    clock.restore("materials:1", {**{n: before[n] for n in names}, "Extra": None})
    assert clock.known(["materials:1"])["materials:1"] == before


def test_fingerprints_stay_those_of_earlier_versions() -> None:
    """Fingerprints are stored: text and integers, written by orjson for speed, hash what the standard library
    wrote (every character outside the surrogates, integers at and beyond 64 bits)."""
    def standard(value: object) -> str:
        text = json.dumps("" if value is None else value, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["".join(chars[i : i + 512]) for i in range(0, len(chars), 512)]
    values = [*texts, "", None, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**70, True, 1.5, 1e16, ["甲", 1],
              {"b": 1, "a": 2}]
    for value in values:
        assert value_fingerprint(value) == standard(value), repr(value)[:40]
