"""Per-flow status for ``cdchub status``: what each flow applied, how far behind its topic it is, its errors.

Lag is the number of messages on the flow's source topic after the last one it applied or dead-lettered (from the
ledger's Kafka positions, the dead letters' source positions and the topic's end offsets). Messages it skipped as
duplicates or that are not its business (drafts, tombstones) count too, so a lag that stays put while nothing
changes is normal; one that grows is not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from cdchub.dead_letter_admin import letters
from cdchub.ledger import sync_ledger
from cdchub.settings import Settings


@dataclass
class FlowStatus:
    flow: str
    topic: str | None
    synced: int
    failed: int
    per_minute: int
    last_applied_ms: int | None
    lag: int | None
    dead_letters: int

    def line(self) -> str:
        last = "-" if not self.last_applied_ms else time.strftime("%H:%M:%S",
                                                                  time.localtime(self.last_applied_ms / 1000))
        lag = "-" if self.lag is None else str(self.lag)
        return (f"{self.flow:<24} synced {self.synced:>6}  failed {self.failed:>4}  last {last}  "
                f"{self.per_minute:>5}/min  lag {lag:>6}  dead letters {self.dead_letters}")


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}


def flow_statuses(settings: Settings, engine: Engine) -> list[FlowStatus]:
    t = sync_ledger.c
    since = int(time.time() * 1000) - 60_000
    with engine.connect() as conn:
        flows = conn.execute(select(
            t.flow, func.sum((t.status == "synced").cast(sync_ledger.c.attempts.type)),
            func.sum((t.status == "failed").cast(sync_ledger.c.attempts.type)),
            func.sum((t.applied_at_ms >= since).cast(sync_ledger.c.attempts.type)), func.max(t.applied_at_ms),
            func.max(t.kafka_topic),
        ).group_by(t.flow)).all()
        positions = conn.execute(select(t.flow, t.kafka_topic, t.kafka_partition, func.max(t.kafka_offset))
                                 .group_by(t.flow, t.kafka_topic, t.kafka_partition)).all()
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "cdchub-status"})
    out = []
    try:
        for flow, synced, failed, recent, last, topic in flows:
            lag = None
            if topic:
                ends = _end_offsets(consumer, topic)
                done = {p: o for f, tp, p, o in positions if f == flow and tp == topic and p is not None}
                for letter in letters(settings, flow):  # dead-lettered messages were handled too
                    src = letter.source
                    if src.get("topic") == topic and src.get("offset") is not None:
                        part = int(src.get("partition") or 0)
                        done[part] = max(done.get(part, -1), int(src["offset"]))
                lag = sum(max(0, end - (done.get(p, -1) + 1)) for p, end in ends.items())
            dlq = _end_offsets(consumer, settings.kafka.topic(f"cdchub.dlq.{flow}"))
            out.append(FlowStatus(flow, topic, int(synced or 0), int(failed or 0), int(recent or 0), last, lag,
                                  sum(dlq.values())))
    finally:
        consumer.close()
    return sorted(out, key=lambda s: s.flow)
