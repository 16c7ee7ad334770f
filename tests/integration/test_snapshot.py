"""Re-snapshot of chosen Kingdee documents while the capture keeps streaming, on the real stack."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text

from connectors.common.avro import AvroDecoder, registry_client
from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import insert_material
from tests.integration.harness import IsolatedEnv, wait_for


def cdchub(env: IsolatedEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdchub.cli", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=180, env={**os.environ, "PYTHONUNBUFFERED": "1", **env.env})


def snapshot_events(env: IsolatedEnv) -> list[tuple[str, str]]:
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    out = []
    for key, value in env.read_topic("kingdee.material"):
        if value is not None and (e := decoder.decode(value))["source"]["snapshot"]:
            out.append((key.decode() if key else "", e["op"]))
    return out


def crm_writes(env: IsolatedEnv) -> int:
    return sum(1 for r in env.zoho.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"])


def test_a_resnapshot_resends_the_documents_while_streaming_goes_on_and_finds_rows_lost_to_truncate(
        env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.41.0001", "一次性使用喉罩", "成人 4#")
    b = insert_material(env.kingdee, "1.41.0002", "麻醉面罩", "成人 5#")
    capture = env.capture()
    env.flow("materials")
    wait_for(lambda: {str(a), str(b)} <= set(env.zoho.by_kingdee_id()), 90, "both materials in the CRM")
    initial = snapshot_events(env)
    assert sorted(initial) == sorted([(str(a), "r"), (str(b), "r")]), "the initial snapshot"
    writes = crm_writes(env)

    done = cdchub(env, "snapshot", "T_BD_MATERIAL_L")  # a table names its document
    assert done.returncode == 0, done.stderr[-2000:]
    assert "done: 2 documents sent, 0 deleted" in done.stdout and "100%" in done.stderr
    assert sorted(snapshot_events(env)) == sorted(initial * 2), "each material sent again, as a read event"
    c = insert_material(env.kingdee, "1.41.0003", "气管插管", "ID 7.0")
    wait_for(lambda: str(c) in env.zoho.by_kingdee_id(), 30, "streaming goes on after the re-snapshot")
    assert crm_writes(env) == writes + 1, "re-sent documents equal to what the CRM has are not written again"
    assert capture.alive()

    # TRUNCATE has no row events: the CRM still shows the materials until a re-snapshot finds them gone.
    with env.kingdee.begin() as conn:
        conn.execute(text('TRUNCATE "T_BD_MATERIAL", "T_BD_MATERIAL_L", "T_BD_MATERIALBASE"'))
    truncated = wait_for(lambda: [d for d in env.dead_letters("capture") if "TRUNCATE" in d["error"]], 30,
                         "the truncate reported")
    assert "`cdchub snapshot T_BD_MATERIAL" in truncated[0]["error"], "names the command for the truncated table"
    done = cdchub(env, "snapshot", "material")
    assert done.returncode == 0 and "done: 0 documents sent, 3 deleted" in done.stdout, done.stdout + done.stderr
    wait_for(lambda: all(p["Kingdee_Deleted"] is True and p["Product_Active"] is False
                         for k, p in env.zoho.by_kingdee_id().items() if k in {str(a), str(b), str(c)}), 30,
             "the three materials marked deleted in the CRM")

    unknown = cdchub(env, "snapshot", "T_NOT_CAPTURED")
    assert unknown.returncode == 2 and "material" in unknown.stderr, "unknown names are refused, naming the valid"
