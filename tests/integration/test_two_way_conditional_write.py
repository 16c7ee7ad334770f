"""The two-way guard's look and its write are two calls; a sales rep who saves the CRM record in between is not
overwritten: the write is conditional (``If-Unmodified-Since`` = the ``Modified_Time`` looked at), the CRM refuses
it (``ALREADY_MODIFIED``), the guard looks again, the rep's later edit wins and reaches Kingdee."""

from __future__ import annotations

import pytest

from infra.simulators.kingdee.erp import insert_material, update_material
from tests.integration.harness import IsolatedEnv, holds_for, wait_for
from tests.integration.test_master_data_materials import (
    QUIET_S,
    crm_product,
    material_row,
    next_second,
    start_two_way,
)

pytestmark = pytest.mark.integration

HOLD_MS = 4_000  # the CRM holds the write this long: the rep saves meanwhile


def test_a_reps_save_between_the_look_and_the_write_is_not_overwritten(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.42.0001", "一次性使用喉罩", "成人 4#")
    start_two_way(env)
    wait_for(lambda: str(a) in env.zoho.by_kingdee_id(), 90, "the material in the CRM")
    product_id = crm_product(env, a)["id"]
    mark = max((r["seq"] for r in env.zoho.requests()), default=0)
    # whichever way the flow writes the record next (conditional update or upsert), the CRM is slow to apply it
    env.zoho.fault(path_regex=r"/crm/v8/Products$", method="PUT", latency_ms=HOLD_MS, count=1)
    env.zoho.fault(path_regex=r"/crm/v8/Products/upsert$", method="POST", latency_ms=HOLD_MS, count=1)

    update_material(env.kingdee, a, name="一次性使用喉罩（Kingdee 改）")  # a shared field
    wait_for(lambda: any(r["seq"] > mark and r["method"] == "GET" and r["path"].endswith(f"/Products/{product_id}")
                         for r in env.zoho.requests()), 60, "the guard's look at the CRM record")
    next_second()  # the rep's save is later than the Kingdee edit, as both systems tell time
    env.zoho.human_edit("Products", product_id, {"Product_Name": "一次性使用喉罩（销售改）"})  # after the look

    refused = wait_for(lambda: [r for r in env.zoho.requests() if r["seq"] > mark and r["method"] == "PUT"
                                and r["path"] == "/crm/v8/Products" and r["status"] == 412], 30,
                       "the conditional write refused")
    assert len(refused) == 1
    reps = "一次性使用喉罩（销售改）"
    wait_for(lambda: material_row(env, a)["FNAME"] == reps, 60, "the rep's edit in Kingdee")
    holds_for(lambda: crm_product(env, a)["Product_Name"] == material_row(env, a)["FNAME"] == reps, QUIET_S,
              "both systems keep the rep's later edit")
    assert env.dead_letters("materials") == []
