"""Steps every flow over Kingdee document topics shares: read, decode, route failures to the dead-letter topic.

Nothing is dropped silently: Kafka read errors (``errs``), undecodable values and mapping errors all become dead
letters on ``cdchub.dlq.<flow>``; tombstones (value ``None``) are expected after every delete event and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream

from connectors.common import replay_mode
from connectors.common.avro import AvroDecoder, load_schema_text, registry_client
from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.kafka import (
    CHANGE_TOPIC_CONFIG,
    DLQ_TOPIC_CONFIG,
    ensure_topics,
)
from connectors.common.kafka_input import SharedKafkaSource, kafka_sink, kafka_source
from connectors.settings import Settings
from core.ledger import Position
from core.settings import RegistrySettings

REPLAY_CONSUMER_CONFIG = {"fetch.wait.max.ms": "20", "session.timeout.ms": "10000"}


@dataclass(frozen=True)
class DocumentEvent:
    """A decoded change event of one Kingdee document, with where it was read."""

    key: str
    envelope: dict[str, Any]
    position: Position

    @property
    def version(self) -> int:
        """The source position: the commit LSN of a Kingdee change, the modified time (ms) of a CRM change."""
        source = self.envelope["source"]
        return int(source["lsn"] if "lsn" in source else source["version"])

    @property
    def commit_ms(self) -> int:
        value = self.envelope["source"]["commit_time"]
        return int(value.timestamp() * 1000) if hasattr(value, "timestamp") else int(value)


class EnvelopeDecoder:
    """Decodes change events; built lazily in each worker (registry clients do not pickle)."""

    def __init__(self, registry_url: RegistrySettings | str, schema: str) -> None:
        self.registry_url = registry_url
        self.reader_schema = load_schema_text(schema)  # read at build time: a missing schema fails at start
        self._decoder: AvroDecoder | None = None

    def __call__(self, msg: KafkaSourceMessage[bytes | None, bytes | None]) -> DocumentEvent | DeadLetter | None:
        if msg.value is None:
            return None  # tombstone after a delete event: compaction marker, nothing to do
        if self._decoder is None:
            self._decoder = AvroDecoder(registry_client(self.registry_url), self.reader_schema)
        key = msg.key.decode("utf-8", "replace") if msg.key else ""
        position = Position(msg.topic, msg.partition, msg.offset)
        try:
            envelope = self._decoder.decode(msg.value)
        except Exception as exc:
            return DeadLetter.of("?", "decode", exc, original=msg.value, key=key, topic=msg.topic,
                                 partition=msg.partition, offset=msg.offset)
        return DocumentEvent(key, envelope, position)


def read_documents(
    flow: Dataflow, flow_name: str, settings: Settings, topic: str, schema: str | None = None
) -> tuple[Stream[DocumentEvent], Stream[DeadLetter]]:
    """The decoded events of ``topic`` (unprefixed name; read with ``schemas/<schema or topic>.avsc``) and the
    dead letters of reading and decoding them."""
    # Bytewax lists the topic's partitions when the flow starts: a topic that does not exist yet would give a
    # flow with no input, so both topics are created (idempotently) first.
    ensure_topics(settings.kafka, [settings.kafka.topic(topic)], settings.kafka.topic_partitions,
                  CHANGE_TOPIC_CONFIG)
    ensure_topics(settings.kafka, [settings.kafka.topic(dlq_topic(flow_name))], 1,
                  DLQ_TOPIC_CONFIG)
    replay = replay_mode.active()
    full_topic = settings.kafka.topic(topic)
    if replay is not None:
        replay.input_topic(full_topic)
    if replay is not None:  # a replay reads to the end of its topics and stops
        source: Any = kafka_source(settings.kafka, [full_topic], tail=False, overrides=REPLAY_CONSUMER_CONFIG)
    else:
        source = SharedKafkaSource.from_settings(settings.kafka, [full_topic], flow=flow_name)
    messages = op.input("read", flow, source)
    split_read = op.branch("read_ok", messages, lambda m: isinstance(m, KafkaSourceMessage))
    oks, errs = split_read.trues, split_read.falses
    if replay is not None:
        op.inspect("replay_progress", oks, lambda _step, msg: replay.saw(msg.topic or full_topic))
    read_errors = op.map(
        "read_errors", errs,
        lambda e: DeadLetter(flow=flow_name, stage="read", error_class="KafkaError", error=str(e.err),
                             topic=e.msg.topic, partition=e.msg.partition, offset=e.msg.offset),
    )
    decoded = op.filter_map("decode", oks, EnvelopeDecoder(settings.registry, schema or topic))
    split = op.branch("decoded_ok", decoded, lambda x: isinstance(x, DocumentEvent))
    bad = op.map("name_flow", split.falses, lambda d: _with_flow(d, flow_name))  # type: ignore[arg-type]
    return split.trues, op.merge("read_dead_letters", read_errors, bad)  # type: ignore[return-value]


def _with_flow(letter: DeadLetter, flow_name: str) -> DeadLetter:
    letter.flow = flow_name
    return letter


def write_dead_letters(flow_name: str, settings: Settings, letters: Stream[DeadLetter]) -> None:
    def to_message(letter: DeadLetter) -> KafkaSinkMessage[bytes, bytes]:
        letter.log()
        return KafkaSinkMessage(key=(letter.key or "").encode(), value=letter.to_json())

    replay = replay_mode.active()
    if replay is not None:  # a replay reports the letters it would write, and writes none
        op.inspect("replay_dead_letters", letters, lambda _step, letter: replay.dead_letter(
            {"flow": flow_name, "key": letter.key, "stage": letter.stage, "error_class": letter.error_class,
             "error": letter.error}))
        return
    messages = op.map("dead_letter_messages", letters, to_message)
    op.output("dead_letters", messages, kafka_sink(settings.kafka, settings.kafka.topic(dlq_topic(flow_name)),
                                                  {"message.max.bytes": str(settings.kafka.max_event_bytes)}))
