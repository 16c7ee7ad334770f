"""Prometheus metrics from the capture stats, the ledger and the dead-letter topics, on the real stack."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import insert_material
from tests.integration.harness import IsolatedEnv, wait_for


def scrape(env: IsolatedEnv) -> dict[str, list]:
    done = subprocess.run([sys.executable, "-m", "cdchub.cli", "metrics", "--once"], cwd=PROJECT_ROOT, text=True,
                          capture_output=True, env={**os.environ, **env.env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return {f.name: f.samples for f in text_string_to_metric_families(done.stdout)}


def test_metrics_count_what_was_captured_synced_and_dead_lettered(env: IsolatedEnv) -> None:
    ids = [insert_material(env.kingdee, f"1.40.{i:04d}", f"湿化器 {i}", "成人") for i in range(3)]
    insert_material(env.kingdee, "1.40/坏", "湿化器", "成人")
    env.capture()
    env.flow("materials")
    wait_for(lambda: {str(i) for i in ids} <= set(env.zoho.by_kingdee_id()), 60, "the materials in the CRM")
    wait_for(lambda: env.dead_letters("materials"), 30, "the dead letter")
    metrics = wait_for(lambda: m if (m := scrape(env)).get("cdchub_capture_events") else None, 30, "capture stats")
    assert metrics["cdchub_capture_events"][0].value >= 4
    synced = {s.labels["action"]: s.value for s in metrics["cdchub_sink_records"]
              if s.labels["flow"] == "materials" and s.labels["status"] == "synced"}
    assert synced.get("insert") == 3
    latency = {s.name: s for s in metrics["cdchub_end_to_end_latency_seconds"] if s.labels["flow"] == "materials"}
    assert latency["cdchub_end_to_end_latency_seconds_count"].value == 3
    letters = {s.labels["topic"]: s.value for s in metrics["cdchub_dead_letters"]}
    assert letters[env.topic("cdchub.dlq.materials")] == 1
    assert metrics["cdchub_zoho_credits_used_last_day"][0].value >= 1, "the flow's CRM calls are counted"
    assert metrics["cdchub_zoho_credits_budget"][0].value == 50_000


def test_status_shows_each_flow_with_its_counts_lag_and_dead_letters(env: IsolatedEnv) -> None:
    ids = [insert_material(env.kingdee, f"1.41.{i:04d}", f"鼻氧管 {i}", "成人") for i in range(2)]
    insert_material(env.kingdee, "1.41/坏", "鼻氧管", "成人")
    env.capture()
    env.flow("materials")
    wait_for(lambda: {str(i) for i in ids} <= set(env.zoho.by_kingdee_id()), 60, "the materials in the CRM")
    wait_for(lambda: env.dead_letters("materials"), 30, "the dead letter")
    done = subprocess.run([sys.executable, "-m", "cdchub.cli", "status"], cwd=PROJECT_ROOT, text=True,
                          capture_output=True, env={**os.environ, **env.env}, timeout=60)
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("materials ")]
    assert "synced      2" in row and "lag      0" in row and "dead letters 1" in row, done.stdout
    (budget,) = [line for line in done.stdout.splitlines() if line.startswith("ZOHO API (24 h): ")]
    assert int(budget.split(": ")[1].split(" credits")[0].replace(",", "")) >= 1 and "of 50,000" in budget
