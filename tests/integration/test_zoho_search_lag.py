"""ZOHO's search index trails writes; cdchub does not depend on it. With the simulator's ``/search`` a minute behind,
records the materials flow just created are found, compared and not created twice — even by a replay that has no
ledger to name them (the only lookup that goes through search, ``connectors/zoho/lookup.py``)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete

from connectors.zoho.client import ZohoClient
from core.ledger import open_engine, sync_ledger
from infra.simulators.kingdee.erp import insert_material
from tests.integration.harness import IsolatedEnv, wait_for
from tests.integration.test_replay import cdchub, crm_writes

pytestmark = pytest.mark.integration


def test_records_just_created_are_found_despite_the_search_index_lag(env: IsolatedEnv) -> None:
    assert env.zoho.search_lag_s() > 0, "the session's simulator lags like the local stack's"
    env.zoho.search_lag_s(60)
    a = insert_material(env.kingdee, "1.41.0001", "一次性使用喉罩", "成人 4#")
    b = insert_material(env.kingdee, "1.41.0002", "麻醉面罩", "成人 5#")
    env.capture()
    flow = env.flow("materials")
    products = wait_for(lambda: p if {str(a), str(b)} <= set(p := env.zoho.by_kingdee_id()) else None, 90,
                        "both materials in the CRM")
    flow.stop()
    client = ZohoClient(env.settings.zoho)
    try:
        assert client.search("Products", "Kingdee_ID", str(a)) == [], "the index does not show them yet"
    finally:
        client.close()

    # A replay that cannot name the records from the ledger (emptied) looks them up by key: found, the same.
    with open_engine(env.settings.ledger_database_url()).begin() as conn:
        conn.execute(delete(sync_ledger).where(sync_ledger.c.flow == "materials"))
    writes = crm_writes(env)
    dry = cdchub(env, "replay", "materials", "--from", "beginning", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert json.loads(dry.stdout)["drift"] == [], "no record reported missing (it would be created again)"
    assert json.loads(dry.stdout)["same"] == 2
    replayed = cdchub(env, "replay", "materials", "--from", "beginning")
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert crm_writes(env) == writes, "nothing written, nothing created twice"
    now = [r for r in env.zoho.records() if r.get("Kingdee_ID") in (str(a), str(b))]
    assert sorted(r["id"] for r in now) == sorted(products[k]["id"] for k in (str(a), str(b)))
