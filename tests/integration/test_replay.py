"""Replay and reconciliation on the real stack: seeded drift in the CRM is reported exactly by a dry run, fixed by a
real replay (only what differs is written), and a second dry run finds nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import bulk_insert_materials, insert_material
from tests.integration.harness import IsolatedEnv, wait_for


def cdchub(env: IsolatedEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdchub.cli", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=240, env={**os.environ, "PYTHONUNBUFFERED": "1", **env.env})


def crm_writes(env: IsolatedEnv) -> int:
    return sum(1 for r in env.zoho.requests() if r["method"] in ("POST", "PUT", "DELETE") and "/crm/" in r["path"])


def drift_by_key(out: str) -> dict[str, dict[str, Any]]:
    return {d["key"]: d for d in json.loads(out)["drift"]}


def test_a_dry_run_reports_exactly_the_seeded_drift_and_a_replay_fixes_only_that(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.31.0001", "一次性使用喉罩", "成人 4#")
    b = insert_material(env.kingdee, "1.31.0002", "麻醉面罩", "成人 5#")
    c = insert_material(env.kingdee, "1.31.0003", "气管插管", "ID 7.0")
    env.capture()
    flow = env.flow("materials")
    products = wait_for(lambda: p if {str(a), str(b), str(c)} <= set(p := env.zoho.by_kingdee_id()) else None, 90,
                        "the three materials in the CRM")
    flow.stop()  # the live flow would not touch these records anyway: nothing changes in Kingdee meanwhile

    # Drift made by hand in the CRM: two Kingdee-owned fields of a, c deleted, a record Kingdee never had.
    env.zoho.human_edit("Products", products[str(a)]["id"], {"Kingdee_Number": "手工改过", "Product_Active": False})
    env.zoho.human_delete("Products", products[str(c)]["id"])
    env.zoho.human_create("Products", {"Product_Name": "CRM 手建产品", "Kingdee_ID": "999999"})
    b_before = env.zoho.by_kingdee_id()[str(b)]

    reconciled = cdchub(env, "reconcile", "materials", "--json")
    assert reconciled.returncode == 1, reconciled.stderr[-2000:]
    body = json.loads(reconciled.stdout)
    assert body["counts"] == [{"system": "zoho", "module": "Products", "key_field": "Kingdee_ID", "source": 3,
                               "target": 3, "orphans": ["999999"]}]
    assert set(drift_by_key(reconciled.stdout)) == {str(a), str(c)}

    writes = crm_writes(env)
    dry = cdchub(env, "replay", "materials", "--from", "beginning", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "events" in dry.stderr, "a progress line with the position"
    drift = drift_by_key(dry.stdout)
    assert set(drift) == {str(a), str(c)}, "exactly the seeded drift, nothing for b"
    assert drift[str(a)]["action"] == "update" and drift[str(a)]["fields"] == {
        "Kingdee_Number": {"target": "手工改过", "replay": "1.31.0001"},
        "Product_Active": {"target": False, "replay": True}}
    assert drift[str(c)]["action"] == "create" and drift[str(c)]["target_id"] is None
    assert json.loads(dry.stdout)["same"] == 1
    assert crm_writes(env) == writes, "a dry run writes nothing"

    fixed = cdchub(env, "replay", "materials", "--from", "beginning")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    now = env.zoho.by_kingdee_id()
    assert now[str(a)]["Kingdee_Number"] == "1.31.0001" and now[str(a)]["Product_Active"] is True
    assert now[str(c)]["Product_Name"] == "气管插管" and now[str(c)]["id"] != products[str(c)]["id"]
    assert now[str(b)]["Modified_Time"] == b_before["Modified_Time"], "b is not written"
    upserts = [r for r in env.zoho.requests()[-20:] if r["path"].endswith("/Products/upsert")]
    assert crm_writes(env) - writes == 1 and len(upserts) >= 1, "one upsert carrying the two differing records"

    again = cdchub(env, "replay", "materials", "--dry-run", "--json")
    assert drift_by_key(again.stdout) == {} and json.loads(again.stdout)["same"] == 3

    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat(timespec="seconds")
    window = cdchub(env, "replay", "materials", "--from", later, "--dry-run", "--json")
    assert json.loads(window.stdout)["compared"] == 0, "nothing in a window after the last event"


def test_reconcile_fix_writes_exactly_the_drift_and_a_second_reconcile_finds_none(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.32.0001", "一次性使用喉罩", "成人 4#")
    b = insert_material(env.kingdee, "1.32.0002", "麻醉面罩", "成人 5#")
    env.capture()
    flow = env.flow("materials")
    products = wait_for(lambda: p if {str(a), str(b)} <= set(p := env.zoho.by_kingdee_id()) else None, 90,
                        "both materials in the CRM")
    flow.stop()
    env.zoho.human_edit("Products", products[str(a)]["id"], {"Product_Code": "HAND-1"})
    writes = crm_writes(env)
    fixed = cdchub(env, "reconcile", "materials", "--fix", "--json")
    assert set(drift_by_key(fixed.stdout)) == {str(a)}, fixed.stderr[-2000:]
    assert env.zoho.by_kingdee_id()[str(a)]["Product_Code"] == "1.32.0001"
    assert crm_writes(env) - writes == 1
    again = cdchub(env, "reconcile", "materials", "--json")
    assert again.returncode == 0 and drift_by_key(again.stdout) == {}, again.stdout[-2000:]


def test_many_records_are_compared_from_the_listed_module_not_one_read_each(env: IsolatedEnv) -> None:
    ids = bulk_insert_materials(env.kingdee, 30, prefix="1.32.")
    env.capture()
    flow = env.flow("materials")
    products = wait_for(lambda: p if len(p := env.zoho.by_kingdee_id()) >= 30 else None, 90, "30 materials synced")
    flow.stop()
    changed = [products[str(i)] for i in ids[:2]]
    for p in changed:
        env.zoho.human_edit("Products", p["id"], {"Product_Active": False})
    reads = len(env.zoho.requests())
    dry = cdchub(env, "replay", "materials", "--dry-run", "--json", "--quiet")
    assert set(drift_by_key(dry.stdout)) == {str(i) for i in ids[:2]} and json.loads(dry.stdout)["same"] == 28
    gets = [r for r in env.zoho.requests()[reads:] if r["method"] == "GET" and "/crm/" in r["path"]]
    assert not [r for r in gets if "/Products/" in r["path"]], "no record read one by one"
    assert 1 <= len([r for r in gets if r["path"].endswith("/Products")]) <= 2, "the module listed in pages of 200"
