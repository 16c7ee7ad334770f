"""The Huilianyi simulator's expense report state machine: moves, rejections, journal numbers, driver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.huilianyi.driver import DriverError, DriverSettings, ReportDriver
from infra.simulators.huilianyi.errors import HuilianyiApiError
from infra.simulators.huilianyi.generator import ReportFactory, ReportSpec
from infra.simulators.huilianyi.reports import ReportStore
from infra.simulators.huilianyi.statuses import (
    RejectType,
    ReportType,
    Status,
    WrongStatus,
    path_to,
    transition,
)
from infra.simulators.huilianyi.workflow import ReportWorkflow

CAMPAIGNS = ("C-1", "C-2")


@pytest.fixture
def driver() -> Iterator[ReportDriver]:
    db = SqliteDb(None)
    store = ReportStore(db)
    yield ReportDriver(
        store,
        ReportWorkflow(store),
        ReportFactory("HQ01", "company-oid"),
        DriverSettings(campaign_ids=CAMPAIGNS, campaign_share=0.5),
        seed=7,
    )
    db.close()


def test_the_table_moves_forward_and_rejections_go_back_to_editing() -> None:
    assert path_to(1001, Status.PAID) == ["submit", "approval_pass", "audit_pass", "pay"]
    assert path_to(1003, Status.APPROVED) == []
    assert transition("approval_reject", 1002).target == Status.EDITING
    assert transition("approval_reject", 1002).reject_type == RejectType.APPROVAL
    assert transition("audit_reject", 1003).reject_type == RejectType.FINANCE
    with pytest.raises(WrongStatus):
        transition("audit_pass", 1002)
    with pytest.raises(ValueError):
        path_to(1004, Status.IN_APPROVAL)


def test_a_report_walks_the_whole_way_and_each_move_bumps_last_modified(driver: ReportDriver) -> None:
    doc = driver.create(ReportSpec(), at_ms=1_000)
    code = doc["businessCode"]
    wf = driver.workflow

    submitted = wf.move(code, "submit", at_ms=2_000)
    assert (submitted["status"], submitted["lastSubmittedDate"], submitted["lastModifiedDate"]) == (
        1002,
        2_000,
        2_000,
    )
    assert wf.move(code, "approval_pass", at_ms=3_000)["lastModifiedDate"] == 3_000
    assert wf.move(code, "audit_pass", at_ms=4_000)["status"] == 1004
    paid = wf.move(code, "pay", at_ms=5_000)
    assert (paid["status"], paid["rejectType"], paid["lastSubmittedDate"]) == (1005, 1000, 2_000)
    assert [e["action"] for e in driver.store.history(code)] == [
        "create", "submit", "approval_pass", "audit_pass", "pay"
    ]  # fmt: skip


@pytest.mark.parametrize(("reject", "reject_type"), [("approval", 1002), ("finance", 1003)])
def test_rejections_return_to_1001_with_reject_type_until_resubmitted(
    driver: ReportDriver, reject: str, reject_type: int
) -> None:
    code = driver.create(ReportSpec())["businessCode"]

    rejected, moves = driver.advance(code, reject=reject, text="请补充发票")

    assert (rejected["status"], rejected["rejectType"]) == (1001, reject_type)
    assert moves[-1] == {"approval": "approval_reject", "finance": "audit_reject"}[reject]
    assert driver.store.history(code)[-1]["text"] == "请补充发票"
    again = driver.workflow.move(code, "submit")
    assert (again["status"], again["rejectType"]) == (1002, 1000)


def test_wrong_moves_and_unknown_codes_are_api_errors(driver: ReportDriver) -> None:
    code = driver.create(ReportSpec())["businessCode"]
    with pytest.raises(HuilianyiApiError) as wrong:
        driver.workflow.move(code, "audit_pass")
    assert (wrong.value.status, wrong.value.code) == (400, "EXPENSE_REPORT_STATUS_ERROR")
    with pytest.raises(HuilianyiApiError) as unknown:
        driver.workflow.move("ER404", "audit_pass")
    assert (unknown.value.status, unknown.value.code) == (404, "EXPENSE_REPORT_NOT_FOUND")
    assert driver.workflow.load(code)["status"] == 1001  # nothing changed


def test_journal_number_is_idempotent_and_needs_an_approved_report(driver: ReportDriver) -> None:
    code = driver.create(ReportSpec())["businessCode"]
    with pytest.raises(HuilianyiApiError):
        driver.workflow.write_journal_no(code, "J-1")
    driver.advance(code, to=1004, at_ms=10_000)

    doc, changed = driver.workflow.write_journal_no(code, "J-1", company_code="HQ01", at_ms=20_000)
    assert changed and doc["journalNo"] == "J-1" and doc["lastModifiedDate"] == 20_000
    doc, changed = driver.workflow.write_journal_no(code, "J-1", at_ms=30_000)
    assert not changed and doc["lastModifiedDate"] == 20_000
    doc, changed = driver.workflow.write_journal_no(code, "J-2", at_ms=40_000)
    assert changed and doc["journalNo"] == "J-2"
    with pytest.raises(HuilianyiApiError) as mismatch:
        driver.workflow.write_journal_no(code, "J-3", company_code="OTHER")
    assert mismatch.value.code == "COMPANY_CODE_MISMATCH"


def test_advance_refuses_to_go_back_or_mix_targets(driver: ReportDriver) -> None:
    code = driver.create(ReportSpec())["businessCode"]
    driver.advance(code, to=1003)
    with pytest.raises(DriverError):
        driver.advance(code, to=1002)
    with pytest.raises(DriverError):
        driver.advance(code, reject="approval")  # already past approval
    with pytest.raises(DriverError):
        driver.advance(code, to=1004, reject="finance")


def test_a_seeded_tick_is_reproducible_and_moves_along_the_table(driver: ReportDriver) -> None:
    first = driver.tick(seed=1, create=5)
    assert len(first["created"]) == 5 and first["moved"] == []  # new reports wait for the next round
    driver.settings.odds = {"submit": 1.0, "approval_pass": 0.5, "approval_reject": 0.5}

    second = driver.tick(seed=2, create=0)

    assert {m["action"] for m in second["moved"]} == {"submit"}
    third = driver.tick(seed=3, create=0)
    assert {m["action"] for m in third["moved"]} <= {"approval_pass", "approval_reject"}
    assert len(third["moved"]) == 5
    for move in third["moved"]:
        doc = driver.store.get(move["businessCode"]) or {}
        expected = (1003, 1000) if move["action"] == "approval_pass" else (1001, 1002)
        assert (doc["status"], doc["rejectType"]) == expected


def test_generated_reports_look_like_the_business(driver: ReportDriver) -> None:
    travel = driver.create(ReportSpec(type=ReportType.TRAVEL))
    linked = driver.create(ReportSpec(campaign_id="C-9"))
    forms = {f["fieldCode"]: f["value"] for f in linked["customFormValueVOList"]}
    assert forms["crm_campaign_id"] == "C-9"
    assert all(line["expenseTypeName"] in {"市场推广费", "会议费", "业务招待费"} for line in linked["invoiceVOList"])
    assert {f["fieldCode"] for f in travel["customFormValueVOList"]} == {"travel_destination", "reason"}
    assert {line["expenseTypeName"] for line in travel["invoiceVOList"]} >= {"差旅费-交通", "差旅费-住宿"}
    assert travel["applicantName"] and travel["departmentName"] and travel["type"] == 1002
    assert travel["status"] == 1001 and travel["rejectType"] == 1000
