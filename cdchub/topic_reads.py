"""Reading chosen Kafka messages within a deadline, and saying what was left unread.

``cdchub trace`` reads a document's versions at the positions the sync ledger recorded for its writes (topic,
partition, offset: :func:`fetch`) instead of scanning whole topics.  What can only be found by scanning — dead
letters, related documents that name the traced one — is scanned within the same deadline and message budget
(:func:`scan`).  Whenever either stops early, :class:`Reads` holds a note saying what was not read, which the trace
prints and the console shows: a partial answer is never passed off as a whole one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from connectors.common.kafka import consumer as kafka_consumer
from connectors.settings import Settings

#: A gap between two wanted offsets of one partition larger than this is jumped (a new assignment) rather than read.
JUMP_AFTER = 50
Position = tuple[str, int, int]


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Reads:
    """The budget of one trace's reads (a deadline, a number of messages) and what they left out."""

    deadline: float
    max_messages: int
    read: int = 0
    notes: list[str] = field(default_factory=list)
    #: Topics read from their beginning (for tests and the notes; positions read exactly are not listed).
    scanned: list[str] = field(default_factory=list)

    @classmethod
    def within(cls, seconds: float, max_messages: int) -> Reads:
        return cls(time.monotonic() + max(0.0, seconds), max_messages)

    def left_s(self) -> float:
        return self.deadline - time.monotonic()

    def spent(self) -> str | None:
        """Why reading must stop now (None: it may go on)."""
        if self.left_s() <= 0:
            return "the deadline passed"
        if self.read >= self.max_messages:
            return f"{self.max_messages:,} messages read, the most a trace reads"
        return None


def _consumer(settings: Settings) -> Consumer:
    return kafka_consumer(settings.kafka, f"cdchub-trace-{uuid.uuid4().hex}", **{
        "enable.auto.commit": False, "enable.partition.eof": True, "auto.offset.reset": "earliest"})


def _timeout(reads: Reads, most: float) -> float:
    return max(0.05, min(most, reads.left_s()))


def fetch(settings: Settings, positions: Iterable[Position], reads: Reads) -> dict[Position, Message | None]:
    """The messages at exactly these positions; None for a position the topic no longer holds (compacted, or
    removed by retention).  Positions not reached before the budget is spent are left out and noted."""
    wanted = sorted(set(positions))
    out: dict[Position, Message | None] = {}
    if not wanted:
        return out
    by_partition: dict[tuple[str, int], list[int]] = {}
    for topic, partition, offset in wanted:
        by_partition.setdefault((topic, partition), []).append(offset)
    consumer = _consumer(settings)
    unread = 0
    try:
        for (topic, partition), offsets in by_partition.items():
            why = reads.spent()
            if why is not None:
                unread += len(offsets)
                continue
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           timeout=_timeout(reads, 10))
            except KafkaException as exc:
                reads.notes.append(f"{topic}[{partition}]: not readable ({exc.args[0]}); "
                                   f"{len(offsets)} recorded version(s) not shown")
                continue
            todo = [o for o in offsets if low <= o < high]
            out.update({(topic, partition, o): None for o in offsets if not low <= o < high})
            unread += _read_offsets(consumer, topic, partition, todo, reads, out)
    finally:
        consumer.close()
    if unread:
        reads.notes.append(f"{unread} of {len(wanted)} recorded positions not read: {reads.spent() or 'stopped'}")
    return out


def _read_offsets(consumer: Consumer, topic: str, partition: int, todo: list[int], reads: Reads,
                  out: dict[Position, Message | None]) -> int:
    """Read ``todo`` (sorted offsets of one partition) into ``out``; returns how many were left unread."""
    i = 0
    if todo:
        consumer.assign([TopicPartition(topic, partition, todo[0])])
    while i < len(todo):
        if reads.spent() is not None:
            return len(todo) - i
        msg = consumer.poll(_timeout(reads, 0.5))
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:  # nothing more: the rest was compacted away
                out.update({(topic, partition, o): None for o in todo[i:]})
                return 0
            continue
        offset = int(msg.offset() or 0)
        while i < len(todo) and todo[i] < offset:  # compacted away
            out[(topic, partition, todo[i])] = None
            i += 1
        if i < len(todo) and todo[i] == offset:
            out[(topic, partition, offset)] = Message(topic, partition, offset, msg.key(), msg.value())
            reads.read += 1
            i += 1
        if i < len(todo) and todo[i] > offset + JUMP_AFTER:
            consumer.assign([TopicPartition(topic, partition, todo[i])])
    consumer.unassign()
    return 0


def scan(settings: Settings, topics: list[str], reads: Reads, what: str) -> list[Message]:
    """Every message of ``topics`` from their beginning to their end as of now, within the budget; when it stops
    early, a note says how many messages of ``what`` were not read."""
    if not topics:
        return []
    why = reads.spent()
    if why is not None:
        reads.notes.append(f"{what}: not read ({why})")
        return []
    reads.scanned += topics
    consumer = _consumer(settings)
    found: list[Message] = []
    try:
        remaining: dict[tuple[str, int], int] = {}
        starts: list[TopicPartition] = []
        total = 0
        for topic in topics:
            try:
                meta = consumer.list_topics(topic, timeout=_timeout(reads, 10)).topics.get(topic)
                if meta is None or meta.error is not None:
                    continue
                for p in meta.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                               timeout=_timeout(reads, 10))
                    if high > low:
                        remaining[(topic, p)] = high
                        starts.append(TopicPartition(topic, p, low))
                        total += high - low
            except KafkaException as exc:
                reads.notes.append(f"{what}: {topic} not read ({exc.args[0]})")
        if starts:
            consumer.assign(starts)
        while remaining and reads.spent() is None:
            msg = consumer.poll(_timeout(reads, 0.5))
            if msg is None:
                continue
            tp = (str(msg.topic()), int(msg.partition() or 0))
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.pop(tp, None)
                continue
            offset = int(msg.offset() or 0)
            if offset >= remaining.get(tp, 0):
                remaining.pop(tp, None)
                continue
            found.append(Message(tp[0], tp[1], offset, msg.key(), msg.value()))
            reads.read += 1
            if offset + 1 >= remaining[tp]:
                remaining.pop(tp)
        if remaining:
            left = max(0, total - len(found))
            reads.notes.append(f"{what}: stopped after {len(found):,} messages ({reads.spent() or 'stopped'}); "
                               f"up to {left:,} more on {', '.join(sorted({t for t, _ in remaining}))} not read")
    finally:
        consumer.close()
    return found
