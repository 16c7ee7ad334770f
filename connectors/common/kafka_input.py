"""Kafka topics as a Bytewax input that costs next to nothing at idle and still reacts at once to new data.

Bytewax's ``KafkaSource`` opens a consumer per partition and polls each with a 1 ms wait in a loop; fifteen flows ×
three partitions of that were most of cdchub's idle CPU and of the broker's.  :class:`SharedKafkaSource` keeps
Bytewax's model — every Kafka partition is a Bytewax partition whose state is the next offset, resumed from the
recovery store (the same partition names and state as ``KafkaSource``, so either can resume the other) — but:

- every partition a **worker** holds, of every flow of its dataflow, is read by **one consumer** of that worker
  (``incremental_assign``); a poll takes whatever the consumer has and hands each partition its own messages;
- when nothing at all has arrived, the worker's first partition (its *leader*) waits inside the consumer for up to
  ``IDLE_WAIT`` — librdkafka wakes it the moment a message arrives for any partition of the worker — while the other
  partitions only look at their buffers.  So an idle worker makes a handful of loops a second instead of thousands,
  and a message is handed on as soon as it arrives.  A step that must run sooner (a delivery step with calls in
  flight or commands due, ``delivery.py``) says when through :func:`wake_by`, and the wait ends then — otherwise
  the worker's timers would run up to ``IDLE_WAIT`` late (a pipelined sink's answers collected 250 ms late);
- the broker holds idle fetches (``fetch.wait.max.ms`` 500 ms) instead of answering empty ones 50 times a second;
- each flow's positions (the recovery snapshot's offsets) are **committed** every ``COMMIT_EVERY_S`` to the consumer
  group ``cdchub.<flow>``, so standard tools (``kafka-consumer-groups.sh --describe``) show its lag.  Recovery stays
  the authority: a restart resumes from the recovery store, never from the group.

A second flow of the same dataflow reading a topic partition the worker's consumer already reads gets a consumer
of its own, polled without waiting, and backs off through ``next_awake`` (5 ms doubling to 100 ms) when idle.

Delivery: at-least-once, as Bytewax's own source (a resume replays from the last snapshot).

**Catching up.**  Each partition notes the end it had when it started here (its high watermark): until the flow's
partitions read by this process have all reached theirs, :func:`catching_up` says so.  A sum over documents of
several partitions (an order's receipts, a material's stock) is complete only once every partition was read that
far, so its delivery step holds its writes meanwhile (``delivery.py``), and ``settle_s`` longer: the last messages
read are still on their way, and a step between may keep a total back (a material's stock is written at most once
a second).  So a replay, even from scratch without recovery, never writes a partial total.  The answer is this
process's: in a cluster of several processes, each holds until the partitions it reads have caught up.

Every Bytewax Kafka connector of the project is made here from ``KafkaSettings`` —
:meth:`SharedKafkaSource.from_settings`, :func:`kafka_source` and :func:`kafka_sink` (Bytewax's own, for replays and
tests) — so the security settings and their secrets reach each consumer, producer and admin client they open;
listing partitions checks the connection first, so bad credentials end in a one-line ``KafkaAuthenticationFailed``
instead of Bytewax's endless wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSink, KafkaSource, KafkaSourceMessage
from bytewax.connectors.kafka import _KafkaSinkPartition as KafkaSinkPartition
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka.admin import AdminClient

from connectors.common.health import HEALTH
from connectors.common.kafka import CONNECTION_KEYS, LIBRDKAFKA, bytewax_brokers, bytewax_config, connect_admin
from core.settings import KafkaSettings

log = logging.getLogger(__name__)

#: How long an idle worker's leader waits in the consumer for new data.
IDLE_WAIT_S = 0.25
_wake_at = 0.0


def wake_by(at: float) -> None:
    """A step of this process wants to run by ``at`` (epoch s): an idle leader waits in the consumer no longer."""
    global _wake_at
    now = time.time()
    if _wake_at < now or at < _wake_at:
        _wake_at = at


def idle_wait_s() -> float:
    """How long an idle leader may wait in the consumer now: ``IDLE_WAIT_S``, or less if a step asked to run
    sooner (a request older than ``IDLE_WAIT_S`` is stale: whoever made it ran meanwhile)."""
    now = time.time()
    if _wake_at > now - IDLE_WAIT_S:
        return min(IDLE_WAIT_S, max(0.0, _wake_at - now))
    return IDLE_WAIT_S


#: A flow stops reading while its delivery steps in this process hold this many commands (see :func:`backlog`).
HOLD_ABOVE = 2000
_backlogs: dict[str, dict[int, int]] = {}


def backlog(flow: str, owner: int, pending: int) -> None:
    """How many commands a delivery step (``owner``) of ``flow`` holds.  Past :data:`HOLD_ABOVE` for the flow, its
    partitions hand out nothing until the sink catches up: a backlog stays in Kafka instead of in the step's state,
    which Bytewax pickles at every epoch (20,000 pending commands cost more than writing them).  A flow whose
    target is down reads again as its commands are written or given up."""
    owners = _backlogs.setdefault(flow, {})
    if pending:
        owners[owner] = pending
    else:
        owners.pop(owner, None)  # a step Bytewax discards reports 0 last


def held(flow: str) -> bool:
    owners = _backlogs.get(flow)
    return owners is not None and sum(owners.values()) >= HOLD_ABOVE


class _CatchUp:
    """Per flow, the partitions read in this process that are still behind the end they had at their start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._behind: dict[str, set[tuple[str, int]]] = {}
        self._since: dict[str, float] = {}
        #: When each flow last caught up (monotonic s).
        self._caught_at: dict[str, float] = {}

    def behind(self, flow: str, topic: str, partition: int, messages: int) -> None:
        with self._lock:
            parts = self._behind.setdefault(flow, set())
            if not parts:
                self._since[flow] = time.monotonic()
            parts.add((topic, partition))
        log.info("%s: catching up with %s[%d], %d message(s) behind", flow, topic, partition, messages)

    def caught_up(self, flow: str, topic: str, partition: int) -> None:
        with self._lock:
            parts = self._behind.get(flow)
            if not parts or (topic, partition) not in parts:
                return
            parts.discard((topic, partition))
            if parts:
                return
            now = time.monotonic()
            took = now - self._since.pop(flow, now)
            self._caught_at[flow] = now
        log.info("%s: caught up with its topics (%.1f s)", flow, took)

    def catching_up(self, flow: str, settle_s: float = 0.0) -> bool:
        if self._behind.get(flow):
            return True
        at = self._caught_at.get(flow)
        return at is not None and time.monotonic() - at < settle_s


CATCH_UP = _CatchUp()


class _Ends:
    """Partitions' ends (watermarks), asked through a consumer of their own that fetches nothing: asked through a
    worker's shared consumer, each answer waited behind that connection's fetch (up to ``fetch.wait.max.ms``, 0.5 s
    per partition at start, measured)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._consumers: dict[str, Consumer] = {}

    def of(self, topic: str, partition: int, config: dict[str, Any]) -> tuple[int, int]:
        cluster = repr(sorted((k, str(v)) for k, v in config.items()))
        with self._lock:
            consumer = self._consumers.get(cluster)
            if consumer is None:
                consumer = self._consumers[cluster] = Consumer(config)
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
        return int(low), int(high)


ENDS = _Ends()


def catching_up(flow: str, settle_s: float = 0.0) -> bool:
    """Some partition of ``flow`` read in this process is still behind the end it had when it started, or the flow
    caught up less than ``settle_s`` ago (see the module doc)."""
    return CATCH_UP.catching_up(flow, settle_s)


#: Backoff of the partitions of a second consumer (see the module doc).
BACKOFF_FIRST = timedelta(milliseconds=5)
BACKOFF_MAX = timedelta(milliseconds=100)
COMMIT_EVERY_S = 10.0
CONSUMER_CONFIG = {
    "enable.auto.commit": "false",
    "fetch.wait.max.ms": "500",
    "fetch.min.bytes": "1",
    "session.timeout.ms": "10000",
    "queued.max.messages.kbytes": "16384",
}

Message = KafkaSourceMessage[bytes | None, bytes | None] | KafkaError[bytes | None, bytes | None]


class SharedConsumer:
    """One consumer for the partitions one worker reads; hands each partition its messages."""

    def __init__(self, config: dict[str, Any], leads: bool) -> None:
        self.consumer = Consumer(config)
        self.buffers: dict[tuple[str, int], deque[Message]] = {}
        self.leads = leads
        self.leader: tuple[str, int] | None = None
        self.batch_size = 500
        #: Once a message came, how long to wait for more to come with it (``KafkaSettings.input_linger_ms``).
        self.linger_s = 0.0

    def assign(self, topic: str, partition: int, offset: int) -> bool:
        """Read this partition from ``offset``; True if it leads (waits for the worker when idle)."""
        self.buffers[(topic, partition)] = deque()
        self.consumer.incremental_assign([TopicPartition(topic, partition, offset)])
        if self.leads and self.leader is None:
            self.leader = (topic, partition)
            return True
        return False

    def take(self, topic: str, partition: int, limit: int, wait_s: float) -> list[Message]:
        buffer = self.buffers[(topic, partition)]
        if not buffer:
            self._fill(wait_s)
        taken: list[Message] = []
        while buffer and len(taken) < limit:
            taken.append(buffer.popleft())
        return taken

    def _fill(self, wait_s: float) -> int:
        # consume(n, timeout) waits for all n messages or the whole timeout (librdkafka's batch consume): at a
        # steady trickle every message waited up to ``wait_s`` in the consumer (p50 127 ms at 200 msg/s, measured).
        # So wait for the first message only, then take what is already fetched without waiting.
        first = self.consumer.consume(1, wait_s) if wait_s > 0 else []
        got = 0
        # at a steady few hundred messages a second each came alone, and each went through the whole dataflow (and
        # its own sink call) by itself: a short linger lets a few travel together (never past a step's wake-up)
        linger = min(self.linger_s, idle_wait_s()) if first else 0
        for msg in chain(first, self.consumer.consume(self.batch_size * max(1, len(self.buffers)), linger)):
            error = msg.error()
            buffer = self.buffers.get((str(msg.topic()), int(msg.partition() or 0)))
            if buffer is None or (error is not None and error.code() == ConfluentKafkaError._PARTITION_EOF):
                continue
            source = KafkaSourceMessage(key=msg.key(), value=msg.value(), topic=msg.topic(),
                                        headers=msg.headers() or [],  # type: ignore[arg-type]
                                        latency=msg.latency(), offset=msg.offset(), partition=msg.partition(),
                                        timestamp=msg.timestamp())
            buffer.append(source if error is None else KafkaError(error, source))
            got += 1
        return got


class _Consumers:
    """This process's shared consumers: per worker thread, one that leads and, for partitions it already reads,
    more that do not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_thread: dict[int, list[SharedConsumer]] = {}

    def for_partition(self, topic: str, partition: int, config: dict[str, Any]) -> SharedConsumer:
        with self._lock:
            consumers = self._by_thread.setdefault(threading.get_ident(), [])
            for shared in consumers:
                if (topic, partition) not in shared.buffers:
                    return shared
            shared = SharedConsumer(config, leads=not consumers)
            consumers.append(shared)
            return shared


CONSUMERS = _Consumers()


class _Committer:
    """Commits each flow's positions to its consumer group from a background thread (monitoring only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._positions: dict[str, dict[tuple[str, int], int]] = {}
        self._committed: dict[str, dict[tuple[str, int], int]] = {}
        self._admin: AdminClient | None = None
        self._thread: threading.Thread | None = None

    def record(self, group: str, topic: str, partition: int, offset: int, config: dict[str, Any]) -> None:
        if offset < 0:
            return
        with self._lock:
            self._positions.setdefault(group, {})[(topic, partition)] = offset
            if self._thread is None:
                self._admin = AdminClient({k: v for k, v in config.items() if k.startswith(CONNECTION_KEYS)})
                self._thread = threading.Thread(target=self._loop, name="offset-commits", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(COMMIT_EVERY_S)  # its own thread: positions for monitoring, not a dataflow step
            with self._lock:
                due = {g: dict(p) for g, p in self._positions.items() if p != self._committed.get(g)}
            for group, positions in due.items():
                request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o)
                                                               for (t, p), o in sorted(positions.items())])
                try:
                    assert self._admin is not None
                    for future in self._admin.alter_consumer_group_offsets([request]).values():
                        future.result(timeout=10)
                    self._committed[group] = positions
                except Exception as exc:  # monitoring only: never a reason to stop reading
                    log.debug("could not commit the positions of %s: %s", group, exc)


COMMITTER = _Committer()


class _Partition(StatefulSourcePartition[Message, int]):
    def __init__(self, shared: SharedConsumer, topic: str, partition: int, offset: int, batch_size: int,
                 flow: str, config: dict[str, Any]) -> None:
        self.shared = shared
        self.flow = flow
        self.config = config
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.batch_size = batch_size
        self.idle = timedelta(0)
        self._awake: datetime | None = None
        self.leads = shared.assign(topic, partition, offset)
        #: The end this partition had at its start, while it is still behind it (None: caught up).
        self.catch_up_to = self._behind_by()

    def _behind_by(self) -> int | None:
        try:
            low, high = ENDS.of(self.topic, self.partition, self.config)
        except Exception as exc:  # not known: the flow is not held for it (it writes as it reads)
            log.warning("%s: could not read the end of %s[%d] (%s); not waiting to catch up with it", self.flow,
                        self.topic, self.partition, exc)
            return None
        start = self.offset if self.offset >= 0 else low
        if start >= high:
            CATCH_UP.caught_up(self.flow, self.topic, self.partition)  # (an earlier run's partition in this process)
            return None
        CATCH_UP.behind(self.flow, self.topic, self.partition, high - start)
        return int(high)

    def _check_caught_up(self, empty: bool) -> None:
        assert self.catch_up_to is not None
        position = self.offset
        if empty and position < self.catch_up_to:
            # nothing buffered: the consumer's own position counts (it steps over offsets that hold no message)
            position = max(position, self.shared.consumer.position([TopicPartition(self.topic, self.partition)])[0]
                           .offset)
        if position >= self.catch_up_to:
            self.catch_up_to = None
            CATCH_UP.caught_up(self.flow, self.topic, self.partition)

    def next_batch(self) -> list[Message]:
        if held(self.flow):  # its sink is behind: the rest waits in Kafka (messages already fetched, in the buffer)
            self._awake = datetime.now(UTC) + BACKOFF_FIRST
            return []
        wait = idle_wait_s() if self.leads and self.idle else 0.0
        batch = self.shared.take(self.topic, self.partition, self.batch_size, wait)
        if batch:
            HEALTH.read(self.flow, len(batch))
            last = batch[-1].msg if isinstance(batch[-1], KafkaError) else batch[-1]
            self.offset = (last.offset if last.offset is not None else self.offset) + 1
            self.idle, self._awake = timedelta(0), None
        elif self.leads or self.shared.leads:
            self.idle = BACKOFF_FIRST  # the leader waits in the consumer; its followers just look at their buffers
        else:
            self.idle = min(BACKOFF_MAX, max(BACKOFF_FIRST, self.idle * 2))
            self._awake = datetime.now(UTC) + self.idle
        if self.catch_up_to is not None:
            self._check_caught_up(not batch)
        return batch

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        COMMITTER.record(f"cdchub.{self.flow}", self.topic, self.partition, self.offset, self.config)
        return self.offset

    def close(self) -> None:
        # the consumer is shared by the worker's other partitions; it ends with the process
        CATCH_UP.caught_up(self.flow, self.topic, self.partition)  # a flow that stopped holds nothing back


class SharedKafkaSource(FixedPartitionedSource[Message, int]):
    """``topics`` of ``brokers`` from their beginning (or the recovery store's offsets), read by the worker's shared
    consumer for ``flow``, committed to the group ``cdchub.<flow>`` for monitoring (see the module doc)."""

    def __init__(self, brokers: str, topics: Iterable[str], flow: str, batch_size: int = 500,
                 config: dict[str, str] | None = None, linger_s: float = 0.0) -> None:
        self.brokers = brokers
        self.topics = list(topics)
        self.flow = flow
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.config = {**CONSUMER_CONFIG, **(config or {}), "bootstrap.servers": brokers, "logger": LIBRDKAFKA,
                       "group.id": "cdchub.runtime"}

    @classmethod
    def from_settings(cls, kafka: KafkaSettings, topics: Iterable[str], flow: str,
                      batch_size: int = 500) -> SharedKafkaSource:
        """The source on the installation's cluster, with its client settings (security, secrets) — how flows
        make it."""
        return cls(kafka.bootstrap_servers, topics, flow=flow, batch_size=batch_size, config=kafka.client_config(),
                   linger_s=kafka.input_linger_ms / 1000)

    def list_parts(self) -> list[str]:
        parts: list[str] = []
        for topic in self.topics:
            meta = connect_admin(self.config, topic=topic)[1].topics[topic]
            if meta.error is not None:
                raise RuntimeError(f"error listing partitions of Kafka topic {topic!r}: {meta.error.str()}")
            parts += [f"{index}-{topic}" for index in meta.partitions]
        return parts

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Partition:
        index, topic = for_part.split("-", 1)
        shared = CONSUMERS.for_partition(topic, int(index), self.config)
        shared.batch_size = self.batch_size
        shared.linger_s = self.linger_s
        return _Partition(shared, topic, int(index), OFFSET_BEGINNING if resume_state is None else resume_state,
                          self.batch_size, self.flow, self.config)


class _CheckedKafkaSource(KafkaSource):
    """Bytewax's ``KafkaSource`` whose partition listing fails in seconds with a one-line error when the cluster
    refuses the credentials or does not answer (Bytewax's own lists with no timeout: it would wait forever)."""

    def __init__(self, connection: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._connection = connection

    def list_parts(self) -> list[str]:
        connect_admin(self._connection)
        return super().list_parts()


class _CheckedKafkaSink(KafkaSink):
    """Bytewax's ``KafkaSink`` that checks the connection before it opens its producer (bad credentials would
    otherwise surface as a ``flush`` waiting out ``message.timeout.ms``)."""

    def __init__(self, connection: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._connection = connection

    def build(self, step_id: str, worker_index: int, worker_count: int) -> KafkaSinkPartition:
        connect_admin(self._connection)
        return super().build(step_id, worker_index, worker_count)


def kafka_source(kafka: KafkaSettings, topics: Iterable[str], *, tail: bool = True, batch_size: int = 500,
                 starting_offset: int = OFFSET_BEGINNING, overrides: dict[str, str] | None = None) -> KafkaSource:
    """Bytewax's ``KafkaSource`` on the installation's cluster (its client settings and secrets), errors as
    ``KafkaError`` items (``raise_on_errors=False``: route them, as ``kop.input`` does).  At-least-once; offsets
    live in the recovery store."""
    config = bytewax_config(kafka, overrides)
    return _CheckedKafkaSource(config, brokers=bytewax_brokers(kafka), topics=list(topics), tail=tail,
                               starting_offset=starting_offset, add_config=config, batch_size=batch_size,
                               raise_on_errors=False)


def kafka_sink(kafka: KafkaSettings, topic: str, overrides: dict[str, str] | None = None) -> KafkaSink:
    """Bytewax's ``KafkaSink`` writing ``KafkaSinkMessage`` items to ``topic`` of the installation's cluster (its
    client settings and secrets).  At-least-once (a resume may write an item again)."""
    config = bytewax_config(kafka, overrides)
    return _CheckedKafkaSink(config, brokers=bytewax_brokers(kafka), topic=topic, add_config=config)
