"""Campaign approval CRM ⇄ Weaver OA (flows/campaign_approvals.py, flows/approval_status.py) on the real stack: the
ZOHO and Weaver simulators, both pollers and both flows as child processes; approvals happen when the test ticks the
OA's approval driver."""

from __future__ import annotations

import time

from tests.integration.harness import IsolatedEnv, at_least, holds_for, wait_for
from tests.integration.weaver_harness import (
    WeaverSim,
    ledger_actions,
    notes_of,
    record,
    start_weaver,
    wait_status,
    weaver_poller,
)

QUIET_S = 3.0
NAME = "春季新品发布会（华东区）"


def start(env: IsolatedEnv) -> WeaverSim:
    oa = start_weaver(env)
    env.poller('["Campaigns"]')
    weaver_poller(env)
    env.flow("campaign_approvals")
    env.flow("approval_status")
    return oa


#: CRM users: a marketing specialist with an OA account (李娜, 市场部, may start campaign approvals), a sales rep
#: whose department may not, and the simulator's default rep, who has no OA account.
LINA = {"id": "4876876000000099101", "name": "李娜", "email": "lina@cdchub.local"}
SUNLI = {"id": "4876876000000099108", "name": "孙丽", "email": "SunLi@cdchub.local"}


def new_campaign(env: IsolatedEnv, name: str = NAME, budget: int = 50000, owner: dict[str, str] | None = None) -> str:
    return env.zoho.human_create("Campaigns", {
        "Campaign_Name": name, "Type": "Conference", "Budgeted_Cost": budget, "Expected_Revenue": 300000,
        "Start_Date": "2026-12-01", "End_Date": "2026-12-03", "Description": "上海新国际博览中心 E2 馆",
    }, user=owner)


def request_of(env: IsolatedEnv, campaign_id: str, timeout_s: float = 60) -> str:
    campaign = wait_for(lambda: (r := record(env, "Campaigns", campaign_id)).get("Weaver_Request_ID") and r,
                        timeout_s, "the request id on the CRM campaign")
    return str(campaign["Weaver_Request_ID"])


def contents(env: IsolatedEnv, campaign_id: str) -> list[str]:
    return [n["Note_Content"] for n in notes_of(env, campaign_id)]


def test_a_new_campaign_is_approved_in_the_oa_and_the_opinions_reach_the_crm(env: IsolatedEnv) -> None:
    oa = start(env)
    cid = new_campaign(env)
    rid = request_of(env, cid)
    (req,) = oa.requests()
    assert req["requestId"] == rid
    assert req["creatorId"] == "1", "the default rep has no OA account: created as the system user"
    assert {k: req["main"][k] for k in ("hdmc", "crmid", "ysje", "yqsr", "ksrq", "hdlx")} == {
        "hdmc": NAME, "crmid": cid, "ysje": "50000", "yqsr": "300000", "ksrq": "2026-12-01", "hdlx": "Conference"}
    assert req["requestName"].endswith(f"CRM{cid}")
    wait_status(env, "Campaigns", cid, "In Approval")

    oa.script(rid, ["approve:<p>同意，请按计划执行。</p>",
                    '<p>预算合理，<strong>同意</strong> &amp; 按<span style="color:red">计划</span>执行</p>'
                    .join(["approve:", ""])])
    acted_at = time.monotonic()
    assert [a["nodeName"] for a in oa.tick(rounds=5)] == ["部门经理", "市场总监"]
    final = wait_status(env, "Campaigns", cid, "Approved")
    print(f"OA approval → CRM campaign status in {time.monotonic() - acted_at:.2f} s (pollers every 0.3 s)")
    assert final["Approval_Node"] == "归档" and final["Weaver_Request_ID"] == rid
    notes = wait_for(at_least(3, lambda: contents(env, cid)), 30, "a note per step")
    approve1 = next(c for c in notes if "王强" in c)
    assert "批准" in approve1 and "部门经理" in approve1 and "意见：同意，请按计划执行。" in approve1
    approve2 = next(c for c in notes if "陈静" in c)
    assert "意见：预算合理，同意 & 按计划执行" in approve2 and "市场总监" in approve2
    assert not any("<p>" in c or "<span" in c or "&amp;" in c for c in notes), "no HTML in the notes"
    titles = [n["Note_Title"] for n in notes_of(env, cid)]
    assert any(t.startswith("OA审批 批准：部门经理 · 王强") for t in titles)
    holds_for(lambda: len(notes_of(env, cid)) == 3 and len(oa.requests()) == 1, QUIET_S,
              "one note per step, one request")


def test_rejected_then_resubmitted_forwarded_and_approved_and_an_edit_after_approval_starts_nothing(
        env: IsolatedEnv) -> None:
    oa = start(env)
    cid = new_campaign(env, budget=80000, owner=LINA)
    rid = request_of(env, cid)
    assert oa.request(rid)["creatorId"] == "101", "the campaign's owner is the request's creator in the OA"
    oa.script(rid, ["reject:<p>预算超标，请调整后重新提交。</p>"])
    oa.tick()
    wait_status(env, "Campaigns", cid, "Rejected")
    rejected = wait_for(lambda: [c for c in contents(env, cid) if "退回" in c], 30, "the rejection note")
    assert "意见：预算超标，请调整后重新提交。" in rejected[0] and "部门经理" in rejected[0]

    # the sales person lowers the budget and asks for approval again: the same request, submitted again
    # the Weaver poller crashes and comes back: it re-reads from its saved state, nothing is sent twice
    next(c for c in env.children if c.name.startswith("weaver-poller")).kill()
    weaver_poller(env)
    env.zoho.human_edit("Campaigns", cid, {"Budgeted_Cost": 45000, "Approval_Status": "Re-submit"})
    wait_for(lambda: (r := oa.request(rid))["currentNodeType"] == "1" and r["main"]["ysje"] == "45000", 60,
             "the request submitted again with the new budget")
    wait_status(env, "Campaigns", cid, "In Approval")

    oa.script(rid, ["forward:张伟:<p>请张伟阅示预算。</p>", "approve:同意", "approve:<p>同意。</p>"])
    assert [a["action"] for a in oa.tick(rounds=6)] == ["forward", "approve", "approve"]
    wait_status(env, "Campaigns", cid, "Approved")
    notes = wait_for(at_least(6, lambda: contents(env, cid)), 30, "notes of every step")
    forward = next(c for c in notes if "转发" in c)
    assert "转发给：张伟" in forward and "意见：请张伟阅示预算。" in forward
    assert len(oa.requests()) == 1

    env.zoho.human_edit("Campaigns", cid, {"Budgeted_Cost": 90000, "Description": "追加预算"})
    holds_for(lambda: len(oa.requests()) == 1 and len(notes_of(env, cid)) == 6
              and record(env, "Campaigns", cid)["Approval_Status"] == "Approved", QUIET_S,
              "an edit after approval starts no second request")


def test_an_owner_who_may_not_start_the_workflow_leaves_it_to_the_system_user_named_in_the_remark(
        env: IsolatedEnv) -> None:
    oa = start(env)
    cid = new_campaign(env, name="华南区经销商大会", owner=SUNLI)  # 销售部: the campaign workflow refuses her
    rid = request_of(env, cid)
    assert oa.request(rid)["creatorId"] == "1"
    wait_status(env, "Campaigns", cid, "In Approval")
    submitted = wait_for(lambda: [c for c in contents(env, cid) if "提交" in c], 30, "the submission's note")
    assert "CRM负责人：孙丽" in submitted[0], submitted[0]


def test_a_crash_after_the_oa_created_the_request_makes_no_second_request(env: IsolatedEnv) -> None:
    oa = start_weaver(env)
    env.poller('["Campaigns"]')
    # The OA stores the request but holds its answer back; the flow is killed while it waits
    oa.fault(path_regex="doCreateRequest", timeout=True, timeout_s=60, apply=True, count=1)
    flow = env.flow("campaign_approvals")
    cid = new_campaign(env)
    wait_for(lambda: oa.requests(), 60, "the request stored in the OA")
    flow.kill()
    oa.clear_faults()
    env.flow("campaign_approvals")
    rid = request_of(env, cid)
    assert [r["requestId"] for r in oa.requests()] == [rid], "found again by its name, not created twice"
    assert not env.dead_letters("campaign_approvals")
    assert ledger_actions(env, "campaign_approvals", "weaver")[cid] == "found"


def test_the_status_flow_killed_while_writing_a_note_and_a_token_expiry_leave_no_duplicates(
        env: IsolatedEnv) -> None:
    oa = start(env)
    cid = new_campaign(env)
    rid = request_of(env, cid)
    wait_for(at_least(1, lambda: notes_of(env, cid)), 30, "the submit note")
    status_flow = next(c for c in env.children if "approval_status" in c.name)

    # the CRM stores the next note but holds its answer back: the flow is killed in that window
    env.zoho.fault(path_regex=f"Campaigns/{cid}/Notes", method="POST", timeout=True, timeout_s=60, apply=True,
                   count=1)
    oa.script(rid, ["approve:<p>同意。</p>", "approve:<p>同意执行。</p>"])
    oa.tick(request_id=rid)
    wait_for(at_least(2, lambda: notes_of(env, cid)), 30, "the approval note stored in the CRM")
    status_flow.kill()
    env.zoho.clear_faults()
    before_expiry = len(oa.calls("applytoken"))
    assert before_expiry == 1, "the poller and the flows share one OA token"

    assert oa.expire_tokens() >= 1  # the OA token dies: the next process to call applies for a new one
    oa.tick(request_id=rid)
    env.flow("approval_status")
    wait_status(env, "Campaigns", cid, "Approved", 60)
    wait_for(at_least(3, lambda: notes_of(env, cid)), 30, "the last note")
    holds_for(lambda: len(notes_of(env, cid)) == 3, QUIET_S, "no note twice")
    markers = [c.rsplit("[OA ", 1)[1] for c in contents(env, cid)]
    assert len(set(markers)) == 3
    assert "found" in ledger_actions(env, "approval_status", "zoho_note").values(), "the held note found by its marker"
    assert len(oa.calls("applytoken")) == 2, "one new token after the expiry, for every process"
