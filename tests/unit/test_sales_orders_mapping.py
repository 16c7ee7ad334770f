"""The sales-order mapping (flows/mappings/sales_orders.toml): header, lines, lookups, status table, waiting."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from core.ledger import Position
from core.mapping import MappingError, Ref, refs_in, resolve_refs
from core.toml_specs import SpecError
from flows.kingdee_documents import DocumentEvent
from flows.sales_orders import AwaitReferences, Unresolved, to_draft
from flows.specs import load_mapping

MAPPING = load_mapping("sales_orders")


def order(**header: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "FID": 100501, "FBILLNO": "XSDD000123", "FDATE": datetime(2024, 5, 6), "FDOCUMENTSTATUS": "C",
        "FCLOSESTATUS": "A", "FCANCELSTATUS": "A", "FCUSTID": 3001, "customer_number": "CUST0001",
        "customer_name": "北京协和医院", "FNOTE": " ",
        "entries": [
            {"FENTRYID": 9001, "FSEQ": 1, "FMATERIALID": 2001, "material_number": "1.01.0001", "FQTY": Decimal("10"),
             "FPRICE": Decimal("17.699115"), "FTAXPRICE": Decimal("20"), "FTAXRATE": Decimal("13"),
             "FTAXAMOUNT": Decimal("23.01"), "FALLAMOUNT": Decimal("200.00"), "FNOTE": " "},
            {"FENTRYID": 9002, "FSEQ": 2, "FMATERIALID": 2002, "material_number": "1.01.0002", "FQTY": Decimal("2.5"),
             "FPRICE": Decimal("100"), "FTAXPRICE": Decimal("113"), "FTAXRATE": Decimal("13"),
             "FTAXAMOUNT": Decimal("32.50"), "FALLAMOUNT": Decimal("282.50"), "FNOTE": "加急"},
        ],
    }
    doc.update(header)
    return doc


def event(doc: dict[str, Any] | None, op: str = "u", lsn: int = 1000, key: str = "100501") -> DocumentEvent:
    env = {"op": op, "after": doc, "before": None,
           "source": {"lsn": lsn, "commit_time": 1_700_000_000_000, "number": "XSDD000123"}}
    return DocumentEvent(key, env, Position("kingdee.sales_order", 0, lsn))


def test_header_lines_and_lookups() -> None:
    record = MAPPING.to_target(order())
    assert record["Kingdee_Order_ID"] == "100501"
    assert record["Subject"] == record["Kingdee_Bill_No"] == "XSDD000123"
    assert record["Order_Date"] == "2024-05-06"
    assert record["Customer_No"] == "CUST0001"
    assert record["Kingdee_Status"] == "Audited"
    assert record["Deleted_In_Kingdee"] is False
    assert record["Account_Name"] == Ref("customers", "3001", "CUST0001", "Account_Name")
    lines = record["Ordered_Items"]
    assert [line["Kingdee_Entry_ID"] for line in lines] == ["9001", "9002"]
    assert lines[0]["Product_Name"] == Ref("materials", "2001", "1.01.0001", "Ordered_Items[1].Product_Name")
    assert lines[1]["Quantity"] == 2.5 and lines[1]["List_Price"] == 100.0 and lines[1]["Tax"] == 32.5
    assert lines[1]["Tax_Price"] == 113.0 and lines[1]["Amount_With_Tax"] == 282.5
    assert lines[1]["Product_Description"] == "加急" and lines[0]["Product_Description"] is None


def test_resolving_references() -> None:
    record = MAPPING.to_target(order())
    assert {(r.flow, r.key) for r in refs_in(record)} == {("customers", "3001"), ("materials", "2001"),
                                                          ("materials", "2002")}
    resolved, missing = resolve_refs(record, {("customers", "3001"): "A1", ("materials", "2001"): "P1"})
    assert [m.describe() for m in missing] == ["Ordered_Items[2].Product_Name: materials 1.01.0002 (Kingdee id 2002)"]
    assert resolved["Account_Name"] == {"id": "A1"}
    assert resolved["Ordered_Items"][0]["Product_Name"] == {"id": "P1"}
    assert refs_in(resolved) == []


@pytest.mark.parametrize(("columns", "status"), [
    ({"FDOCUMENTSTATUS": "C"}, "Audited"),
    ({"FDOCUMENTSTATUS": "D"}, "Un-audited"),
    ({"FCLOSESTATUS": "B"}, "Closed"),
    ({"FDOCUMENTSTATUS": "D", "FCANCELSTATUS": "B"}, "Voided"),
    ({"FCLOSESTATUS": "B", "FCANCELSTATUS": "B"}, "Voided"),
])
def test_status_table(columns: dict[str, str], status: str) -> None:
    assert MAPPING.to_target(order(**columns))["Kingdee_Status"] == status


@pytest.mark.parametrize("column", ["FDOCUMENTSTATUS", "FCLOSESTATUS", "FCANCELSTATUS"])
def test_unknown_status_letter_is_named(column: str) -> None:
    with pytest.raises(MappingError, match=f"unknown code 'X' in {column}"):
        MAPPING.to_target(order(**{column: "X"}))
    letter = to_draft("sales_orders", MAPPING, event(order(**{column: "X"})))
    assert isinstance(letter, DeadLetter) and "'X'" in letter.error and column in letter.error


def test_only_audited_orders_are_sent_and_deletes_mark() -> None:
    assert to_draft("sales_orders", MAPPING, event(order(FDOCUMENTSTATUS="A"))) is None
    assert to_draft("sales_orders", MAPPING, event(order(FDOCUMENTSTATUS="B"))) is None
    draft = to_draft("sales_orders", MAPPING, event(order(FDOCUMENTSTATUS="D")))
    assert isinstance(draft, SyncCommand) and draft.record["Kingdee_Status"] == "Un-audited"
    deleted = to_draft("sales_orders", MAPPING, event(None, op="d"))
    assert isinstance(deleted, SyncCommand) and deleted.deleted
    assert deleted.record == {"Kingdee_Order_ID": "100501", "Deleted_In_Kingdee": True, "Kingdee_Status": "Deleted"}


def test_line_errors_name_the_line() -> None:
    doc = order()
    doc["entries"][1]["FMATERIALID"] = 0  # Kingdee's empty reference
    letter = to_draft("sales_orders", MAPPING, event(doc))
    assert isinstance(letter, DeadLetter) and letter.error.startswith("Ordered_Items[2].Product_Name: required")


def test_bad_line_config_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        '[target]\nsystem="zoho"\nmodule="M"\nexternal_key="K"\n[fields.K]\nfrom="FID"\n'
        '[lines]\ntarget="Items"\n', encoding="utf-8")
    with pytest.raises(SpecError, match=r"bad.toml: lines.from: is required"):
        load_mapping("bad", tmp_path)
    (tmp_path / "bad.toml").write_text(
        '[target]\nsystem="zoho"\nmodule="M"\nexternal_key="K"\n[fields.K]\nfrom="FID"\n'
        '[status]\ntarget="S"\norder=["FDOCUMENTSTATUS"]\n', encoding="utf-8")
    with pytest.raises(SpecError, match="no table for"):
        load_mapping("bad", tmp_path)


class FakeResolver:
    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], str] = {}
        self.done_up_to = 0

    def already_done(self, cmd: SyncCommand) -> bool:
        return cmd.version <= self.done_up_to

    def resolve(self, cmd: SyncCommand) -> tuple[SyncCommand | None, list[Ref]]:
        record, missing = resolve_refs(cmd.record, self.ids)
        return (None, missing) if missing else (SyncCommand(**{**cmd.__dict__, "record": record}), [])


def draft(lsn: int, **header: Any) -> SyncCommand:
    cmd = to_draft("sales_orders", MAPPING, event(order(**header), lsn=lsn))
    assert isinstance(cmd, SyncCommand)
    return cmd


def test_waits_for_references_then_lands() -> None:
    now = [1000.0]
    resolver = FakeResolver()
    logic = AwaitReferences(resolver, 300.0, None, clock=lambda: now[0])  # type: ignore[arg-type]
    out, discard = logic.on_batch([draft(5)])
    assert out == [] and not discard and logic.notify_at() is not None
    out, discard = logic.on_batch([draft(3)])  # an older version arriving late does not replace the newer one
    assert out == [] and logic.pending is not None and logic.pending.version == 5
    restored = AwaitReferences(resolver, 300.0, logic.snapshot(), clock=lambda: now[0])  # type: ignore[arg-type]
    resolver.ids = {("customers", "3001"): "A1", ("materials", "2001"): "P1", ("materials", "2002"): "P2"}
    now[0] += 10
    out, discard = restored.on_notify()
    assert discard and len(out) == 1 and isinstance(out[0], SyncCommand) and out[0].version == 5
    assert out[0].record["Account_Name"] == {"id": "A1"}


def test_gives_up_after_the_wait_naming_the_missing_material() -> None:
    now = [1000.0]
    resolver = FakeResolver()
    resolver.ids = {("customers", "3001"): "A1", ("materials", "2001"): "P1"}
    logic = AwaitReferences(resolver, 60.0, None, clock=lambda: now[0])  # type: ignore[arg-type]
    logic.on_batch([draft(5)])
    for _ in range(60):
        next_at = logic.notify_at()
        assert next_at is not None and next_at.timestamp() <= 1060.0
        now[0] = next_at.timestamp()
        out, discard = logic.on_notify()
        if discard:
            break
    assert len(out) == 1 and isinstance(out[0], Unresolved)
    message = str(out[0].error())
    assert "1.01.0002" in message and "1.01.0001" not in message and "after 60 s" in message


def test_an_order_that_waited_long_goes_within_two_seconds_of_its_references() -> None:
    now = [1000.0]
    resolver = FakeResolver()
    logic = AwaitReferences(resolver, 300.0, None, clock=lambda: now[0])  # type: ignore[arg-type]
    logic.on_batch([draft(5)])
    while now[0] < 1100.0:  # 100 s of looks that find nothing
        next_at = logic.notify_at()
        assert next_at is not None
        now[0] = next_at.timestamp()
        assert logic.on_notify() == ([], False)
    resolver.ids = {("customers", "3001"): "A1", ("materials", "2001"): "P1", ("materials", "2002"): "P2"}
    arrived = now[0]
    next_at = logic.notify_at()
    assert next_at is not None and next_at.timestamp() - arrived <= 2.0
    now[0] = next_at.timestamp()
    out, discard = logic.on_notify()
    assert discard and len(out) == 1 and isinstance(out[0], SyncCommand)


def test_replayed_versions_do_not_wait() -> None:
    resolver = FakeResolver()
    resolver.done_up_to = 7
    logic = AwaitReferences(resolver, 300.0, None, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert logic.on_batch([draft(6)]) == ([], True)
