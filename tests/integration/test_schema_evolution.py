"""A column added to a captured table mid-stream: a new schema version, and the running flow keeps going."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from sqlalchemy import text

from connectors.common.avro import AvroDecoder, registry_client
from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import insert_material
from tests.integration.harness import IsolatedEnv, wait_for


def test_a_new_column_becomes_a_new_schema_version_without_a_restart(env: IsolatedEnv) -> None:
    first = insert_material(env.kingdee, "1.50.0001", "呼吸机管路", "成人")
    capture = env.capture()
    flow = env.flow("materials")
    wait_for(lambda: str(first) in env.zoho.by_kingdee_id(), 60, "the first material")

    with env.kingdee.begin() as conn:
        conn.execute(text('ALTER TABLE "T_BD_MATERIAL" ADD COLUMN "FNETWEIGHT" numeric(23,10)'))
    second = insert_material(env.kingdee, "1.50.0002", "呼吸机管路（加长）", "成人 2.4m")
    with env.kingdee.begin() as conn:
        conn.execute(text('UPDATE "T_BD_MATERIAL" SET "FNETWEIGHT" = 0.25 WHERE "FMATERIALID" = :id'), {"id": second})

    # the running flow (reading with its own, older schema) still syncs the new material
    wait_for(lambda: str(second) in env.zoho.by_kingdee_id(), 60, "the material after the new column")
    assert capture.alive() and flow.alive(), "nothing was restarted"
    decoder = AvroDecoder(registry_client(env.settings.registry.url))  # the writer's schema
    weighed = wait_for(lambda: [e for k, v in env.read_topic("kingdee.material")
                                if k == str(second).encode() and v
                                and (e := decoder.decode(v))["after"].get("FNETWEIGHT") is not None], 30,
                       "the new column's value in the change event")
    assert str(weighed[-1]["after"]["FNETWEIGHT"]) == "0.2500000000"
    subject = env.topic("kingdee.material") + "-value"
    versions = httpx.get(f"{env.settings.registry.url}/subjects/{subject}/versions", timeout=10).json()
    assert len(versions) == 2
    check = subprocess.run([sys.executable, "-m", "cdchub.cli", "schemas", "check"], cwd=PROJECT_ROOT, text=True,
                           capture_output=True, env={**os.environ, **env.env}, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{subject}" in check.stdout and "versions [1, 2]" in check.stdout
