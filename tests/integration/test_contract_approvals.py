"""Contract approval Weaver OA → CRM (flows/approval_status.py) on the real stack: contract workflows started in the
OA by a sales person name a CRM deal; status, opinions and attachments reach the deal, each once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.zoho.client import ZohoClient
from tests.integration.harness import IsolatedEnv, at_least, holds_for, wait_for
from tests.integration.weaver_harness import (
    WeaverSim,
    crm_client,
    forget_ledger,
    ledger_actions,
    notes_of,
    oa_client,
    peak_rss_kb,
    record,
    start_weaver,
    wait_status,
    weaver_poller,
)

QUIET_S = 3.0
SALES_REP = 108  # 孙丽, 销售部: contracts are started in the OA by sales people
APPROVE_ALL = ["approve:<p>条款已审阅，<b>无异议</b>。</p>", "approve:<p>付款条件可以接受。</p>", "approve:同意签署"]


def new_deal(env: IsolatedEnv, name: str = "上海启明 ICU 呼吸机项目") -> str:
    return env.zoho.human_create("Deals", {"Deal_Name": name, "Stage": "Negotiation/Review", "Amount": 128000})


@pytest.fixture()
def crm(env: IsolatedEnv) -> Iterator[ZohoClient]:
    """One CRM client per test (a refresh token may mint only 10 access tokens per 10 minutes)."""
    client = crm_client(env)
    yield client
    client.close()


def attachments(crm: ZohoClient, deal_id: str) -> list[dict[str, Any]]:
    return crm.attachments("Deals", deal_id)


def start(env: IsolatedEnv) -> WeaverSim:
    oa = start_weaver(env)
    weaver_poller(env)
    env.flow("approval_status")
    return oa


def test_an_approved_contract_reaches_the_deal_with_each_attachment_once_also_after_a_replay(
        env: IsolatedEnv, crm: ZohoClient) -> None:
    oa = start(env)
    deal = new_deal(env)
    created = oa.contract(deal, steps=APPROVE_ALL)
    rid = str(created["requestId"])
    resources = {(r["name"], int(r["filesize"])) for r in created["attachments"]}
    wait_status(env, "Deals", deal, "In Approval", 60)
    files = wait_for(at_least(2, lambda: attachments(crm, deal)), 30, "the contract's attachments on the deal")
    assert {(a["File_Name"], int(a["Size"])) for a in files} == resources
    assert any(name.startswith("合同正文_HT-") for name, _ in resources)

    assert [a["nodeName"] for a in oa.tick(rounds=5)] == ["法务", "财务", "总经理"]
    final = wait_status(env, "Deals", deal, "Approved")
    assert final["Weaver_Request_ID"] == rid and final["Approval_Node"] == "归档"
    notes = wait_for(at_least(4, lambda: notes_of(env, deal)), 30, "a note per step")
    legal = next(n["Note_Content"] for n in notes if "法务" in n["Note_Title"])
    assert "刘洋" in legal and "意见：条款已审阅，无异议。" in legal
    holds_for(lambda: len(attachments(crm, deal)) == 2 and len(notes_of(env, deal)) == 4, QUIET_S,
              "each attachment and note once")

    # replay weaver.requests from the first offset, recovery state gone and even the ledger forgotten: every note
    # and attachment is found on the deal (by its marker, by name and size), none is added
    flow = next(c for c in env.children if "approval_status" in c.name)
    flow.stop()
    shutil.rmtree(env.settings.state_dir / "recovery" / "approval_status")
    assert forget_ledger(env, "approval_status") >= 7
    env.flow("approval_status")
    other = new_deal(env, "北京协和 麻醉机项目")
    oa.contract(other)
    wait_status(env, "Deals", other, "In Approval", 60)  # the replaying flow has read past the first request
    wait_for(lambda: len(ledger_actions(env, "approval_status", "zoho_attachment")) == 4, 30, "the replay")
    assert list(ledger_actions(env, "approval_status", "zoho_note").values()).count("found") == 4
    assert set(ledger_actions(env, "approval_status", "zoho_attachment").values()) == {"found", "insert"}
    holds_for(lambda: len(attachments(crm, deal)) == 2 and len(notes_of(env, deal)) == 4, QUIET_S,
              "no second attachment or note after the replay")
    assert record(env, "Deals", deal)["Approval_Status"] == "Approved"


def test_a_crash_during_an_upload_copies_each_attachment_once_and_large_files_are_streamed(
        env: IsolatedEnv, crm: ZohoClient) -> None:
    oa = start(env)
    flow = next(c for c in env.children if "approval_status" in c.name)
    warm_up = new_deal(env, "预热项目")
    oa.contract(warm_up)  # a first contract (small files): the flow's memory before the large one
    wait_for(at_least(2, lambda: attachments(crm, warm_up)), 60, "the first contract's attachments")
    deal = new_deal(env)
    # a sales person attaches a 16 MB scan to a contract started in the OA
    big = env.tmp / "合同扫描件（全本）.pdf"
    with big.open("wb") as handle:
        for _ in range(16):
            handle.write(os.urandom(1024 * 1024))
    rep = oa_client(env, oa, SALES_REP)
    fileid = rep.upload(big)
    # the CRM stores the first upload but holds its answer back: the flow is killed in that window
    env.zoho.fault(path_regex=f"Deals/{deal}/Attachments", method="POST", timeout=True, timeout_s=60, apply=True,
                   count=1)
    rss_before = peak_rss_kb(flow)
    rid = str(rep.create_request(102, {"htbh": "HT-20261130-0099", "htmc": "启明 ICU 呼吸机采购合同",
                                       "crmdealid": deal, "htje": "2560000", "htfj": str(fileid)},
                                 request_name="合同审批-启明 ICU 呼吸机采购合同", remark="请审批", user_id=SALES_REP))
    rep.close()
    stored = wait_for(at_least(1, lambda: attachments(crm, deal)), 60, "the upload stored in the CRM")
    rss_peak = peak_rss_kb(flow)
    flow.kill()
    env.zoho.clear_faults()
    assert [(a["File_Name"], int(a["Size"])) for a in stored] == [(big.name, 16 * 1024 * 1024)]
    growth_mb = (rss_peak - rss_before) / 1024
    print(f"approval_status peak RSS {rss_before / 1024:.0f} MB → {rss_peak / 1024:.0f} MB "
          f"while copying a 16 MB attachment (+{growth_mb:.1f} MB)")
    assert growth_mb < 12, "the file was held in memory, not streamed"

    env.flow("approval_status")
    oa.script(rid, ["approve", "approve", "approve"])
    oa.tick(rounds=5)
    wait_status(env, "Deals", deal, "Approved", 60)
    holds_for(lambda: len(attachments(crm, deal)) == 1, QUIET_S, "the attachment once")
    assert ledger_actions(env, "approval_status", "zoho_attachment")[f"{rid}/file/{fileid}"] == "found"


def test_unknown_workflows_and_missing_deals_are_dead_lettered_while_other_requests_flow(
        env: IsolatedEnv, crm: ZohoClient) -> None:
    oa = start(env)
    rep = oa_client(env, oa, SALES_REP)
    seal = rep.create_request(103, {"sy": "投标文件盖章", "yzlx": "合同章"}, user_id=SALES_REP)  # not mapped
    rep.close()
    ghost = "4876876000009999999"
    lost = str(oa.contract(ghost)["requestId"])  # names a deal the CRM does not have
    deal = new_deal(env)
    good = str(oa.contract(deal, steps=APPROVE_ALL)["requestId"])
    oa.tick(rounds=5)

    wait_status(env, "Deals", deal, "Approved", 60)
    wait_for(at_least(2, lambda: attachments(crm, deal)), 30, "the good contract's attachments")
    letters = wait_for(at_least(2, lambda: env.dead_letters("approval_status")), 30, "two kinds of dead letter")
    by_key = {letter["source"]["key"]: letter for letter in letters}
    assert by_key[str(seal)]["error_class"] == "UnknownWorkflow"
    assert "unknown workflow 103 (用印申请)" in by_key[str(seal)]["error"]
    assert by_key[lost]["error_class"] == "RecordMissing"
    assert f"CRM Deals record {ghost} not found" in by_key[lost]["error"] and lost in by_key[lost]["error"]
    assert good not in by_key
