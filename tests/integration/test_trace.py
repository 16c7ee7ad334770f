"""``cdchub trace``: a material's journey from the Kingdee database to the CRM, on the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import insert_material, update_material
from tests.integration.harness import IsolatedEnv, wait_for
from tests.integration.huilianyi_harness import huilianyi_poller, start_huilianyi


def cdchub(env: IsolatedEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdchub.cli", *args], cwd=PROJECT_ROOT, text=True,
                          capture_output=True, env={**os.environ, **env.env}, timeout=120)


def test_a_trace_shows_each_captured_version_and_each_write_with_its_latency(env: IsolatedEnv) -> None:
    mid = insert_material(env.kingdee, "1.30.0001", "一次性使用麻醉面罩", "成人 4#")
    bad = insert_material(env.kingdee, "1.30/坏", "麻醉面罩", "儿童")
    env.capture()
    env.flow("materials")
    wait_for(lambda: str(mid) in env.zoho.by_kingdee_id(), 60, "the material in the CRM")
    update_material(env.kingdee, mid, name="一次性使用麻醉面罩（加厚）")
    wait_for(lambda: env.zoho.by_kingdee_id()[str(mid)]["Product_Name"] == "一次性使用麻醉面罩（加厚）", 30, "the edit")
    crm_id = env.zoho.by_kingdee_id()[str(mid)]["id"]

    done = cdchub(env, "trace", "1.30.0001", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    documents = [(d["flow"], d["source_key"], d["target_id"]) for d in found["documents"]]
    assert documents == [("materials", str(mid), crm_id)]
    captured = [h for h in found["hops"] if h["what"].startswith("captured")]
    assert [h["what"] for h in captured] == ["captured (r)", "captured (u)"], "the snapshot, then the edit"
    assert all(h["system"] == "kingdee" and h["detail"]["lsn"] for h in captured)
    writes = [h for h in found["hops"] if h["what"].startswith("materials: synced")]
    assert [h["what"] for h in writes] == ["materials: synced (insert)", "materials: synced (update)"], \
        "every write, not only the latest"
    assert all(h["detail"]["target_id"] == crm_id and h["detail"]["latency_ms"] >= 0 for h in writes)

    by_target = cdchub(env, "trace", crm_id)
    assert by_target.returncode == 0 and "materials" in by_target.stdout and "captured (u)" in by_target.stdout

    failed = cdchub(env, "trace", str(bad))
    assert failed.returncode == 0 and "dead letter (materials)" in failed.stdout and "does not match" in failed.stdout
    assert cdchub(env, "trace", "no-such-thing").returncode == 1


def test_a_trace_follows_an_expense_report_through_kingdee_to_the_crm_with_its_related_documents(
        env: IsolatedEnv) -> None:
    campaign = env.zoho.human_create("Campaigns", {"Campaign_Name": "2026 华东区 麻醉科 学术沙龙"})
    hly = start_huilianyi(env)
    env.start_kingdee_api()
    huilianyi_poller(env)
    env.capture()
    env.flow("expenses_to_kingdee")
    env.flow("campaign_costs")
    code = hly.create(status=1003, campaignId=campaign, title="李娜-学术沙龙场地费",
                      lines=[{"expenseTypeCode": "MEETING", "amount": "1200.00", "comment": "场地费"}])["businessCode"]
    number = wait_for(lambda: hly.journal_no(code), 60, "the Kingdee bill number back in Huilianyi")
    wait_for(lambda: next(r for r in env.zoho.records("Campaigns") if r["id"] == campaign).get("Actual_Cost") == 1200,
             60, "the campaign's cost in the CRM")

    def traced() -> dict[str, Any] | None:
        body: dict[str, Any] = json.loads(cdchub(env, "trace", code, "--json").stdout)
        kinds = {d["kind"] for d in body["related"]}
        return body if {"Kingdee expense bill", "campaign_costs record"} <= kinds else None

    body = wait_for(traced, 60, "the Kingdee bill captured and the cost recorded")
    assert body is not None
    systems = {h["system"] for h in body["hops"]}
    assert {"huilianyi", "kingdee", "zoho"} <= systems, "captured in Huilianyi, saved in Kingdee, cost in the CRM"
    bill = next(d for d in body["related"] if d["kind"] == "Kingdee expense bill")
    assert bill["number"] == number, "the bill as Kingdee numbered it"
    writes = [h["what"] for h in body["hops"] if h["what"].startswith("expenses_to_kingdee: ")]
    assert "expenses_to_kingdee: synced (insert)" in writes, writes
    cost = next(d for d in body["related"] if d["kind"] == "campaign_costs record")
    assert cost["key"] == f"campaign:{campaign}" and cost["detail"]["target_id"] == campaign
    timeline = cdchub(env, "trace", code).stdout
    assert "related:" in timeline and number in timeline and "expenses_to_kingdee" in timeline
