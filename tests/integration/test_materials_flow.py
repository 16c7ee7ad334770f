"""Materials, Kingdee database → capture → Kafka → flow → ZOHO CRM simulator, on the real stack."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import text

from connectors.common.avro import AvroDecoder, registry_client
from infra.simulators.kingdee.erp import (
    bulk_insert_materials,
    delete_material,
    disable_material,
    insert_material,
    update_material,
)
from tests.integration.harness import CAPTURE_MODES, IsolatedEnv, at_least, wait_for


def crm_has(env: IsolatedEnv, n: int):  # type: ignore[no-untyped-def]
    def check():  # type: ignore[no-untyped-def]
        records = env.zoho.by_kingdee_id()
        return records if len(records) >= n else None
    return check


@pytest.mark.parametrize("env", CAPTURE_MODES, indirect=True)
def test_insert_edit_disable_delete_reach_the_crm(env: IsolatedEnv) -> None:
    ids = [insert_material(env.kingdee, f"1.01.{i:04d}", f"一次性使用喉罩 {i}#", "成人 4#") for i in range(1, 4)]
    draft = insert_material(env.kingdee, "1.01.0999", "草稿物料", status="A")
    env.capture()
    env.flow()
    crm = wait_for(crm_has(env, 3), 90, "the three audited materials in the CRM")
    assert set(crm) == {str(i) for i in ids}, "the draft material is not sent"
    assert crm[str(ids[0])]["Product_Name"] == "一次性使用喉罩 1#"
    assert crm[str(ids[0])]["Product_Code"] == "1.01.0001"
    assert crm[str(ids[0])]["Product_Active"] is True

    new = insert_material(env.kingdee, "1.02.0001", "麻醉面罩", "成人 5#")
    wait_for(lambda: str(new) in env.zoho.by_kingdee_id(), 30, "an inserted material")
    update_material(env.kingdee, ids[0], name="一次性使用喉罩（加强型）")
    wait_for(lambda: env.zoho.by_kingdee_id()[str(ids[0])]["Product_Name"] == "一次性使用喉罩（加强型）", 30,
             "an edited name")
    disable_material(env.kingdee, ids[1])
    wait_for(lambda: env.zoho.by_kingdee_id()[str(ids[1])]["Product_Active"] is False, 30, "a disabled material")
    delete_material(env.kingdee, ids[2])
    deleted = wait_for(lambda: env.zoho.by_kingdee_id()[str(ids[2])].get("Kingdee_Deleted") is True
                       and env.zoho.by_kingdee_id()[str(ids[2])], 30, "a deleted material marked")
    assert deleted["Product_Active"] is False
    update_material(env.kingdee, draft, status="C")  # audited later: now it is sent
    wait_for(lambda: str(draft) in env.zoho.by_kingdee_id(), 30, "a material audited later")

    records = env.zoho.records()
    assert len(records) == 5 and len({r["Kingdee_ID"] for r in records}) == 5, "no duplicates"
    # the change topic carries a delete event followed by a tombstone for the deleted material
    messages = [(k, v) for k, v in env.read_topic("kingdee.material") if k == str(ids[2]).encode()]
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    assert messages[-1][1] is None
    assert decoder.decode(messages[-2][1])["op"] == "d"  # type: ignore[arg-type]


@pytest.mark.parametrize("env", CAPTURE_MODES, indirect=True)
def test_capture_restarts_mid_stream_lose_and_duplicate_nothing(env: IsolatedEnv) -> None:
    capture = env.capture()
    env.flow()
    inserted: list[int] = []

    def writer() -> None:
        for i in range(300):
            inserted.append(insert_material(env.kingdee, f"2.01.{i:04d}", f"呼吸过滤器 {i}", "成人型"))

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(3):  # crash the capture three times while materials keep coming
        wait_for(lambda: len(inserted) > 0 and len(env.zoho.records()) > 0, 60, "progress")
        capture.kill()
        capture = env.capture()
        count = len(env.zoho.records())
        wait_for(lambda c=count: len(env.zoho.records()) > c or not thread.is_alive(), 60, "progress after restart")
    thread.join()
    crm = wait_for(crm_has(env, 300), 120, "all 300 materials")
    assert set(crm) == {str(i) for i in inserted}
    assert len(env.zoho.records()) == 300


def test_bulk_insert_in_one_transaction_arrives_once(env: IsolatedEnv) -> None:
    env.capture()
    env.flow()
    ids = bulk_insert_materials(env.kingdee, 3000, prefix="3.01.")
    crm = wait_for(crm_has(env, 3000), 240, "3000 bulk-inserted materials")
    assert set(crm) == {str(i) for i in ids}
    assert len(env.zoho.records()) == 3000
    upserts = [r for r in env.zoho.requests() if r["path"].endswith("/Products/upsert")]
    assert upserts and max(r["records"] for r in upserts) <= 100


def test_malformed_rows_go_to_the_dead_letter_topic_and_the_rest_flows(env: IsolatedEnv) -> None:
    good = insert_material(env.kingdee, "4.01.0001", "吸痰管", "F12")
    too_long = insert_material(env.kingdee, "4.01.0002", "超长名称" * 40, "x")
    bad_code = insert_material(env.kingdee, "4.01/坏 编码", "雾化器", "成人")
    with env.kingdee.begin() as conn:  # a status letter Kingdee does not have
        conn.execute(text('UPDATE "T_BD_MATERIAL" SET "FFORBIDSTATUS" = \'X\' WHERE "FNUMBER" = \'4.01.0001\''))
    after = insert_material(env.kingdee, "4.01.0003", "鼻氧管", "成人 2m")
    env.capture()
    env.flow()
    wait_for(lambda: str(after) in env.zoho.by_kingdee_id(), 90, "the material after the bad ones")
    letters = wait_for(at_least(3, lambda: env.dead_letters("materials")), 30, "3 dead letters")
    by_key = {d["source"]["key"]: d for d in letters}
    assert "Product_Name: 160 characters" in by_key[str(too_long)]["error"]
    assert "does not match" in by_key[str(bad_code)]["error"]
    assert "unknown code 'X'" in by_key[str(good)]["error"]
    assert set(env.zoho.by_kingdee_id()) == {str(after)}
    # each letter names where its record is: reading that position gives the document it is about
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    source = by_key[str(too_long)]["source"]
    assert source["topic"] == env.topic("kingdee.material") and source["offset"] is not None
    consumer = Consumer({"bootstrap.servers": env.settings.kafka.bootstrap_servers, "group.id": "dlq-position"})
    consumer.assign([TopicPartition(source["topic"], source["partition"], source["offset"])])
    msg = wait_for(lambda: consumer.poll(0.5), 30, "the message at the dead letter's position")
    consumer.close()
    assert msg.key() == str(too_long).encode()
    assert decoder.decode(msg.value())["after"]["FNUMBER"] == "4.01.0002"


def test_crm_errors_and_429s_for_a_while_then_everything_arrives(env: IsolatedEnv) -> None:
    env.zoho.fault(path_regex=".*/Products/upsert", status=429, count=4)
    env.zoho.fault(path_regex=".*/Products/upsert", status=500, count=3)
    ids = [insert_material(env.kingdee, f"5.01.{i:04d}", f"人工鼻 {i}", "成人") for i in range(20)]
    env.capture()
    env.flow()
    crm = wait_for(crm_has(env, 20), 120, "all materials after the outage")
    assert set(crm) == {str(i) for i in ids}
    statuses = [r["status"] for r in env.zoho.requests() if r["path"].endswith("/Products/upsert")]
    assert statuses.count(429) == 4 and statuses.count(500) == 3
    assert env.dead_letters("materials") == []


def test_expired_token_is_refreshed_once_not_per_call(env: IsolatedEnv) -> None:
    env.capture()
    env.flow()
    first = insert_material(env.kingdee, "6.01.0001", "湿化器", "成人")
    wait_for(lambda: str(first) in env.zoho.by_kingdee_id(), 60, "first material")
    env.zoho.expire_tokens()
    ids = []
    for i in range(5):
        ids.append(insert_material(env.kingdee, f"6.02.{i:04d}", f"麻醉机管路 {i}", "成人"))
        wait_for(lambda i=ids[-1]: str(i) in env.zoho.by_kingdee_id(), 30, "material after token expiry")
    token_calls = [r for r in env.zoho.requests() if r["path"].endswith("/oauth/v2/token")]
    assert len(token_calls) == 2, "one token at start, one after expiry"
    refused = [r for r in env.zoho.requests() if r["path"].endswith("/Products/upsert") and r["status"] == 401]
    assert len(refused) == 1, "the expired token met one 401, then the refreshed token was used"


def test_flow_crash_after_writes_makes_no_duplicates_on_restart(env: IsolatedEnv) -> None:
    env.capture()
    flow = env.flow()
    ids = bulk_insert_materials(env.kingdee, 500, prefix="7.01.")
    wait_for(lambda: len(env.zoho.records()) >= 100, 120, "some writes")
    flow.kill()  # between target writes and the recovery snapshot
    env.flow()
    crm = wait_for(crm_has(env, 500), 180, "all materials after the flow restarts")
    assert set(crm) == {str(i) for i in ids}
    assert len(env.zoho.records()) == 500
