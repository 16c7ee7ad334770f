"""``cdchub trace`` reads a document's versions at the positions the ledger recorded, not by scanning its topic, and
says so when it had to stop early (real stack)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Producer

import cdchub.trace as trace_module
from cdchub import topic_reads
from cdchub.topic_reads import Message, Reads
from cdchub.trace import trace
from core.ledger import open_engine
from infra.simulators.kingdee.erp import insert_material, update_material
from tests.integration.harness import IsolatedEnv, wait_for

#: Messages of other documents put on the material topic: scanning them would take the trace past its deadline.
FILLER = 30_000


def test_a_trace_reads_the_recorded_positions_and_says_when_it_stops_early(
        env: IsolatedEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    mid = insert_material(env.kingdee, "1.32.0001", "一次性使用喉罩", "3#")
    env.capture()
    flow = env.flow("materials")
    wait_for(lambda: str(mid) in env.zoho.by_kingdee_id(), 60, "the material in the CRM")
    update_material(env.kingdee, mid, name="一次性使用喉罩（加强型）")
    wait_for(lambda: env.zoho.by_kingdee_id()[str(mid)]["Product_Name"] == "一次性使用喉罩（加强型）", 30, "the edit")
    flow.stop()
    producer = Producer(env.settings.kafka.client_config())
    for i in range(FILLER):  # not Avro and not ours: a scan would read and decode-skip every one of them
        producer.produce(env.topic("kingdee.material"), key=f"filler-{i}".encode(), value=b"x" * 200)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(30)

    scanned: list[str] = []
    real_scan = topic_reads.scan

    def spy(settings: Any, topics: list[str], reads: Reads, what: str) -> list[Message]:
        scanned.extend(topics)
        return real_scan(settings, topics, reads, what)

    monkeypatch.setattr(trace_module, "scan", spy)
    engine = open_engine(env.settings.ledger_database_url())
    found = trace(env.settings, engine, "1.32.0001", deadline_s=5.0, max_messages=1_000)
    captured = [h for h in found.hops if h.what.startswith("captured")]
    assert [h.what for h in captured] == ["captured (r)", "captured (u)"], found.timeline()
    assert [h.detail["name"] for h in captured] == ["一次性使用喉罩", "一次性使用喉罩（加强型）"]
    assert all(h.detail["topic"].startswith(env.topic("kingdee.material") + "[") for h in captured)
    assert env.topic("kingdee.material") not in scanned, "read at its positions, never scanned"
    assert not found.notes, found.notes
    assert [h.what for h in found.hops if h.what.startswith("materials: synced")] == [
        "materials: synced (insert)", "materials: synced (update)"]

    # no time at all: nothing read, and the trace says so instead of passing for whole
    cut = trace(env.settings, engine, "1.32.0001", deadline_s=0.0)
    assert cut.notes and any("recorded positions not read: the deadline passed" in n for n in cut.notes), cut.notes
    assert "incomplete: " in cut.timeline() and '"incomplete": [' in cut.to_json()
