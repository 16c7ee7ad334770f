"""The workloads ``make bench-debezium`` runs against one capture (cdchub's or Debezium's), alone on its database.

Materials are written as the project writes them (``infra.simulators.kingdee.erp``: header, ``_L`` texts and
``T_BD_MATERIALBASE``, 3 rows each).  "In Kafka" is the broker's append time: the capture's topics are switched to
``message.timestamp.type=LogAppendTime`` before the workloads, so how fast the bench reads them does not count.

1. ``bulk_insert``: n materials in one transaction; rows/s from COMMIT returning to the last event's append time.
2. ``bulk_update``: one column (``FMODIFYDATE``) of those materials' header rows in one transaction; rows/s likewise.
3. ``steady_latency``: single-material transactions at a fixed rate from several writer processes
   (tests/bench/material_writer.py: each records its commit times after COMMIT returns, by material id); latency =
   the material's events' append time (the last of them where a capture writes one event per row) − commit time.

Each reports the capture process's CPU seconds over the workload and its peak RSS during it (VmHWM reset first).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from sqlalchemy import update

from connectors.kingdee import models as m
from infra.simulators.kingdee.erp import bulk_insert_materials, insert_material
from tests.bench.bench_materials import percentiles, topic_size
from tests.bench.material_writer import SteadyWriters, template
from tests.bench.process_meter import cpu_seconds, peak_rss_mb, reset_peak_rss
from tests.integration.harness import IsolatedEnv, wait_for

LOG_APPEND_TIME = "LogAppendTime"


@dataclass
class CaptureUnderTest:
    """One capture running on its own isolated environment, as the workloads see it."""

    name: str
    env: IsolatedEnv
    pid: int
    #: Its topics for materials, as named after the environment's prefix (``env.topic(name)``).
    topics: list[str]
    #: Events one inserted material makes on them (1 document, or 1 per row).
    events_per_insert: int
    #: The material id a consumed message is about (None: not a material's event).
    material_of: Callable[[Message], str | None]

    def full_topics(self) -> list[str]:
        return [self.env.topic(t) for t in self.topics]

    def events(self) -> int:
        return sum(topic_size(self.env, t) for t in self.topics)


@dataclass
class Measure:
    rows: int
    seconds: float
    cpu_s: float
    rss_mb: float | None
    latency_ms: dict[str, float] = field(default_factory=dict)
    write_rate: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def append_time_on(capture: CaptureUnderTest) -> None:
    """Kafka stamps each record with its append time on the capture's topics (both sides alike)."""
    admin = AdminClient({"bootstrap.servers": capture.env.settings.kafka.bootstrap_servers})
    changes = admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("message.timestamp.type", LOG_APPEND_TIME, incremental_operation=AlterConfigOpType.SET)])
        for t in capture.full_topics()])
    for fut in changes.values():
        fut.result(30)


def last_append_s(capture: CaptureUnderTest) -> float:
    """The append time of the newest record on the capture's topics (epoch seconds)."""
    consumer = Consumer({"bootstrap.servers": capture.env.settings.kafka.bootstrap_servers,
                         "group.id": "bench-debezium", "enable.auto.commit": False})
    newest = 0
    try:
        for topic in capture.full_topics():
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                if high == 0:
                    continue
                consumer.assign([TopicPartition(topic, p, high - 1)])
                newest = max(newest, _last_record(consumer).timestamp()[1])
    finally:
        consumer.close()
    return newest / 1000


def _last_record(consumer: Consumer, timeout_s: float = 30.0) -> Message:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            return msg
    raise AssertionError(f"no record read in {timeout_s:.0f}s from {consumer.assignment()}")


def _measured(capture: CaptureUnderTest, rows: int, events: int, write: Callable[[], None],
              timeout_s: float) -> Measure:
    """Run ``write`` (which commits), wait for ``events`` more events, and measure from COMMIT returning."""
    base = capture.events()
    reset_peak_rss(capture.pid)
    cpu0 = cpu_seconds(capture.pid)
    write()
    committed = time.time()
    wait_for(lambda: capture.events() >= base + events, timeout_s, f"{capture.name} to carry {events} events", 0.05)
    cpu = cpu_seconds(capture.pid) - cpu0
    return Measure(rows, last_append_s(capture) - committed, cpu, peak_rss_mb(capture.pid))


def bulk_insert(capture: CaptureUnderTest, n: int, prefix: str) -> tuple[Measure, list[int]]:
    ids: list[int] = []
    measure = _measured(capture, 3 * n, capture.events_per_insert * n,
                        lambda: ids.extend(bulk_insert_materials(capture.env.kingdee, n, prefix=prefix)), 900)
    return measure, ids


def bulk_update(capture: CaptureUnderTest, ids: list[int]) -> Measure:
    def write() -> None:
        t = m.T_BD_MATERIAL
        with capture.env.kingdee.begin() as conn:
            conn.execute(update(t).where(t.c.FMATERIALID.in_(ids)).values(FMODIFYDATE=m.china_now()))

    return _measured(capture, len(ids), len(ids), write, 900)


def volume(capture: CaptureUnderTest, rows: int, per_tx: int, prefix: str) -> Measure:
    """``rows`` changed rows through the capture, as transactions of ``per_tx`` materials written back to back:
    rows/s from the first commit to the last event, and the peak RSS over all of it (memory must not grow with
    the volume)."""
    batches = max(1, -(-rows // (3 * per_tx)))
    base = capture.events()
    reset_peak_rss(capture.pid)
    cpu0 = cpu_seconds(capture.pid)
    started = time.time()
    for i in range(batches):
        bulk_insert_materials(capture.env.kingdee, per_tx, prefix=f"{prefix}{i:04d}.")
    events = capture.events_per_insert * per_tx * batches
    wait_for(lambda: capture.events() >= base + events, 3600, f"{capture.name} to carry {events} events", 0.5)
    cpu = cpu_seconds(capture.pid) - cpu0
    return Measure(3 * per_tx * batches, last_append_s(capture) - started, cpu, peak_rss_mb(capture.pid))


class Arrivals(threading.Thread):
    """When each material's events were all appended to the capture's topics (the newest append time)."""

    def __init__(self, capture: CaptureUnderTest) -> None:
        super().__init__(daemon=True)
        self.capture = capture
        self.done: dict[str, float] = {}
        self.seen: dict[str, int] = {}
        self.stop_event = threading.Event()
        self.consumer = Consumer({"bootstrap.servers": capture.env.settings.kafka.bootstrap_servers,
                                  "group.id": f"bench-debezium-{time.time_ns()}", "enable.auto.commit": False,
                                  "fetch.wait.max.ms": "10"})
        parts = []
        for topic in capture.full_topics():
            meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
            parts += [TopicPartition(topic, p, self.consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=10)[1]) for p in meta.partitions]
        self.consumer.assign(parts)
        self.latest: dict[str, float] = {}

    def run(self) -> None:
        while not self.stop_event.is_set():
            msg = self.consumer.poll(0.1)
            if msg is None or msg.error() or msg.value() is None:
                continue
            mid = self.capture.material_of(msg)
            if mid is None:
                continue
            at = msg.timestamp()[1] / 1000
            self.latest[mid] = max(self.latest.get(mid, 0.0), at)
            self.seen[mid] = self.seen.get(mid, 0) + 1
            if self.seen[mid] == self.capture.events_per_insert:
                self.done[mid] = self.latest[mid]
        self.consumer.close()


def steady_latency(capture: CaptureUnderTest, rate: float, duration: float, writers: int, prefix: str) -> Measure:
    n = int(rate * duration)
    first = insert_material(capture.env.kingdee, f"{prefix}template", "麻醉面罩", "成人 4#")  # the project's rows
    tpl = template(capture.env.kingdee, first)
    arrivals = Arrivals(capture)
    arrivals.start()
    try:
        with SteadyWriters(capture.env.settings.kingdee_db.dsn(), tpl, writers, n, rate, prefix) as steady:
            steady.go()
            reset_peak_rss(capture.pid)
            cpu0 = cpu_seconds(capture.pid)
            begun, committed = steady.collect()
            wait_for(lambda: all(k in arrivals.done for k in committed), 120 + 3 * duration,
                     f"{capture.name} to carry every material", 0.2)
            cpu = cpu_seconds(capture.pid) - cpu0
    finally:
        arrivals.stop_event.set()
    arrivals.join(10)
    write_s = max(committed.values()) - begun
    lat = percentiles([(arrivals.done[k] - t) * 1000 for k, t in committed.items()])
    return Measure(3 * n, write_s, cpu, peak_rss_mb(capture.pid), lat, n / write_s)
