"""Dead-letter administration: list, show and replay dead letters (``cdchub dlq …``).

A dead letter names the record's source position (topic, partition, offset).  **Replay** re-submits the original
message after a fix (mapping changed, target fixed): it reads the message at that position and produces it again
to the same topic, so the flow processes it like any change.  Before that it clears the ledger's record of the
failure for that key, so the same version is tried again — unless a newer version of the record was applied since,
in which case the letter is *superseded* and nothing is replayed.  Replays are recorded in the ledger database
(``dead_letter_replays``), so a letter is replayed once; ``--again`` replays it anyway.

Not replayable: letters without a source message (``capture`` letters — fix the row in Kingdee and its next change
flows; ``policy`` letters — deliberate reports, not failures).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import BigInteger, Column, Integer, String, Table, select
from sqlalchemy.engine import Engine

from connectors.common.kafka import consumer as kafka_consumer
from connectors.common.kafka import producer as kafka_producer
from connectors.settings import Settings
from core.ledger import FAILED, metadata, sync_ledger

dead_letter_replays = Table(
    "dead_letter_replays",
    metadata,
    Column("dlq_topic", String(255), primary_key=True),
    Column("dlq_offset", BigInteger, primary_key=True),
    Column("outcome", String(32), nullable=False),
    Column("replayed_at_ms", BigInteger, nullable=False),
    Column("new_offset", BigInteger),
    Column("new_partition", Integer),
)

NOT_REPLAYABLE_STAGES = {"policy"}


@dataclass(frozen=True)
class Letter:
    dlq_topic: str
    dlq_offset: int
    body: dict[str, Any]

    @property
    def flow(self) -> str:
        return str(self.body.get("flow"))

    @property
    def source(self) -> dict[str, Any]:
        return self.body.get("source") or {}

    def summary(self) -> str:
        src = self.source
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((self.body.get("time_ms") or 0) / 1000))
        return (f"{self.dlq_offset:>6}  {when}  {self.flow:<22} {self.body.get('stage', ''):<8} "
                f"key={src.get('key')}  {self.body.get('error_class')}: {str(self.body.get('error'))[:100]}")


def _consumer(settings: Settings) -> Consumer:
    return kafka_consumer(settings.kafka, f"dlq-{uuid.uuid4().hex}",
                    **{"enable.auto.commit": False, "auto.offset.reset": "earliest"})


def dlq_topics(settings: Settings, flow: str | None = None) -> list[str]:
    consumer = _consumer(settings)
    prefix = settings.kafka.topic("cdchub.dlq.")
    topics = sorted(t for t in consumer.list_topics(timeout=10).topics if t.startswith(prefix))
    consumer.close()
    return [t for t in topics if flow is None or t == prefix + flow]


def topic_size(settings: Settings, topic: str) -> int:
    consumer = _consumer(settings)
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    total = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions)
    consumer.close()
    return total


def read_topic(settings: Settings, topic: str) -> Iterator[tuple[int, int, Any, Any]]:
    consumer = _consumer(settings)
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
    remaining = {p: end for p, end in ends.items() if end > 0}
    consumer.assign([TopicPartition(topic, p, 0) for p in remaining])
    deadline = time.monotonic() + 30
    while remaining and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
        yield partition, offset, msg.key(), msg.value()
        if offset + 1 >= remaining.get(partition, 0):
            remaining.pop(partition, None)
    consumer.close()


def letters(settings: Settings, flow: str | None = None, reason: str | None = None) -> list[Letter]:
    out = []
    for topic in dlq_topics(settings, flow):
        for _, offset, _, value in read_topic(settings, topic):
            try:
                body = json.loads(value)
            except (TypeError, ValueError):
                continue
            letter = Letter(topic, offset, body)
            text = f"{body.get('error_class')} {body.get('error')}"
            if reason is None or reason.lower() in text.lower():
                out.append(letter)
    return out


def replayed(engine: Engine) -> dict[tuple[str, int], str]:
    metadata.create_all(engine, tables=[dead_letter_replays])
    with engine.connect() as conn:
        return {(r.dlq_topic, r.dlq_offset): r.outcome for r in conn.execute(select(dead_letter_replays))}


def _message_at(settings: Settings, topic: str, partition: int, offset: int) -> tuple[Any, Any] | None:
    consumer = _consumer(settings)
    consumer.assign([TopicPartition(topic, partition, offset)])
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            return (msg.key(), msg.value()) if msg.offset() == offset else None  # compacted away: superseded
        return None
    finally:
        consumer.close()


def delivered_to(sink: list[tuple[Any, Any]]) -> Any:
    def on_delivery(err: Any, msg: Any) -> None:
        sink.append((err, msg))

    return on_delivery


def replay(settings: Settings, engine: Engine, chosen: list[Letter], *, dry_run: bool = False,
           again: bool = False) -> list[tuple[Letter, str]]:
    """Replay the chosen letters; returns (letter, outcome) with outcome replayed / superseded / skipped: …"""
    done = replayed(engine)
    producer = kafka_producer(settings.kafka)
    results: list[tuple[Letter, str]] = []
    t = sync_ledger.c
    for letter in chosen:
        src = letter.source
        if (letter.dlq_topic, letter.dlq_offset) in done and not again:
            results.append((letter, f"skipped: already {done[(letter.dlq_topic, letter.dlq_offset)]}"))
            continue
        if letter.body.get("stage") in NOT_REPLAYABLE_STAGES or src.get("offset") is None or not src.get("topic") \
                or letter.flow == "capture":
            results.append((letter, "skipped: not replayable (no source message)"))
            continue
        original = _message_at(settings, src["topic"], int(src.get("partition") or 0), int(src["offset"]))
        key = str(src.get("key"))
        with engine.connect() as conn:
            newer = conn.execute(select(t.source_version).where(
                t.flow == letter.flow, t.source_key == key, t.status != FAILED)).first()
        if original is None:
            outcome = "superseded"
        elif dry_run:
            outcome = "would replay" + (f" (ledger holds version {newer[0]})" if newer else "")
        else:
            with engine.begin() as conn:  # the same version may be tried again
                conn.execute(sync_ledger.delete().where(t.flow == letter.flow, t.source_key == key,
                                                        t.status == FAILED))
            delivered: list[tuple[Any, Any]] = []
            producer.produce(src["topic"], key=original[0], value=original[1], on_delivery=delivered_to(delivered))
            producer.flush(30)
            err, msg = delivered[0] if delivered else ("not delivered", None)
            if err is not None or msg is None:
                outcome = f"failed: {err}"
            else:
                outcome = "replayed"
                with engine.begin() as conn:
                    conn.execute(dead_letter_replays.delete().where(
                        dead_letter_replays.c.dlq_topic == letter.dlq_topic,
                        dead_letter_replays.c.dlq_offset == letter.dlq_offset))
                    conn.execute(dead_letter_replays.insert().values(
                        dlq_topic=letter.dlq_topic, dlq_offset=letter.dlq_offset, outcome=outcome,
                        replayed_at_ms=int(time.time() * 1000), new_offset=msg.offset(),
                        new_partition=msg.partition()))
        results.append((letter, outcome))
    return results
