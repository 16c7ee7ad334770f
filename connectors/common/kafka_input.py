"""Kafka topics as a Bytewax input that is cheap at idle: one consumer per flow and worker, idle polls spaced out.

Bytewax's ``KafkaSource`` opens a consumer per partition and polls each with a 1 ms wait in a loop; fifteen flows ×
three partitions of that were most of cdchub's idle CPU and of the broker's.  :class:`SharedKafkaSource` keeps
Bytewax's model — every Kafka partition is a Bytewax partition whose state is the next offset, resumed from the
recovery store (the same partition names and state as ``KafkaSource``, so either can resume the other) — but:

- the partitions a worker holds for one flow share **one consumer** (``incremental_assign``); a poll takes whatever
  the consumer has and hands each partition its own messages;
- a partition that found nothing asks to be woken later (``next_awake``: 5 ms, doubling to ``IDLE_WAIT_MAX``), so an
  idle worker sleeps instead of spinning; data never waits longer than that after a quiet spell;
- the broker holds idle fetches (``fetch.wait.max.ms`` 500 ms) instead of answering empty ones 50 times a second;
- each flow **commits** its positions (the recovery snapshot's offsets, every epoch) to the consumer group
  ``cdchub.<flow>``: standard tools (``kafka-consumer-groups.sh --describe``) show its lag.  Recovery stays the
  authority: a restart resumes from the recovery store, never from the group.

Delivery: at-least-once, as Bytewax's own source (a resume replays from the last snapshot).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka.admin import AdminClient

from connectors.common.health import HEALTH

log = logging.getLogger(__name__)

IDLE_WAIT_FIRST = timedelta(milliseconds=5)
IDLE_WAIT_MAX = timedelta(milliseconds=100)
CONSUMER_CONFIG = {
    "enable.auto.commit": "false",
    "fetch.wait.max.ms": "500",
    "fetch.min.bytes": "1",
    "session.timeout.ms": "10000",
    "queued.max.messages.kbytes": "16384",
}

Message = KafkaSourceMessage[bytes | None, bytes | None] | KafkaError[bytes | None, bytes | None]


class SharedConsumer:
    """One consumer for the partitions one flow reads on one worker; hands each partition its messages."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.consumer = Consumer(config)
        self.buffers: dict[tuple[str, int], deque[Message]] = {}
        self.positions: dict[tuple[str, int], int] = {}
        self.batch_size = 500

    def assign(self, topic: str, partition: int, offset: int) -> None:
        self.buffers[(topic, partition)] = deque()
        self.consumer.incremental_assign([TopicPartition(topic, partition, offset)])

    def take(self, topic: str, partition: int, limit: int) -> list[Message]:
        buffer = self.buffers[(topic, partition)]
        if not buffer:
            self._fill()
        taken: list[Message] = []
        while buffer and len(taken) < limit:
            taken.append(buffer.popleft())
        return taken

    def _fill(self) -> None:
        for msg in self.consumer.consume(self.batch_size * max(1, len(self.buffers)), 0):
            error = msg.error()
            source = KafkaSourceMessage(key=msg.key(), value=msg.value(), topic=msg.topic(),
                                        headers=msg.headers() or [],  # type: ignore[arg-type]
                                        latency=msg.latency(), offset=msg.offset(), partition=msg.partition(),
                                        timestamp=msg.timestamp())
            buffer = self.buffers.get((str(msg.topic()), int(msg.partition() or 0)))
            if buffer is None:
                continue  # not ours (any more)
            if error is None:
                buffer.append(source)
            elif error.code() != ConfluentKafkaError._PARTITION_EOF:
                buffer.append(KafkaError(error, source))

    def commit(self, topic: str, partition: int, offset: int) -> None:
        """Record a position for monitoring (committed asynchronously, at most once per new position)."""
        if self.positions.get((topic, partition)) == offset or offset < 0:
            return
        self.positions[(topic, partition)] = offset
        try:
            self.consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=True)
        except Exception as exc:  # monitoring only: never a reason to stop reading
            log.debug("could not commit %s[%d]@%d: %s", topic, partition, offset, exc)


class _Consumers:
    """The shared consumers of this process: one per (flow, worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, int], SharedConsumer] = {}

    def get(self, group: str, config: dict[str, Any]) -> SharedConsumer:
        key = (group, threading.get_ident())
        with self._lock:
            shared = self._by_key.get(key)
            if shared is None:
                shared = self._by_key[key] = SharedConsumer({**config, "group.id": group})
            return shared


CONSUMERS = _Consumers()


class _Partition(StatefulSourcePartition[Message, int]):
    def __init__(self, shared: SharedConsumer, topic: str, partition: int, offset: int, batch_size: int,
                 flow: str) -> None:
        self.shared = shared
        self.flow = flow
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.batch_size = batch_size
        self.idle = timedelta(0)
        self._awake: datetime | None = None
        shared.assign(topic, partition, offset)

    def next_batch(self) -> list[Message]:
        batch = self.shared.take(self.topic, self.partition, self.batch_size)
        if batch:
            HEALTH.read(self.flow, len(batch))
            last = batch[-1].msg if isinstance(batch[-1], KafkaError) else batch[-1]
            self.offset = (last.offset if last.offset is not None else self.offset) + 1
            self.idle = timedelta(0)
            self._awake = None
        else:
            self.idle = min(IDLE_WAIT_MAX, max(IDLE_WAIT_FIRST, self.idle * 2))
            self._awake = datetime.now(UTC) + self.idle
        return batch

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        self.shared.commit(self.topic, self.partition, self.offset)
        return self.offset

    def close(self) -> None:
        pass  # the consumer is shared by the flow's other partitions on this worker; it ends with the process


class SharedKafkaSource(FixedPartitionedSource[Message, int]):
    """``topics`` of ``brokers`` from their beginning (or the recovery store's offsets), read by one consumer per
    worker for ``flow``, committed to the group ``cdchub.<flow>`` for monitoring (see the module doc)."""

    def __init__(self, brokers: str, topics: Iterable[str], flow: str, batch_size: int = 500,
                 config: dict[str, str] | None = None) -> None:
        self.brokers = brokers
        self.topics = list(topics)
        self.flow = flow
        self.group = f"cdchub.{flow}"
        self.batch_size = batch_size
        self.config = {**CONSUMER_CONFIG, **(config or {}), "bootstrap.servers": brokers}

    def list_parts(self) -> list[str]:
        admin = AdminClient({k: v for k, v in self.config.items() if k in ("bootstrap.servers",)
                             or k.startswith(("security.", "sasl.", "ssl."))})
        parts: list[str] = []
        for topic in self.topics:
            meta = admin.list_topics(topic, timeout=10).topics[topic]
            if meta.error is not None:
                raise RuntimeError(f"error listing partitions of Kafka topic {topic!r}: {meta.error.str()}")
            parts += [f"{index}-{topic}" for index in meta.partitions]
        return parts

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Partition:
        index, topic = for_part.split("-", 1)
        shared = CONSUMERS.get(self.group, self.config)
        shared.batch_size = self.batch_size
        return _Partition(shared, topic, int(index), OFFSET_BEGINNING if resume_state is None else resume_state,
                          self.batch_size, self.flow)
