"""Dead letters listed, shown and replayed after the target is fixed (``cdchub dlq``), on the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import insert_material
from tests.integration.harness import IsolatedEnv, wait_for


def dlq(env: IsolatedEnv, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cdchub.cli", "dlq", *args], cwd=PROJECT_ROOT, text=True,
                          capture_output=True, env={**os.environ, **env.env}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_letter_is_replayed_once_after_the_target_is_fixed(env: IsolatedEnv) -> None:
    env.zoho.fault(path_regex=".*/Products/upsert", status=400, count=1,
                   body={"code": "INVALID_DATA", "details": {"api_name": "Product_Name"},
                         "message": "invalid data", "status": "error"})
    refused = insert_material(env.kingdee, "8.01.0001", "呼吸回路", "成人")
    env.capture()
    env.flow("materials")
    (letter,) = wait_for(lambda: env.dead_letters("materials"), 60, "the refused material dead-lettered")
    assert letter["source"]["key"] == str(refused) and "INVALID_DATA" in letter["error"]
    listed = dlq(env, "list", "--flow", "materials")
    assert f"key={refused}" in listed and "1 dead letters" in listed
    shown = json.loads(dlq(env, "show", "--flow", "materials"))
    assert shown[0]["record"]["Product_Name"] == "呼吸回路"

    assert "would replay" in dlq(env, "replay", "--flow", "materials", "--dry-run")
    assert str(refused) not in env.zoho.by_kingdee_id(), "a dry run changes nothing"
    assert "1 replayed of 1" in dlq(env, "replay", "--flow", "materials")
    wait_for(lambda: str(refused) in env.zoho.by_kingdee_id(), 60, "the replayed material in the CRM")
    assert "[replayed]" in dlq(env, "list", "--flow", "materials")
    assert "already replayed" in dlq(env, "replay", "--flow", "materials"), "a letter is replayed once"
    assert len(env.zoho.records()) == 1
