"""Kafka topics and producers shared by capture, pollers, flows and sinks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)

#: Change topics are compacted (the latest version of every document stays, deletes end in tombstones) but keep
#: at least a week of history uncompacted, so flows can be replayed from an offset or a time.
CHANGE_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000),
    "delete.retention.ms": str(7 * 24 * 3600 * 1000),
}
DLQ_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}


def producer(bootstrap: str, **extra: str | int) -> Producer:
    """An idempotent producer: per-partition order kept across retries, no duplicates from producer retries."""
    config: dict[str, str | int] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": 4_000_000,
    }
    config.update(extra)
    return Producer(config)


#: How long a topic may take to be usable (every partition with a leader) after it was created.
TOPIC_READY_TIMEOUT_S = 30.0


def ensure_topics(
    bootstrap: str, topics: Iterable[str], partitions: int, config: dict[str, str] | None = None
) -> None:
    """Create the topics that are missing (idempotent), and return once every one of them is usable.

    A topic another process created a moment ago can be listed before its partitions have leaders; a Bytewax input
    listing its partitions then fails ("Unknown topic or partition"), so this waits until they have."""
    topics = list(dict.fromkeys(topics))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [t for t in topics if t not in existing]
    if wanted:
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=1, config=config or {}) for t in wanted]
        )
        for topic, fut in futures.items():
            try:
                fut.result()
                log.info("created topic %s (%d partitions)", topic, partitions)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    _wait_until_usable(admin, topics)


def _wait_until_usable(admin: AdminClient, topics: list[str]) -> None:
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    pending = list(topics)
    while pending:
        meta = admin.list_topics(timeout=10).topics
        pending = [t for t in pending if t not in meta or meta[t].error is not None or not meta[t].partitions
                   or any(p.leader < 0 for p in meta[t].partitions.values())]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise KafkaException(f"topics not usable {TOPIC_READY_TIMEOUT_S:.0f}s after creation: {pending}")
        time.sleep(0.1)  # waiting for the broker's metadata, not in a dataflow step
