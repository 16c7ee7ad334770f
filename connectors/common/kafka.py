"""Kafka topics and producers shared by capture, pollers, flows and sinks.

Every client is made from the installation's :class:`~cdchub.settings.KafkaSettings` (bootstrap servers plus the
librdkafka security settings), and every topic the project creates gets its replication settings and the event size
limit (``max_event_bytes``), raised on topics an older version created smaller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from cdchub.settings import KafkaSettings

log = logging.getLogger(__name__)

#: Change topics are compacted (the latest version of every document stays, deletes end in tombstones) but keep
#: at least a week of history uncompacted, so flows can be replayed from an offset or a time.
CHANGE_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000),
    "delete.retention.ms": str(7 * 24 * 3600 * 1000),
}
DLQ_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
#: Room above an event's key and value for the record batch's framing and headers.
BATCH_OVERHEAD_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = "max.message.bytes"


def producer(kafka: KafkaSettings, **extra: str | int) -> Producer:
    """An idempotent producer: per-partition order kept across retries, no duplicates from producer retries; it
    takes events up to the installation's ``max_event_bytes``."""
    config: dict[str, str | int] = {
        **kafka.client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": kafka.max_event_bytes + BATCH_OVERHEAD_BYTES,
    }
    config.update(extra)
    return Producer(config)


def admin_client(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(dict(kafka.client_config()))


#: How long a topic may take to be usable (every partition with a leader) after it was created.
TOPIC_READY_TIMEOUT_S = 30.0


def topic_config(kafka: KafkaSettings, config: dict[str, str] | None) -> dict[str, str]:
    """A topic's settings as the project creates it: ``config`` plus the event size limit and in-sync replicas."""
    full = {**(config or {}), MAX_MESSAGE_BYTES: str(kafka.max_event_bytes + BATCH_OVERHEAD_BYTES)}
    if kafka.min_insync_replicas is not None:
        full["min.insync.replicas"] = str(kafka.min_insync_replicas)
    return full


def ensure_topics(kafka: KafkaSettings, topics: Iterable[str], partitions: int,
                  config: dict[str, str] | None = None) -> int:
    """Create the topics that are missing (idempotent), raise the size limit of existing ones that are smaller, and
    return once every one of them is usable — with the largest event (key + value) all of them take.

    A topic another process created a moment ago can be listed before its partitions have leaders; a Bytewax input
    listing its partitions then fails ("Unknown topic or partition"), so this waits until they have."""
    topics = list(dict.fromkeys(topics))
    admin = admin_client(kafka)
    wanted_config = topic_config(kafka, config)
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in topics if t not in existing]
    if missing:
        futures = admin.create_topics([NewTopic(t, num_partitions=partitions,
                                                replication_factor=kafka.replication_factor, config=wanted_config)
                                       for t in missing])
        for topic, fut in futures.items():
            try:
                fut.result()
                log.info("created topic %s (%d partitions)", topic, partitions)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    _wait_until_usable(admin, topics)
    limits = _raise_size_limits(admin, topics, int(wanted_config[MAX_MESSAGE_BYTES]))
    return min([kafka.max_event_bytes, *(limit - BATCH_OVERHEAD_BYTES for limit in limits.values())])


def _raise_size_limits(admin: AdminClient, topics: list[str], wanted: int) -> dict[str, int]:
    """Each topic's ``max.message.bytes``, raised to ``wanted`` where it is lower and the cluster allows it."""
    limits: dict[str, int] = {}
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in topics])
    for resource, fut in described.items():
        entry = fut.result().get(MAX_MESSAGE_BYTES)
        limits[resource.name] = int(entry.value) if entry is not None and entry.value else wanted
    lower = [t for t, limit in limits.items() if limit < wanted]
    if lower:
        changes = admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
            ConfigEntry(MAX_MESSAGE_BYTES, str(wanted), incremental_operation=AlterConfigOpType.SET)])
            for t in lower])
        for resource, fut in changes.items():
            try:
                fut.result()
                log.info("raised %s of topic %s from %d to %d", MAX_MESSAGE_BYTES, resource.name,
                         limits[resource.name], wanted)
                limits[resource.name] = wanted
            except KafkaException as exc:
                log.warning("topic %s keeps %s=%d (events above that are dead-lettered): the cluster refused "
                            "to raise it: %s", resource.name, MAX_MESSAGE_BYTES, limits[resource.name], exc)
    return limits


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
