"""The capture's set-up on a real PostgreSQL: the pgoutput slot, its publication, replica identity, TOASTed values."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

from sqlalchemy import text

from connectors.common.avro import AvroDecoder, registry_client
from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import insert_material, update_material
from tests.integration.harness import IsolatedEnv


def capture(env: IsolatedEnv, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", "capture", "--until-idle", *args], cwd=PROJECT_ROOT, text=True,
        capture_output=True, env={**os.environ, **env.env, **extra_env}, timeout=120,
    )


def materials(env: IsolatedEnv) -> list[dict]:
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    return [decoder.decode(v) for _, v in env.read_topic("kingdee.material") if v]


def sql(env: IsolatedEnv, statement: str, **params: object) -> list[tuple]:
    with env.kingdee.connect() as conn:
        result = conn.execute(text(statement), params)
        rows = [tuple(r) for r in result] if result.returns_rows else []
        conn.commit()
    return rows


def test_a_slot_of_another_plugin_is_refused_and_resnapshot_replaces_it(env: IsolatedEnv) -> None:
    insert_material(env.kingdee, "1.07.0001", "喉罩", "3#")
    assert capture(env).returncode == 0
    slot = env.settings.kingdee_db.slot
    assert sql(env, "SELECT plugin FROM pg_replication_slots WHERE slot_name = :s", s=slot) == [("pgoutput",)]
    # an older install's slot of another plugin (test_decoding stands in for a JSON plugin 15.19+ refuses)
    sql(env, "SELECT pg_drop_replication_slot(:s)", s=slot)
    sql(env, "SELECT pg_create_logical_replication_slot(:s, 'test_decoding')", s=slot)
    refused = capture(env)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "SlotInvalid" in out and "'test_decoding'" in out
    assert "cdchub capture --resnapshot" in out
    replaced = capture(env, "--resnapshot")
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert sql(env, "SELECT plugin FROM pg_replication_slots WHERE slot_name = :s", s=slot) == [("pgoutput",)]
    assert [e["op"] for e in materials(env)] == ["r", "r"], "the material is re-sent by the new snapshot"


def test_the_publication_is_created_completed_or_asked_of_the_dba(env: IsolatedEnv) -> None:
    publication = env.settings.kingdee_db.publication
    insert_material(env.kingdee, "1.07.0002", "面罩", "M")
    refused = capture(env, CDCHUB_KINGDEE_DB__PUBLICATION_AUTOCREATE="false")
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and f'CREATE PUBLICATION "{publication}" FOR TABLE' in out
    assert not sql(env, "SELECT 1 FROM pg_replication_slots WHERE slot_name = :s", s=env.settings.kingdee_db.slot)

    assert capture(env).returncode == 0
    published = {t for (t,) in sql(env, "SELECT tablename FROM pg_publication_tables WHERE pubname = :p",
                                   p=publication)}
    assert {"T_BD_MATERIAL", "T_BD_MATERIAL_L", "T_SAL_ORDERENTRY_R"} <= published

    sql(env, f'ALTER PUBLICATION "{publication}" DROP TABLE "T_BD_MATERIAL_L"')
    refused = capture(env, CDCHUB_KINGDEE_DB__PUBLICATION_AUTOCREATE="false")
    assert refused.returncode != 0 and "ADD TABLE \"T_BD_MATERIAL_L\"" in refused.stdout + refused.stderr
    assert capture(env).returncode == 0, "the capture adds the table back when it may"
    assert sql(env, "SELECT 1 FROM pg_publication_tables WHERE pubname = :p AND tablename = 'T_BD_MATERIAL_L'",
               p=publication)

    sql(env, 'ALTER TABLE "T_BD_MATERIAL_L" REPLICA IDENTITY DEFAULT')
    refused = capture(env)
    assert refused.returncode != 0
    assert 'ALTER TABLE "T_BD_MATERIAL_L" REPLICA IDENTITY FULL' in refused.stdout + refused.stderr


def test_a_long_text_the_update_did_not_touch_travels_whole(env: IsolatedEnv) -> None:
    """A value stored out of line (TOAST) that an update leaves alone is not in the new row; it comes whole."""
    sql(env, 'ALTER TABLE "T_BD_MATERIAL_L" ALTER COLUMN "FDESCRIPTION" TYPE text')
    long_text = "适用于成人全麻手术" + secrets.token_hex(40_000)  # 80 kB that does not compress: stored out of line
    mid = insert_material(env.kingdee, "1.07.0003", "呼吸回路", "成人", description=long_text)
    assert capture(env).returncode == 0
    update_material(env.kingdee, mid, name="呼吸回路（加长）")
    done = capture(env)
    assert done.returncode == 0, done.stdout + done.stderr
    last = materials(env)[-1]
    assert last["op"] == "u"
    (texts,) = last["after"]["texts"]
    assert texts["FNAME"] == "呼吸回路（加长）" and texts["FDESCRIPTION"] == long_text


def test_a_slot_moved_ahead_stops_the_capture_unless_the_gap_is_accepted_and_recorded(env: IsolatedEnv) -> None:
    insert_material(env.kingdee, "1.07.0003", "喉罩", "4#")
    assert capture(env).returncode == 0
    slot = env.settings.kingdee_db.slot
    skipped = insert_material(env.kingdee, "1.07.0004", "面罩", "M")
    sql(env, "SELECT pg_replication_slot_advance(:s, pg_current_wal_lsn())", s=slot)  # someone moved the slot
    refused = capture(env)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "SlotAhead" in out and "--accept-gap" in out and "--resnapshot" in out
    assert len(materials(env)) == 1

    accepted = capture(env, "--accept-gap")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    gaps = json.loads((env.settings.state_dir / "capture-gaps.json").read_text())
    assert [g["slot"] for g in gaps] == [slot] and gaps[0]["from_lsn"] != gaps[0]["to_lsn"]
    assert json.loads((env.settings.state_dir / "capture-stats.json").read_text())["gaps_accepted"] == 1
    later = insert_material(env.kingdee, "1.07.0005", "吸痰管", "F12")
    assert capture(env).returncode == 0, "accepted once; the next start is normal"
    keys = [e["after"]["FMATERIALID"] for e in materials(env)]
    assert later in keys and skipped not in keys


def test_a_lost_slot_stops_the_capture_naming_the_resnapshot(env: IsolatedEnv) -> None:
    insert_material(env.kingdee, "1.07.0006", "喉罩", "5#")
    assert capture(env).returncode == 0
    sql(env, "SELECT pg_drop_replication_slot(:s)", s=env.settings.kingdee_db.slot)
    refused = capture(env)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "SlotLost" in out and "cdchub capture --resnapshot" in out
