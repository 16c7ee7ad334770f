"""No document stops the capture: big documents travel, one too big for Kafka is dead-lettered with its size and
position, and what is committed after them arrives — on the real PostgreSQL, Kafka and registry."""

from __future__ import annotations

import json

from sqlalchemy import text

from connectors.common.avro import AvroDecoder, registry_client
from infra.simulators.kingdee.erp import OrderLine, insert_customer, insert_material, insert_sales_order
from tests.integration.harness import IsolatedEnv, wait_for

MB = 1024 * 1024


def events(env: IsolatedEnv, document: str) -> dict[str, dict]:
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    return {k.decode(): decoder.decode(v) for k, v in env.read_topic(f"kingdee.{document}") if k and v}


def test_big_documents_travel_a_too_big_one_is_dead_lettered_and_the_next_arrives(env: IsolatedEnv) -> None:
    with env.kingdee.begin() as conn:  # an installation whose material description is a large-text field
        conn.execute(text('ALTER TABLE "T_BD_MATERIAL_L" ALTER COLUMN "FDESCRIPTION" TYPE text'))
    capture = env.capture()
    first = insert_material(env.kingdee, "9.01.0001", "气管插管")
    wait_for(lambda: str(first) in events(env, "material"), 60, "the capture streaming")

    description = "一次性使用麻醉呼吸回路说明。" * (2 * MB // 42)  # 2 MB of UTF-8 Chinese text
    big = insert_material(env.kingdee, "9.01.0002", "麻醉呼吸回路", description=description)
    customer = insert_customer(env.kingdee, "C.0001", "北京协和医院")
    order = insert_sales_order(env.kingdee, customer, [OrderLine(first, i % 7 + 1, "18.50") for i in range(5000)])
    too_big = insert_material(env.kingdee, "9.01.0003", "超长说明物料", description="超" * (3 * MB))  # 9 MB
    after = insert_material(env.kingdee, "9.01.0004", "喉罩")

    materials = wait_for(lambda: (found := events(env, "material")) and str(after) in found and found, 120,
                         "the material committed after the big ones")
    assert capture.alive(), capture.log()[-3000:]
    texts = materials[str(big)]["after"]["texts"]
    assert len(texts[0]["FDESCRIPTION"].encode()) >= 2 * MB - 64
    assert str(too_big) not in materials
    orders = events(env, "sales_order")
    assert len(orders[str(order.fid)]["after"]["entries"]) == 5000

    [letter] = env.dead_letters("capture")
    assert letter["source"]["key"] == str(too_big) and letter["error_class"] == "DocumentTooLarge"
    assert letter["record"]["size_bytes"] > env.settings.kafka.max_event_bytes
    assert letter["record"]["number"] == "9.01.0003" and letter["source"]["offset"] > 0
    assert len(json.dumps(letter)) < 10_000, "the dead letter names the document; it does not carry it"

    # a restart re-reads nothing it acknowledged, and does not stumble over the big document again
    env.capture_acknowledged(materials[str(after)]["source"]["lsn"])
    capture.kill()
    again = env.capture()
    last = insert_material(env.kingdee, "9.01.0005", "面罩")
    wait_for(lambda: str(last) in events(env, "material"), 60, "a material after the restart")
    assert again.alive() and len(env.dead_letters("capture")) == 1
