"""Kafka and the schema registry: reachable with the installation's client settings, the topics it uses there with
the partitions it expects, and the compatibility level its subjects are checked under."""

from __future__ import annotations

import time

import httpx

from cdchub.doctor.base import CONNECT_TIMEOUT_S, Context, Finding, describe, fail, ok, warn
from connectors.common.dead_letters import dlq_topic
from connectors.common.kafka import (
    BATCH_OVERHEAD_BYTES,
    CHANGE_TOPIC_CONFIG,
    DLQ_TOPIC_CONFIG,
    KafkaConnectionError,
    connect_admin,
)
from connectors.huilianyi.source import TOPIC as HUILIANYI_TOPIC
from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.source import CAPTURE_FLOW
from connectors.settings import Settings
from connectors.weaver.source import TOPIC as WEAVER_TOPIC
from connectors.zoho.source import zoho_topic
from flows.dataflows import FLOWS


def change_topics(settings: Settings) -> list[str]:
    """The change topics of the installation (prefixed): what the capture and the pollers write and the flows read."""
    kafka = settings.kafka
    names = [spec.topic for spec in DocumentCatalog().specs]
    names += [zoho_topic(m) for m in settings.zoho.poll_modules] + [WEAVER_TOPIC, HUILIANYI_TOPIC]
    return [kafka.topic(n) for n in names]


def expected_topics(settings: Settings) -> dict[str, int]:
    """Every topic the installation uses and its partitions: change topics (``topic_partitions``, keyed by document
    id) and one dead-letter topic per flow and for the capture (1 partition)."""
    kafka = settings.kafka
    wanted = dict.fromkeys(change_topics(settings), kafka.topic_partitions)
    wanted.update(dict.fromkeys((kafka.topic(dlq_topic(f)) for f in (CAPTURE_FLOW, *FLOWS)), 1))
    return wanted


def create_command(settings: Settings, topic: str, partitions: int) -> str:
    """The ``kafka-topics.sh`` command that makes ``topic`` as the project would."""
    kafka = settings.kafka
    dead_letters = topic.startswith(kafka.topic(dlq_topic("")))
    config = {**(DLQ_TOPIC_CONFIG if dead_letters else CHANGE_TOPIC_CONFIG),
              "max.message.bytes": str(kafka.max_event_bytes + BATCH_OVERHEAD_BYTES)}
    replicas = f" --replication-factor {kafka.replication_factor}" if kafka.replication_factor else ""
    return (f"kafka-topics.sh --bootstrap-server {kafka.bootstrap_servers} --command-config client.properties "
            f"--create --topic {topic} --partitions {partitions}{replicas} "
            + " ".join(f"--config {k}={v}" for k, v in config.items()))


def check_kafka(ctx: Context) -> Finding:
    kafka = ctx.settings.kafka
    started = time.monotonic()
    try:
        metadata = connect_admin(kafka.client_config(), timeout_s=CONNECT_TIMEOUT_S)[1]
    except KafkaConnectionError as exc:  # refused credentials or TLS within a second, else no answer in time
        return fail("kafka", str(exc),
                    "check CDCHUB_KAFKA__BOOTSTRAP_SERVERS (host:port of the listener for clients) and its security: "
                    "CDCHUB_KAFKA__CLIENT (security.protocol, sasl.mechanism, ssl.ca.location), "
                    "CDCHUB_KAFKA__SASL_USERNAME / CDCHUB_KAFKA__SASL_PASSWORD; a firewall must let this host reach "
                    "every broker the metadata advertises")
    ctx.kafka_metadata = metadata
    return ok("kafka", f"{len(metadata.brokers)} broker(s) at {kafka.bootstrap_servers} answered in "
                       f"{time.monotonic() - started:.2f} s (cluster {metadata.cluster_id})")


def check_topics(ctx: Context) -> Finding:
    metadata = ctx.needs("kafka", ctx.kafka_metadata)
    wanted = expected_topics(ctx.settings)
    missing = [t for t in wanted if t not in metadata.topics]
    different = [(t, len(metadata.topics[t].partitions), n) for t, n in wanted.items()
                 if t in metadata.topics and len(metadata.topics[t].partitions) != n]
    details = tuple(f"missing: {create_command(ctx.settings, t, wanted[t])}" for t in missing) + tuple(
        f"{t}: {has} partitions, expected {n}" for t, has, n in different)
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        return fail("topics", f"{len(missing)} of {len(wanted)} topics missing: {shown}",
                    "start the processes once with a Kafka principal that may create topics (cdchub capture "
                    "creates kingdee.*, cdchub pollers zoho.*/weaver.*/huilianyi.*, each dataflow its "
                    "cdchub.dlq.<flow>), or create them as listed by `cdchub doctor --verbose`", details)
    if different:
        t, has, n = different[0]
        return fail("topics", f"{len(different)} topic(s) with other partitions than configured, e.g. {t}: {has}, "
                              f"CDCHUB_KAFKA__TOPIC_PARTITIONS says {n}",
                    f"set CDCHUB_KAFKA__TOPIC_PARTITIONS={has} to what the topics have (adding partitions to a "
                    "keyed topic moves documents to other partitions: never do it while anything runs)", details)
    return ok("topics", f"all {len(wanted)} topics exist with the expected partitions "
                        f"({ctx.settings.kafka.topic_partitions} per change topic, 1 per dead-letter topic)", details)


def check_registry(ctx: Context) -> Finding:
    registry = ctx.settings.registry
    wanted = registry.compatibility.upper()
    subjects = [f"{t}-value" for t in change_topics(ctx.settings)]
    try:
        with httpx.Client(**{**registry.httpx_options(), "timeout": CONNECT_TIMEOUT_S}) as http:
            answer = http.get("/config")
            if answer.status_code in (401, 403):
                return fail("registry", f"{registry.url} refused cdchub's credentials (HTTP {answer.status_code})",
                            "set CDCHUB_REGISTRY__USERNAME and CDCHUB_REGISTRY__PASSWORD (or CDCHUB_REGISTRY__TOKEN) "
                            "to a user that may read and register subjects")
            answer.raise_for_status()
            level = str(answer.json().get("compatibilityLevel", "")).upper()
            listed = http.get("/subjects")
            listed.raise_for_status()
            present = [s for s in subjects if s in set(listed.json())]
            levels = {s: str(http.get(f"/config/{s}", params={"defaultToGlobal": "true"}).json()
                             .get("compatibilityLevel", level)).upper() for s in present}
    except (httpx.HTTPError, ValueError) as exc:
        return fail("registry", f"{registry.url} did not answer: {describe(exc)}",
                    "check CDCHUB_REGISTRY__URL (the Confluent-compatible base, Apicurio: …/apis/ccompat/v7), "
                    "CDCHUB_REGISTRY__CA_LOCATION for a private CA, and that this host reaches it")
    other = {s: lv for s, lv in levels.items() if lv != wanted}
    if level != wanted:
        return fail("registry", f"{registry.url}: global compatibility {level or 'unset'}, cdchub expects {wanted}",
                    f"set it once: curl -X PUT -H 'Content-Type: application/json' -d "
                    f"'{{\"compatibility\": \"{wanted}\"}}' {registry.url}/config "
                    "(or set CDCHUB_REGISTRY__COMPATIBILITY to the level the registry keeps)")
    if other:
        subject, lv = next(iter(other.items()))
        return fail("registry", f"{len(other)} subject(s) checked under another level than {wanted}, e.g. "
                                f"{subject}: {lv}",
                    f"curl -X PUT -H 'Content-Type: application/json' -d '{{\"compatibility\": \"{wanted}\"}}' "
                    f"{registry.url}/config/{subject} (for each)",
                    tuple(f"{s}: {v}" for s, v in other.items()))
    registered = f"{len(present)} of {len(subjects)} value subjects registered"
    if len(present) < len(subjects):
        return warn("registry", f"{registry.url}: compatibility {wanted}; {registered}",
                    "the others are registered when their producer first starts (capture, pollers)",
                    tuple(f"not registered yet: {s}" for s in subjects if s not in present))
    return ok("registry", f"{registry.url}: compatibility {wanted}, {registered}")
