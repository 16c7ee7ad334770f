"""The expense rules (flows/expense_rules.py, flows/mappings/expenses.toml), the Kingdee intent per report version
(flows/expenses_to_kingdee.py) and the poller's pure parts (connectors/huilianyi/source.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.huilianyi.source import OVERLAP_S, PollCursor, to_event, version_of
from core.ledger import Position
from flows.expense_rules import RULES_PATH, UnmappedExpenseType, intent_fingerprint, load_rules
from flows.expenses_to_kingdee import to_command
from flows.kingdee_documents import DocumentEvent

RULES = load_rules(RULES_PATH)


def report(status: int = 1003, reject: int = 1000, campaign: str | None = "4876876000000300001",
           lines: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    forms = [{"fieldCode": "reason", "fieldName": "报销事由", "value": "市场活动支出"}]
    if campaign:
        forms.insert(0, {"fieldCode": "crm_campaign_id", "fieldName": "关联市场活动", "value": campaign})
    return {
        "businessCode": "ER15000042", "title": "张伟-日常费用报销", "status": status, "rejectType": reject,
        "applicantEmployeeId": "E0001", "companyCode": "HQ01", "currencyCode": "CNY",
        "totalAmount": 1300.5, "baseCurrencyAmount": 1300.5,
        "createdDate": "2026-11-29T16:30:00Z", "lastSubmittedDate": "2026-11-29T17:00:00Z",
        "lastModifiedDate": "2026-11-30T01:00:00.250Z", "customFormValueVOList": forms,
        "invoiceVOList": lines if lines is not None else [
            {"expenseTypeCode": "MARKETING", "expenseTypeName": "市场推广费", "amount": 1000.0, "taxRate": 0.06,
             "taxAmount": 56.6, "comment": "展会展位费"},
            {"expenseTypeCode": "ENTERTAINMENT", "expenseTypeName": "业务招待费", "amount": 300.5, "taxRate": 0.0,
             "taxAmount": 0.0, "comment": "客户晚餐"},
        ],
        **extra,
    }


def event(doc: dict[str, Any]) -> DocumentEvent:
    envelope = to_event(doc, 0)
    return DocumentEvent(doc["businessCode"], envelope, Position("huilianyi.expense_reports", 0, 7))


def test_approved_statuses_are_data() -> None:
    assert [s for s in (1001, 1002, 1003, 1004, 1005, 1015) if RULES.approved({"status": s})] == [1003, 1004, 1005]


def test_the_bill_of_an_approved_report() -> None:
    model = RULES.bill_model(report())
    assert model["FBillNo"] == "HLY-ER15000042" and model["FID"] == 0
    assert model["FSourceBillNo"] == "ER15000042" and model["FCausa"] == "张伟-日常费用报销"
    assert model["FProposerID"] == {"FID": 100011} and model["FCurrencyID"] == {"FID": 1}
    assert model["FDate"] == "2026-11-30"  # submitted 17:00 UTC = 01:00 the next day in China
    assert model["FEntity"] == [
        {"FExpID": {"FID": 20006}, "FReqAmount": 1000.0, "FExpAmount": 1000.0, "FTaxRate": 6.0, "FTaxAmount": 56.6,
         "FRemark": "市场推广费 展会展位费", "FOccurDate": "2026-11-30"},
        {"FExpID": {"FID": 20004}, "FReqAmount": 300.5, "FExpAmount": 300.5, "FTaxRate": 0.0, "FTaxAmount": 0.0,
         "FRemark": "业务招待费 客户晚餐", "FOccurDate": "2026-11-30"},
    ]


def test_an_unknown_employee_gets_the_default_proposer() -> None:
    assert RULES.bill_model(report(applicantEmployeeId="E9999"))["FProposerID"] == {"FID": 100001}


def test_an_unmapped_expense_type_is_named_with_its_chinese_name() -> None:
    lines = [{"expenseTypeCode": "TRAINING", "expenseTypeName": "培训费", "amount": 10},
             {"expenseTypeCode": "MEETING", "expenseTypeName": "会议费", "amount": 5}]
    with pytest.raises(UnmappedExpenseType, match=r"TRAINING \(培训费\)") as caught:
        RULES.bill_model(report(lines=lines))
    assert caught.value.code == "EXPENSE_TYPE_UNMAPPED"


def test_the_campaign_and_amount_of_a_report() -> None:
    assert RULES.campaign_of(report()) == "4876876000000300001"
    assert RULES.campaign_of(report(campaign=None)) is None
    assert RULES.amount_of(report()) == Decimal("1300.5")
    assert RULES.amount_of({"totalAmount": 12}) == Decimal(12)


def test_a_rules_file_without_a_section_fails_at_start_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "expenses.toml"
    broken.write_text(RULES_PATH.read_text(encoding="utf-8").replace("[campaign]", "[campaign_x]"), encoding="utf-8")
    with pytest.raises(ValueError, match="campaign"):
        load_rules(broken)


def test_the_intent_ignores_our_journal_number_and_the_modified_time() -> None:
    first = report()
    echo = report(journalNo="HLY-ER15000042", lastModifiedDate="2026-11-30T01:00:05Z")
    assert intent_fingerprint(RULES, first) == intent_fingerprint(RULES, echo)
    rejected = report(status=1001, reject=1003)
    in_approval = report(status=1002, reject=1000)
    assert intent_fingerprint(RULES, rejected) == intent_fingerprint(RULES, in_approval)
    assert intent_fingerprint(RULES, rejected) != intent_fingerprint(RULES, first)
    edited = report(lines=[{"expenseTypeCode": "MEETING", "expenseTypeName": "会议费", "amount": 1}])
    assert intent_fingerprint(RULES, edited) != intent_fingerprint(RULES, first)


def test_every_version_becomes_a_command_keyed_by_business_code() -> None:
    approved = to_command(RULES, event(report()))
    assert approved.key == "ER15000042" and approved.number == "HLY-ER15000042"
    assert approved.record["approved"] and approved.version == version_of(report())
    rejected = to_command(RULES, event(report(status=1001, reject=1002,
                                              lastModifiedDate="2026-11-30T01:10:00Z")))
    assert not rejected.record["approved"] and rejected.record["rejectType"] == 1002
    assert rejected.version > approved.version


def test_the_event_carries_the_whole_report_with_chinese_text_intact() -> None:
    doc = report(journalNo="HLY-ER15000042")
    env = to_event(doc, 123)
    assert json.loads(env["report"]) == doc and "张伟" in env["report"]  # not escaped as \\u5f20
    assert env["business_code"] == "ER15000042" and env["status"] == 1003 and env["reject_type"] == 1000
    assert env["journal_no"] == "HLY-ER15000042" and env["op"] == "u"
    assert env["source"]["version"] == int(datetime(2026, 11, 30, 1, 0, 0, 250000, UTC).timestamp() * 1000)


def test_the_poll_cursor_overlaps_windows_and_forgets_what_is_behind_them() -> None:
    cursor = PollCursor()
    now = 1_800_000_000_000
    assert cursor.window_start(now) < now - 29 * 24 * 3600 * 1000  # the first poll looks back
    cursor.seen = {f"ER1|{now - 1000}": "a", f"ER2|{now - 60_000}": "b"}
    cursor.advance(now)
    assert cursor.window_start(now + 10_000) == now - OVERLAP_S * 1000
    assert list(cursor.seen) == [f"ER1|{now - 1000}"]
    assert PollCursor(json.loads(json.dumps(cursor.to_json()))).to_json() == cursor.to_json()
