"""The two-way guard's look at the target: a person's later change holds back only the shared fields that person
changed — found where the target shows another value than the one both sides last had."""

from __future__ import annotations

from pathlib import Path

from connectors.common.sync import SyncCommand
from connectors.common.two_way import HumanChange, TwoWayGuard
from core.field_clock import FieldClock
from core.ledger import Position, open_engine

ENTITY = "materials:100548"
SYNCED_AT = 1_796_615_294_965
KINGDEE_EDIT_AT = SYNCED_AT + 60_000
REP_EDIT_AT = KINGDEE_EDIT_AT + 30_000  # a sales rep saves the CRM product after the Kingdee edit


def kingdee_edit() -> SyncCommand:
    record = {"Kingdee_ID": "100548", "Product_Name": "混沌物料 第693版", "Specification": "规格 0"}
    return SyncCommand(flow="materials", key="100548", number="7.00.0241", version=2, record=record,
                       fingerprint="f", captured_at_ms=KINGDEE_EDIT_AT, position=Position(), entity=ENTITY,
                       source_time_ms=KINGDEE_EDIT_AT)


def guard(tmp_path: Path) -> TwoWayGuard:
    clock = FieldClock(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    clock.record(ENTITY, "kingdee", SYNCED_AT, {"Product_Name": "混沌物料 241", "Specification": "规格 3"})
    return TwoWayGuard(clock, "kingdee", frozenset({"Product_Name", "Specification"}), "Kingdee_ID")


def plan(tmp_path: Path, crm_shows: dict[str, str] | None) -> tuple[dict, dict]:
    [planned] = guard(tmp_path).plan([kingdee_edit()], peek=lambda _: HumanChange(REP_EDIT_AT, crm_shows),
                                     exists=lambda _: True)
    return planned.write, planned.dropped


def test_a_later_edit_of_another_field_does_not_hold_back_the_shared_fields(tmp_path: Path) -> None:
    # the rep wrote only a description: name and specification still show what both sides last had
    write, dropped = plan(tmp_path, {"Product_Name": "混沌物料 241", "Specification": "规格 3", "Description": "说明"})
    assert write == {"Product_Name": "混沌物料 第693版", "Specification": "规格 0"} and not dropped


def test_a_later_edit_of_a_shared_field_holds_back_that_field_only(tmp_path: Path) -> None:
    write, dropped = plan(tmp_path, {"Product_Name": "混沌物料 241", "Specification": "销售改 749"})
    assert write == {"Product_Name": "混沌物料 第693版"}
    assert dropped == {"Specification": "changed later in the target"}


def test_a_target_that_cannot_show_its_values_holds_back_every_shared_field(tmp_path: Path) -> None:
    write, dropped = plan(tmp_path, None)
    assert write == {} and set(dropped) == {"Product_Name", "Specification"}
