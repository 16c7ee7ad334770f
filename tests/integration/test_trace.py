"""``cdchub trace``: a material's journey from the Kingdee database to the CRM, on the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cdchub.settings import PROJECT_ROOT
from connectors.kingdee.demo_data import insert_material, update_material
from tests.integration.harness import IsolatedEnv, wait_for


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
    assert writes and writes[-1]["detail"]["target_id"] == crm_id and writes[-1]["detail"]["latency_ms"] >= 0

    by_target = cdchub(env, "trace", crm_id)
    assert by_target.returncode == 0 and "materials" in by_target.stdout and "captured (u)" in by_target.stdout

    failed = cdchub(env, "trace", str(bad))
    assert failed.returncode == 0 and "dead letter (materials)" in failed.stdout and "does not match" in failed.stdout
    assert cdchub(env, "trace", "no-such-thing").returncode == 1
