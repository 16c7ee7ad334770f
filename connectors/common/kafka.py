"""Kafka topics and clients shared by capture, pollers, flows and sinks.

Every client — producer, consumer, admin client, Bytewax's Kafka connectors (:func:`bytewax_config`) — is made from
the installation's :class:`~core.settings.KafkaSettings` through ``KafkaSettings.client_config()`` (bootstrap
servers plus the librdkafka security settings and their secrets), and every topic the project creates gets its
replication settings (the cluster's broker count decides them when none are set) and the event size limit
(``max_event_bytes``), raised on topics an older version created smaller.

Credentials the broker refuses (SASL authentication, TLS) are a configuration error, not something to retry for
minutes: the topic creator (every process's first call to Kafka) and the producers and consumers made here stop
with a one-line :class:`KafkaAuthenticationFailed`; a cluster that does not answer at all gives
:class:`KafkaUnreachable` after ``CONNECT_TIMEOUT_S``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

# Where confluent-kafka defines them (its ``admin`` package re-exports them without declaring it, which mypy --strict
# refuses).
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._metadata import ClusterMetadata
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from core.settings import KafkaSettings

log = logging.getLogger(__name__)
#: librdkafka's own log lines (CONFWARN, broker state) through Python logging, not raw stderr: quiet unless ``-v``.
LIBRDKAFKA = logging.getLogger("librdkafka")

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


#: How long the first call to a cluster may take before :class:`KafkaUnreachable`.
CONNECT_TIMEOUT_S = 15.0
#: librdkafka errors that retrying does not cure: the broker refused the credentials, or TLS failed.
_REFUSALS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})
#: Settings an admin client takes from a consumer's or producer's: the connection and its security.
CONNECTION_KEYS = ("bootstrap.servers", "security.", "sasl.", "ssl.", "enable.ssl.", "socket.", "client.",
                   "broker.", "https.")


class KafkaConnectionError(RuntimeError):
    """Kafka could not be used at all (one line, no secrets)."""


class KafkaAuthenticationFailed(KafkaConnectionError):
    """The cluster refused the client's credentials (SASL) or its TLS handshake failed."""


class KafkaUnreachable(KafkaConnectionError):
    """No broker answered within the timeout."""


def _who(config: Mapping[str, Any]) -> str:
    user = config.get("sasl.username")
    mechanism = config.get("sasl.mechanism") or config.get("sasl.mechanisms")
    return (f"Kafka {config.get('bootstrap.servers')} ({config.get('security.protocol', 'PLAINTEXT')}"
            + (f", {mechanism}" if mechanism else "") + (f", user {user!r}" if user else "") + ")")


def refusal_message(config: Mapping[str, Any], error: KafkaError) -> str:
    """One line naming the cluster, protocol, mechanism and user (never the password) and librdkafka's reason."""
    what = "refused the credentials" if error.code() == KafkaError._AUTHENTICATION else "failed the TLS handshake"
    reason = " ".join(str(error.str()).split())
    return (f"{_who(config)} {what}: {reason} — check CDCHUB_KAFKA__SASL_USERNAME, __SASL_PASSWORD and "
            "__CLIENT (security.protocol, sasl.mechanism, ssl.*)")


class FailOnRefusal:
    """A client's ``error_cb``: a refusal (bad credentials, TLS) raises :class:`KafkaAuthenticationFailed` from the
    ``poll``/``flush``/``consume`` that reports it, instead of librdkafka retrying it until a message times out;
    other errors (a broker restarting) are left to librdkafka's retries."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = {k: v for k, v in config.items() if k in ("bootstrap.servers", "security.protocol",
                                                                "sasl.mechanism", "sasl.mechanisms", "sasl.username")}

    def __call__(self, error: KafkaError) -> None:
        if error.code() in _REFUSALS:
            raise KafkaAuthenticationFailed(refusal_message(self.config, error))


def producer(kafka: KafkaSettings, **extra: str | int) -> Producer:
    """An idempotent producer: per-partition order kept across retries, no duplicates from producer retries; it
    takes events up to the installation's ``max_event_bytes``.  Refused credentials raise
    :class:`KafkaAuthenticationFailed` from ``poll``/``flush``."""
    connection = kafka.client_config()
    config: dict[str, Any] = {
        **connection,
        "error_cb": FailOnRefusal(connection),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": kafka.max_event_bytes + BATCH_OVERHEAD_BYTES,
    }
    config.update(extra)
    return Producer({**config, "logger": LIBRDKAFKA})


def consumer(kafka: KafkaSettings, group_id: str, **extra: Any) -> Consumer:
    """A consumer of the installation's cluster in ``group_id``; refused credentials raise
    :class:`KafkaAuthenticationFailed` from ``poll``/``consume``."""
    connection = kafka.client_config()
    return Consumer({**connection, "group.id": group_id, "error_cb": FailOnRefusal(connection), "logger": LIBRDKAFKA,
                     **extra})


def admin_client(kafka: KafkaSettings) -> AdminClient:
    config: dict[str, Any] = {**kafka.client_config(), "logger": LIBRDKAFKA}
    return AdminClient(config)


def bytewax_brokers(kafka: KafkaSettings) -> list[str]:
    """The ``brokers`` argument of Bytewax's ``KafkaSource``/``KafkaSink``/``kop.input``/``kop.output``."""
    return [b.strip() for b in kafka.bootstrap_servers.split(",") if b.strip()]


def bytewax_config(kafka: KafkaSettings, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``add_config`` of Bytewax's Kafka connectors: the installation's client settings (security and secrets
    included — Bytewax hands them to its consumers, producers and admin clients) plus ``overrides``."""
    return {**kafka.client_config(overrides), "logger": LIBRDKAFKA}


class _ErrorLog:
    """An admin client's ``error_cb``: keeps what librdkafka reports (served by ``poll``)."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def __call__(self, error: KafkaError) -> None:
        self.errors.append(error)

    def refusal(self) -> KafkaError | None:
        return next((e for e in self.errors if e.code() in _REFUSALS), None)


def connect_admin(config: Mapping[str, Any], timeout_s: float = CONNECT_TIMEOUT_S,
                  topic: str | None = None) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client on the connection settings of ``config`` and the cluster's metadata (of ``topic`` only,
    if given) — or, within ``timeout_s``, :class:`KafkaAuthenticationFailed` (a refusal shows within about a
    second) or :class:`KafkaUnreachable`.  A bare ``list_topics`` would instead wait out its whole timeout (or
    forever, as Bytewax's) and end with "Broker transport failure", which names nothing."""
    connection = {k: v for k, v in config.items() if k.startswith(CONNECTION_KEYS)}
    errors = _ErrorLog()
    admin_config: dict[str, Any] = {**connection, "error_cb": errors, "logger": LIBRDKAFKA}
    admin = AdminClient(admin_config)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin, admin.list_topics(topic, timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except KafkaException as exc:
            last = exc
        admin.poll(0)  # serves error_cb
        refusal = errors.refusal()
        if refusal is not None:
            raise KafkaAuthenticationFailed(refusal_message(connection, refusal))
        if time.monotonic() >= deadline:
            reason = errors.errors[-1].str() if errors.errors else str(last)
            raise KafkaUnreachable(f"{_who(connection)} did not answer within {timeout_s:g} s: {reason}")


#: How long a topic may take to be usable (every partition with a leader) after it was created.
TOPIC_READY_TIMEOUT_S = 30.0


def topic_config(kafka: KafkaSettings, config: dict[str, str] | None,
                 min_insync_replicas: int | None = None) -> dict[str, str]:
    """A topic's settings as the project creates it: ``config`` plus the event size limit and in-sync replicas
    (``min_insync_replicas``, else the setting, else the broker's)."""
    full = {**(config or {}), MAX_MESSAGE_BYTES: str(kafka.max_event_bytes + BATCH_OVERHEAD_BYTES)}
    min_isr = min_insync_replicas or kafka.min_insync_replicas
    if min_isr is not None:
        full["min.insync.replicas"] = str(min_isr)
    return full


def ensure_topics(kafka: KafkaSettings, topics: Iterable[str], partitions: int,
                  config: dict[str, str] | None = None) -> int:
    """Create the topics that are missing (idempotent), raise the size limit of existing ones that are smaller, and
    return once every one of them is usable — with the largest event (key + value) all of them take.

    A topic another process created a moment ago can be listed before its partitions have leaders; a Bytewax input
    listing its partitions then fails ("Unknown topic or partition"), so this waits until they have.

    New topics get ``KafkaSettings.replication_for(<brokers in the cluster>)``: the settings if given, else
    min(3, brokers) replicas and min.insync.replicas one fewer (at least 1).  It is every process's first call to
    Kafka, so bad credentials stop it here with a one-line :class:`KafkaAuthenticationFailed`."""
    topics = list(dict.fromkeys(topics))
    admin, metadata = connect_admin(kafka.client_config())
    replicas, min_isr = kafka.replication_for(len(metadata.brokers))
    wanted_config = topic_config(kafka, config, min_isr)
    existing = set(metadata.topics)
    missing = [t for t in topics if t not in existing]
    if missing:
        futures = admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=replicas,
                                                config=wanted_config)
                                       for t in missing])
        for topic, fut in futures.items():
            try:
                fut.result()
                log.info("created topic %s (%d partitions, %d replicas, min.insync.replicas %d)", topic,
                         partitions, replicas, min_isr)
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
