"""Expense reports, Huilianyi → Kingdee → Huilianyi and → CRM (flows/expenses_to_kingdee.py, flows/campaign_costs.py),
on the real stack: a Huilianyi simulator per test driven through its control API, the poller, a Kingdee WebAPI
simulator writing into the test's Kingdee database, and the CRM simulator."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from flows.expense_rules import RULES_PATH
from infra.simulators.kingdee.erp import set_document_status
from tests.integration.harness import IsolatedEnv, KingdeeSim, holds_for, wait_for
from tests.integration.huilianyi_harness import HuilianyiSim, huilianyi_poller, start_huilianyi

QUIET_S = 3.0
FLOWS = ("expenses_to_kingdee", "campaign_costs")


def kingdee_bills(env: IsolatedEnv) -> dict[str, dict[str, Any]]:
    """费用报销单 in the Kingdee database by the number cdchub asks for, ``HLY-<business code>`` (it finds them by
    their 来源单号; Kingdee's coding rule numbers them): number, status, purpose, source, lines."""
    with env.kingdee.connect() as conn:
        heads = conn.execute(text(
            'SELECT "FID", "FBILLNO", "FDOCUMENTSTATUS", "FCAUSA", "FSOURCEBILLNO", "FPROPOSERID", "FREQAMOUNTSUM" '
            'FROM "T_ER_EXPREIMBURSE"')).all()
        lines = conn.execute(text(
            'SELECT "FID", "FEXPID", "FREQAMOUNT", "FREMARK" FROM "T_ER_EXPREIMBURSEENTRY" '
            'ORDER BY "FID", "FSEQ"')).all()
    return {
        f"HLY-{h.FSOURCEBILLNO.strip()}": {
            "fid": str(h.FID), "number": h.FBILLNO.strip(), "status": h.FDOCUMENTSTATUS, "causa": h.FCAUSA,
            "source": h.FSOURCEBILLNO, "proposer": h.FPROPOSERID, "total": Decimal(h.FREQAMOUNTSUM).normalize(),
            "lines": [(r.FEXPID, Decimal(r.FREQAMOUNT).normalize(), r.FREMARK) for r in lines if r.FID == h.FID],
        }
        for h in heads
    }


def number_of(env: IsolatedEnv, key: str) -> str | None:
    """The Kingdee number of the bill of ``HLY-<business code>`` (what Huilianyi must get as journal number)."""
    bill = kingdee_bills(env).get(key)
    return bill["number"] if bill else None


def journal_is_bill(env: IsolatedEnv, hly: HuilianyiSim, code: str) -> bool:
    """Huilianyi shows the Kingdee number of the report's bill as its journal number."""
    number = number_of(env, f"HLY-{code}")
    return number is not None and hly.journal_no(code) == number


def bills_once(env: IsolatedEnv, numbers: set[str] | None = None,
               count: int | None = None) -> dict[str, dict[str, Any]] | None:
    """A ``wait_for`` condition: the bills once they include ``numbers`` / number ``count``."""
    bills = kingdee_bills(env)
    if numbers is not None and not numbers <= set(bills):
        return None
    return bills if count is None or len(bills) == count else None


def actual_cost(env: IsolatedEnv, campaign_id: str) -> Decimal | None:
    record = next(r for r in env.zoho.records("Campaigns") if r["id"] == campaign_id)
    value = record.get("Actual_Cost")
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def campaign_writes(env: IsolatedEnv) -> int:
    return sum(1 for r in env.zoho.requests() if r["method"] == "PUT" and "/Campaigns" in r["path"])


def start(env: IsolatedEnv) -> tuple[HuilianyiSim, KingdeeSim]:
    hly = start_huilianyi(env)
    kingdee = env.start_kingdee_api()
    huilianyi_poller(env)
    for name in FLOWS:
        env.flow(name)
    return hly, kingdee


def line(code: str, amount: str, comment: str | None = None) -> dict[str, Any]:
    return {"expenseTypeCode": code, "amount": amount, **({"comment": comment} if comment else {})}


def test_an_approved_report_becomes_a_kingdee_bill_its_number_goes_back_and_the_campaign_cost_follows(
    env: IsolatedEnv,
) -> None:
    campaign = env.zoho.human_create("Campaigns", {"Campaign_Name": "2026 中华医学会麻醉学年会 · 南京展台",
                                                   "Budgeted_Cost": 50000})
    hly, kingdee = start(env)
    r1 = hly.create(status=1003, campaignId=campaign, employeeId="E0001", title="张伟-麻醉学年会展台及会议费报销",
                    lines=[line("MARKETING", "12000.00", "展会展位费（南京国际博览中心）"),
                           line("MEETING", "3500.50", "客户研讨会茶歇")])["businessCode"]
    r2 = hly.create(status=1003, campaignId=campaign, lines=[line("ENTERTAINMENT", "800.00")])["businessCode"]
    r3 = hly.create(status=1002, campaignId=campaign, lines=[line("MEETING", "999.00")])["businessCode"]
    b1, b2, b3 = (f"HLY-{c}" for c in (r1, r2, r3))

    bills = wait_for(lambda: bills_once(env, {b1, b2}), 60, "two bills in Kingdee")
    assert bills is not None
    assert b3 not in bills, "a report in approval has no bill"
    bill = bills[b1]
    assert bill["status"] == "A" and bill["source"] == r1 and bill["proposer"] == 100011
    assert bill["causa"] == "张伟-麻醉学年会展台及会议费报销", "Chinese text intact"
    assert bill["lines"] == [(20006, Decimal("12000"), "市场推广费 展会展位费（南京国际博览中心）"),
                             (20005, Decimal("3500.5"), "会议费 客户研讨会茶歇")]
    assert bill["total"] == Decimal("15500.5")
    wait_for(lambda: journal_is_bill(env, hly, r1) and journal_is_bill(env, hly, r2), 30,
             "bill numbers back in Huilianyi")
    wait_for(lambda: actual_cost(env, campaign) == Decimal("16300.50"), 30, "the campaign's actual cost")

    # the bearer token expires and Kingdee loses the session in the middle: both are renewed and the flow carries on
    tokens = len(hly.requests("/oauth/token"))
    logins = kingdee.calls("AuthService.LoginBySign")
    assert hly.expire_tokens() >= 1
    kingdee.http.post("/__sim/expire-sessions").raise_for_status()
    hly.advance(r3, to=1003)
    wait_for(lambda: journal_is_bill(env, hly, r3), 60, "the third bill after token expiry")
    wait_for(lambda: actual_cost(env, campaign) == Decimal("17299.50"), 30, "cost with the third report")
    assert len(hly.requests("/oauth/token")) > tokens, "a new token was fetched"
    assert kingdee.calls("AuthService.LoginBySign") > logins, "a new Kingdee session was opened"

    # finance rejects the second report: its bill goes, its amount leaves the campaign's cost
    hly.advance(r2, reject="finance")
    wait_for(lambda: b2 not in kingdee_bills(env), 60, "the rejected report's bill deleted")
    wait_for(lambda: actual_cost(env, campaign) == Decimal("16499.50"), 30, "cost without the rejected report")
    saves = kingdee.calls("DynamicFormService.Save")
    writes = campaign_writes(env)
    holds_for(lambda: set(kingdee_bills(env)) == {b1, b3} and kingdee.calls("DynamicFormService.Save") == saves
              and campaign_writes(env) == writes, QUIET_S, "no echo of our own write-backs")
    assert [hly.journal_writes(c) for c in (r1, r2, r3)] == [1, 1, 1]
    assert not env.dead_letters("expenses_to_kingdee") and not env.dead_letters("campaign_costs")

    # replaying both flows from the start of the topic writes nothing anywhere
    for child in [c for c in env.children if c.argv[0] == "flow"]:
        child.stop()
    shutil.rmtree(env.settings.state_dir / "recovery")
    calls = kingdee.calls("DynamicFormService.")
    replayed = [env.flow(name) for name in FLOWS]
    holds_for(lambda: all(c.alive() for c in replayed) and kingdee.calls("DynamicFormService.") == calls
              and campaign_writes(env) == writes, QUIET_S + 4, "no writes while the topic is replayed")
    assert [hly.journal_writes(c) for c in (r1, r2, r3)] == [1, 1, 1]
    # the replayed flows are live: the next approval makes exactly one bill and one cost write
    r4 = hly.create(status=1003, campaignId=campaign, lines=[line("MARKETING", "500.50")])["businessCode"]
    wait_for(lambda: actual_cost(env, campaign) == Decimal("17000.00") and journal_is_bill(env, hly, r4), 60,
             "the next report after the replay")
    assert kingdee.calls("DynamicFormService.Save") == saves + 1 and campaign_writes(env) == writes + 1


def test_an_unmapped_expense_type_and_a_missing_campaign_are_dead_lettered_while_other_reports_flow(
    env: IsolatedEnv, tmp_path: Path,
) -> None:
    rules = tmp_path / "expenses.toml"  # this company has not mapped office supplies yet
    office = '[expense_items.OFFICE]\nid = 20007\nnumber = "FYXM07"\nname = "办公费"\n'
    assert office in RULES_PATH.read_text(encoding="utf-8")
    rules.write_text(RULES_PATH.read_text(encoding="utf-8").replace(office, ""), encoding="utf-8")
    env.env["CDCHUB_FLOWS__EXPENSES_MAPPING"] = str(rules)
    campaign = env.zoho.human_create("Campaigns", {"Campaign_Name": "华南区 呼吸产品 巡回推广会"})
    hly, _ = start(env)
    bad = hly.create(status=1003, lines=[line("OFFICE", "120.00", "打印耗材"), line("MEETING", "300.00")])
    lost = hly.create(status=1003, campaignId="4876876000009999999", lines=[line("MARKETING", "3000.00")])
    ok = hly.create(status=1003, campaignId=campaign, lines=[line("MEETING", "2000.00")])

    letters = wait_for(lambda: env.dead_letters("expenses_to_kingdee"), 60, "the unmapped type dead-lettered")
    assert "OFFICE (办公费)" in letters[0]["error"] and letters[0]["source"]["key"] == bad["businessCode"]
    missing = wait_for(lambda: env.dead_letters("campaign_costs"), 60, "the missing campaign dead-lettered")
    assert "4876876000009999999" in missing[0]["error"]
    wait_for(lambda: actual_cost(env, campaign) == Decimal("2000.00"), 60, "the linked campaign's cost")
    bills = wait_for(lambda: bills_once(env, count=2), 60, "the two mapped bills")
    assert bills is not None
    assert set(bills) == {f"HLY-{lost['businessCode']}", f"HLY-{ok['businessCode']}"}
    assert hly.journal_no(bad["businessCode"]) is None

    # finance audited the bill in Kingdee, then the report is rejected in Huilianyi: the bill stays, finance is told
    held = f"HLY-{ok['businessCode']}"
    wait_for(lambda: journal_is_bill(env, hly, ok["businessCode"]), 30, "the bill number written back")
    set_document_status(env.kingdee, "T_ER_EXPREIMBURSE", bills[held]["fid"], "C")
    hly.advance(ok["businessCode"], reject="finance")
    locked = wait_for(lambda: [d for d in env.dead_letters("expenses_to_kingdee") if d["source"]["key"]
                               == ok["businessCode"]], 60, "the locked bill reported")
    assert bills[held]["number"] in locked[0]["error"] and "status C" in locked[0]["error"]
    assert held in kingdee_bills(env), "an audited bill is never deleted by the flow"
    wait_for(lambda: actual_cost(env, campaign) == Decimal("0.00"), 30, "the rejected report's cost taken back")
    assert len(env.dead_letters("expenses_to_kingdee")) == 2 and len(env.dead_letters("campaign_costs")) == 1


def test_crashes_in_the_middle_of_both_flows_leave_one_bill_per_report_and_the_right_cost(env: IsolatedEnv) -> None:
    campaign = env.zoho.human_create("Campaigns", {"Campaign_Name": "2026 春季 麻醉耗材 学术推广"})
    hly, kingdee = start(env)
    flows = {c.argv[1]: c for c in env.children if c.argv[0] == "flow"}
    # Kingdee applies the first save but holds its answer; the flow is killed while it waits
    kingdee.http.post("/__sim/faults", json={"path_regex": ".*DynamicFormService\\.Save.*", "timeout": True,
                                             "timeout_s": 60, "apply": True, "count": 1}).raise_for_status()
    first = hly.create(status=1003, campaignId=campaign, lines=[line("MARKETING", "1000.00")])["businessCode"]
    wait_for(lambda: f"HLY-{first}" in kingdee_bills(env), 60, "the first bill saved")
    flows["expenses_to_kingdee"].kill()
    kingdee.http.delete("/__sim/faults").raise_for_status()
    # after the restart, the journal-number write is held in turn: killed between the bill and the write-back
    hly.fault(path_regex=".*update/journalNo.*", timeout=True, timeout_s=60, apply=False, count=1)
    restarted = env.flow("expenses_to_kingdee")
    wait_for(lambda: hly.requests("update/journalNo"), 60, "the write-back under way")
    restarted.kill()
    hly.clear_faults()
    env.flow("expenses_to_kingdee")
    wait_for(lambda: journal_is_bill(env, hly, first), 60, "the bill number written back after two crashes")
    assert list(kingdee_bills(env)) == [f"HLY-{first}"] and hly.journal_writes(first) == 1

    # the cost flow is killed while a stream of reports is approved and rejected
    codes = [hly.create(status=1003, campaignId=campaign, lines=[line("MEETING", f"{100 + n}.00")])["businessCode"]
             for n in range(8)]
    wait_for(lambda: (actual_cost(env, campaign) or 0) > Decimal("1000"), 60, "some of the stream counted")
    flows["campaign_costs"].kill()
    poller = next(c for c in env.children if c.argv[0] == "poll-huilianyi")
    poller.kill()  # the poller too: it re-reads its window after the restart
    for code in codes[:3]:
        hly.advance(code, reject="finance")
    huilianyi_poller(env)
    env.flow("campaign_costs")
    expected = Decimal("1000.00") + sum(Decimal(100 + n) for n in range(3, 8))
    wait_for(lambda: actual_cost(env, campaign) == expected, 60, "the cost after the crash")
    bills = wait_for(lambda: bills_once(env, count=6), 60, "one bill per approved report")
    assert bills is not None
    assert set(bills) == {f"HLY-{c}" for c in [first, *codes[3:]]}
    assert not env.dead_letters("expenses_to_kingdee") and not env.dead_letters("campaign_costs")
