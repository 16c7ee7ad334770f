"""End-to-end latency of the materials path at a steady rate: Kingdee commit → record applied in the CRM simulator,
split at Kafka into the capture's part (commit → the change's Kafka record timestamp) and the flow's (that timestamp
→ applied).  Writers are ``material_writer``'s processes (one psycopg2 round trip a transaction, several
connections); commit times are the writers' clocks, applied times the simulator's, Kafka's the broker's — one
machine, one clock."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from infra.simulators.kingdee.erp import insert_material
from tests.bench.material_writer import SteadyWriters, template
from tests.bench.sim_writes import SimWrites
from tests.integration.harness import IsolatedEnv, wait_for


@dataclass
class Latency:
    sent: int
    write_s: float
    end_to_end_ms: list[float]
    capture_ms: list[float]
    flow_ms: list[float]

    @property
    def write_rate(self) -> float:
        return self.sent / self.write_s


def _ends(consumer: Consumer, topic: str) -> list[TopicPartition]:
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    return [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in meta.partitions]


def kafka_times(env: IsolatedEnv, starts: list[TopicPartition], keys: set[str]) -> dict[str, int]:
    """When each key's first record from ``starts`` on reached Kafka (record timestamp, ms)."""
    consumer = Consumer({"bootstrap.servers": env.settings.kafka.bootstrap_servers, "group.id": "bench-sink-lat",
                         "enable.auto.commit": False})
    ends = {p.partition: p.offset for p in _ends(consumer, starts[0].topic)}
    consumer.assign(starts)
    left = {p.partition for p in starts if ends[p.partition] > p.offset}
    seen: dict[str, int] = {}
    while left:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        key = (msg.key() or b"").decode()
        if key in keys:
            seen.setdefault(key, msg.timestamp()[1])
        partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
        if offset + 1 >= ends[partition]:
            left.discard(partition)
    consumer.close()
    return seen


def steady(env: IsolatedEnv, writes: SimWrites, rate: float, duration: float, writers: int,
           prefix: str = "8.03.") -> Latency:
    """``rate`` single-material transactions a second for ``duration`` s from ``writers`` connections, the capture
    and the materials flow already running; waits until the CRM has every one."""
    n = int(rate * duration)
    first = insert_material(env.kingdee, f"{prefix}template", "麻醉面罩", "成人 4#")  # the project's own rows
    tpl = template(env.kingdee, first)
    wait_for(lambda: writes.poll() and str(first) in writes.first_applied, 60, "the template material in the CRM")
    probe = Consumer({"bootstrap.servers": env.settings.kafka.bootstrap_servers, "group.id": "bench-sink-lat"})
    starts = _ends(probe, env.topic("kingdee.material"))
    probe.close()
    with SteadyWriters(env.settings.kingdee_db.dsn(), tpl, writers, n, rate, prefix) as steady:
        steady.go()
        begun, committed = steady.collect()
        wait_for(lambda: writes.poll() and all(k in writes.first_applied for k in committed), 120 + 3 * duration,
                 "the CRM to hold every material", 0.2)
    in_kafka = kafka_times(env, starts, set(committed))
    e2e = [writes.first_applied[k] - t * 1000 for k, t in committed.items()]
    capture = [in_kafka[k] - t * 1000 for k, t in committed.items() if k in in_kafka]
    flow = [float(writes.first_applied[k] - in_kafka[k]) for k in committed if k in in_kafka]
    return Latency(n, max(committed.values()) - begun, e2e, capture, flow)
