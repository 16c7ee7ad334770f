"""The capture's crash promises, counted on the topic itself (the CRM's idempotent upsert would hide duplicates):
a crash between Kafka's acknowledgement and the position's commit re-sends that batch once and nothing else; a crash
during the initial snapshot starts the snapshot over and loses nothing."""

from __future__ import annotations

from collections import Counter

from connectors.common.avro import AvroDecoder, registry_client
from infra.simulators.kingdee.erp import bulk_insert_materials, insert_material
from tests.integration.harness import ChildProcess, IsolatedEnv, wait_for


def events(env: IsolatedEnv) -> list[dict]:
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    return [decoder.decode(v) for _, v in env.read_topic("kingdee.material") if v]


def ids(evts: list[dict]) -> Counter[int]:
    return Counter(e["after"]["FMATERIALID"] for e in evts if e["after"])


def crashing_capture(env: IsolatedEnv, failpoint: str) -> ChildProcess:
    child = ChildProcess("capture-crashing", ["capture"], {**env.env, "CDCHUB_FAILPOINTS": failpoint},
                         env.tmp / "capture-crashing.log").start()
    env.children.append(child)
    return child


def test_a_crash_after_kafka_acknowledged_a_batch_resends_that_batch_once(env: IsolatedEnv) -> None:
    warm = insert_material(env.kingdee, "8.01.0001", "喉罩", "3#")
    first = env.capture()
    wait_for(lambda: ids(events(env))[warm] == 1, 60, "the snapshot")
    first.stop()

    crashing = crashing_capture(env, "capture.batch_acked_by_kafka")
    batch = insert_material(env.kingdee, "8.01.0002", "面罩", "M")
    wait_for(lambda: not crashing.alive(), 60, "the capture dying at the failpoint")
    assert crashing.proc is not None and crashing.proc.returncode == 137
    assert ids(events(env))[batch] == 1, "Kafka has the batch; its position was never committed"

    env.capture()
    after = insert_material(env.kingdee, "8.01.0003", "吸痰管", "F12")
    wait_for(lambda: ids(events(env))[after] == 1, 60, "a change after the restart")
    counted = ids(events(env))
    assert counted == Counter({warm: 1, batch: 2, after: 1}), "the unacknowledged batch again, nothing else"
    copies = [e for e in events(env) if e["after"]["FMATERIALID"] == batch]
    assert copies[0]["source"]["lsn"] == copies[1]["source"]["lsn"], "same position: consumers skip the copy"
    assert copies[0]["after"] == copies[1]["after"]


def test_a_crash_during_the_initial_snapshot_starts_it_over_and_loses_nothing(env: IsolatedEnv) -> None:
    materials = bulk_insert_materials(env.kingdee, 60, prefix="8.02.")
    crashing = crashing_capture(env, "capture.snapshot_document_sent@25")
    wait_for(lambda: not crashing.alive(), 60, "the capture dying in the middle of its snapshot")
    assert crashing.proc is not None and crashing.proc.returncode == 137
    sent_before = ids(events(env))
    assert len(sent_before) <= 25

    capture = env.capture()
    wait_for(lambda: len(ids(events(env))) == 60, 60, "every material after the snapshot started over")
    later = insert_material(env.kingdee, "8.03.0001", "鼻氧管", "2m")
    wait_for(lambda: ids(events(env))[later] == 1, 60, "streaming after the snapshot")
    counted = ids(events(env))
    assert set(counted) == {*materials, later}
    assert all(counted[m] == 1 + sent_before[m] for m in materials), "the second snapshot sends each once more"
    assert "dropping and starting over" in capture.log()
