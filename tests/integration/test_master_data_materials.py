"""Materials both ways (Kingdee ⇄ ZOHO CRM Products) on the real stack with the ZOHO and Kingdee WebAPI simulators:
edits flow back, nothing echoes, shared fields converge by last writer, deletions are reported."""

from __future__ import annotations

import shutil
import time

from sqlalchemy import text

from infra.simulators.kingdee.erp import insert_material, update_material
from tests.integration.harness import IsolatedEnv, KingdeeSim, holds_for, wait_for

QUIET_S = 4.0  # longer than several poll intervals (0.3 s) and flow round trips


def material_row(env: IsolatedEnv, material_id: int) -> dict:
    with env.kingdee.connect() as conn:
        row = conn.execute(text(
            'SELECT m."FDOCUMENTSTATUS", m."FMODIFIERID", l."FNAME", l."FSPECIFICATION", l."FDESCRIPTION" '
            'FROM "T_BD_MATERIAL" m JOIN "T_BD_MATERIAL_L" l ON l."FMATERIALID" = m."FMATERIALID" '
            'WHERE m."FMATERIALID" = :id'), {"id": material_id}).one()
    return dict(row._mapping)


def crm_product(env: IsolatedEnv, material_id: int) -> dict:
    return env.zoho.by_kingdee_id()[str(material_id)]


def product_writes(env: IsolatedEnv) -> int:
    """Writes of CRM products: upserts, and the conditional updates that follow the two-way guard's look."""
    return sum(1 for r in env.zoho.requests() if r["path"].endswith("/Products/upsert")
               or (r["method"] == "PUT" and r["path"].endswith("/Products")))


def start_two_way(env: IsolatedEnv) -> KingdeeSim:
    kingdee = env.start_kingdee_api()
    env.capture()
    env.flow("materials")
    env.poller()
    env.flow("products_to_kingdee")
    return kingdee


def next_second() -> None:
    """ZOHO shows Modified_Time to the second: edits meant to be ordered are made in different seconds."""
    start = int(time.time())
    wait_for(lambda: int(time.time()) > start, 2, "the next second", 0.02)


def test_edits_flow_both_ways_and_nothing_echoes(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.20.0001", "一次性使用麻醉呼吸回路", "成人 1.8m")
    b = insert_material(env.kingdee, "1.20.0002", "呼吸过滤器", "HEPA")
    kingdee = start_two_way(env)
    wait_for(lambda: {str(a), str(b)} <= set(env.zoho.by_kingdee_id()), 90, "both materials in the CRM")
    crm_a = crm_product(env, a)

    # one edit in the CRM (a CRM-owned field) → Kingdee, then quiet: no write back to the CRM, one save in Kingdee
    crm_writes, saves = product_writes(env), kingdee.calls("DynamicFormService.Save")
    env.zoho.human_edit("Products", crm_a["id"], {"Description": "适用于成人全麻手术，一次性使用"})
    # an audited material is un-audited, saved and audited again
    wait_for(lambda: (row := material_row(env, a))["FDESCRIPTION"] == "适用于成人全麻手术，一次性使用"
             and row["FDOCUMENTSTATUS"] == "C", 60, "the CRM's description in Kingdee, audited again")
    holds_for(lambda: product_writes(env) == crm_writes and kingdee.calls("DynamicFormService.Save") == saves + 1,
              QUIET_S, "no echo after a CRM edit")

    # one edit in Kingdee (a shared field) → the CRM, then quiet: no save back to Kingdee, one CRM write
    crm_writes, saves = product_writes(env), kingdee.calls("DynamicFormService.Save")
    update_material(env.kingdee, b, name="呼吸过滤器（细菌病毒）")
    wait_for(lambda: crm_product(env, b)["Product_Name"] == "呼吸过滤器（细菌病毒）", 30, "Kingdee's name in the CRM")
    holds_for(lambda: product_writes(env) == crm_writes + 1 and kingdee.calls("DynamicFormService.Save") == saves,
              QUIET_S, "no echo after a Kingdee edit")

    # a Kingdee-owned field edited in the CRM does not flow to Kingdee; Kingdee's value is put back in the CRM
    env.zoho.human_edit("Products", crm_a["id"], {"Product_Code": "HAND-EDITED"})
    wait_for(lambda: crm_product(env, a)["Product_Code"] == "1.20.0001", 30, "the owner's value put back")
    holds_for(lambda: kingdee.calls("DynamicFormService.Save") == saves, 2.0, "no save of a Kingdee-owned field")


def test_concurrent_edits_of_a_shared_field_converge_to_the_last_writer(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.21.0001", "喉罩", "成人 4#")
    b = insert_material(env.kingdee, "1.21.0002", "气管插管", "ID 7.0")
    env.start_kingdee_api()
    capture = env.capture()
    forward = env.flow("materials")
    poller = env.poller()
    reverse = env.flow("products_to_kingdee")
    wait_for(lambda: {str(a), str(b)} <= set(env.zoho.by_kingdee_id()), 90, "both materials in the CRM")
    crm_a, crm_b = crm_product(env, a), crm_product(env, b)
    for child in (forward, poller, reverse, capture):
        child.stop()

    # a: Kingdee first, then the CRM — the CRM's later edit wins; b: the CRM first, then Kingdee — Kingdee wins
    update_material(env.kingdee, a, name="喉罩（Kingdee 先改）")
    env.zoho.human_edit("Products", crm_b["id"], {"Product_Name": "气管插管（CRM 先改）"})
    next_second()
    env.zoho.human_edit("Products", crm_a["id"], {"Product_Name": "喉罩（CRM 后改）"})
    next_second()
    update_material(env.kingdee, b, name="气管插管（Kingdee 后改）")

    env.capture()
    env.flow("materials")
    env.poller()
    env.flow("products_to_kingdee")
    wait_for(lambda: material_row(env, a)["FNAME"] == "喉罩（CRM 后改）"
             and crm_product(env, a)["Product_Name"] == "喉罩（CRM 后改）", 150,
             "a converged on the CRM's later edit")
    wait_for(lambda: crm_product(env, b)["Product_Name"] == "气管插管（Kingdee 后改）"
             and material_row(env, b)["FNAME"] == "气管插管（Kingdee 后改）", 150,
             "b converged on Kingdee's later edit")
    holds_for(lambda: material_row(env, a)["FNAME"] == crm_product(env, a)["Product_Name"] == "喉罩（CRM 后改）"
              and material_row(env, b)["FNAME"] == crm_product(env, b)["Product_Name"] == "气管插管（Kingdee 后改）",
              QUIET_S, "both systems stay converged")


def test_a_crm_deletion_is_reported_and_not_propagated(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.22.0001", "雾化器", "成人")
    start_two_way(env)
    wait_for(lambda: str(a) in env.zoho.by_kingdee_id(), 90, "the material in the CRM")
    env.zoho.human_delete("Products", crm_product(env, a)["id"])
    letters = wait_for(lambda: env.dead_letters("products_to_kingdee"), 30, "the deletion reported")
    assert letters[0]["error_class"] == "NotPropagated" and "disable it there" in letters[0]["error"]
    assert material_row(env, a)["FDOCUMENTSTATUS"] == "C", "the Kingdee material is untouched"
    update_material(env.kingdee, a, spec="成人 加长")
    wait_for(lambda: str(a) in env.zoho.by_kingdee_id(), 30, "the next Kingdee change re-creates the CRM record")


def test_a_save_cut_off_before_its_audit_is_finished_and_the_material_stays_audited(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.24.0001", "呼吸回路", "成人")
    kingdee = start_two_way(env)
    wait_for(lambda: str(a) in env.zoho.by_kingdee_id(), 90, "the material in the CRM")
    # the next Audit fails after the un-audit, the save and the submit went through: the material is left in review
    kingdee.http.post("/__sim/faults", json={"path_regex": r"DynamicFormService\.Audit\.", "status": 500,
                                             "count": 1}).raise_for_status()
    env.zoho.human_edit("Products", crm_product(env, a)["id"], {"Specification": "成人 加长 1.8m"})
    wait_for(lambda: material_row(env, a)["FSPECIFICATION"] == "成人 加长 1.8m"
             and material_row(env, a)["FDOCUMENTSTATUS"] == "C", 60, "the edit saved and the material audited again")
    assert kingdee.calls("DynamicFormService.Audit.") >= 2, "the first audit failed; the retry finished it"
    assert env.dead_letters("products_to_kingdee") == []
    assert crm_product(env, a)["Product_Active"] is True


def test_replaying_the_topics_from_the_start_changes_nothing(env: IsolatedEnv) -> None:
    a = insert_material(env.kingdee, "1.23.0001", "吸痰管", "F12")
    b = insert_material(env.kingdee, "1.23.0002", "鼻氧管", "成人 2m")
    kingdee = start_two_way(env)
    wait_for(lambda: {str(a), str(b)} <= set(env.zoho.by_kingdee_id()), 90, "both materials in the CRM")
    env.zoho.human_edit("Products", crm_product(env, a)["id"], {"Description": "带控制阀"})
    update_material(env.kingdee, b, name="鼻氧管（双腔）")
    wait_for(lambda: material_row(env, a)["FDESCRIPTION"] == "带控制阀"
             and crm_product(env, b)["Product_Name"] == "鼻氧管（双腔）", 60, "both edits applied")
    flows = [c for c in env.children if c.argv[0] == "flow"]
    for child in flows:
        child.stop()
    shutil.rmtree(env.settings.state_dir / "recovery")  # the flows start again from the first offset
    crm_writes = sum(1 for r in env.zoho.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"])
    saves = kingdee.calls("DynamicFormService.Save")
    replayed = [env.flow("materials"), env.flow("products_to_kingdee")]
    holds_for(lambda: all(c.alive() for c in replayed)
              and sum(1 for r in env.zoho.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"])
              == crm_writes and kingdee.calls("DynamicFormService.Save") == saves,
              QUIET_S + 4, "no writes while the whole topics are replayed")
    # proof that the replayed flows were reading (not idle): a change made now arrives, as the only new write
    update_material(env.kingdee, a, spec="成人 加长")
    wait_for(lambda: crm_product(env, a)["Specification"] == "成人 加长", 60, "a change after the replay")
    holds_for(lambda: sum(1 for r in env.zoho.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"])
              == crm_writes + 1 and kingdee.calls("DynamicFormService.Save") == saves, 2,
              "one write: the change made after the replay; no echo back to Kingdee")
