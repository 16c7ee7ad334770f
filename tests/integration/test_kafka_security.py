"""Pointing at real infrastructure: every Kafka client of the project over the local broker's SASL listener
(SASL_PLAINTEXT, SCRAM-SHA-512, port ``kafka.sasl_listener_port``), configured only through ``CDCHUB_KAFKA__*`` as an
installation on a managed cluster would be; bad credentials end in one clear line within seconds; and the registry
client sends the configured credentials to the configured URL.

Every call here carries a timeout (librdkafka's, ``connect_admin``'s, ``flush``'s), so a regression hangs nothing:
it fails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import bytewax.operators as op
import httpx
import pytest
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from connectors.common.avro import AvroEncoder, registry_client
from connectors.common.kafka import (
    KafkaAuthenticationFailed,
    KafkaConnectionError,
    connect_admin,
    consumer,
    ensure_topics,
    producer,
)
from connectors.common.kafka_input import SharedKafkaSource, kafka_sink, kafka_source
from connectors.settings import Settings
from infra.stack.local_secrets import secret

pytestmark = pytest.mark.integration

SASL_CLIENT = json.dumps({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512"})


def _sasl_settings(stack: Settings, monkeypatch: pytest.MonkeyPatch, prefix: str, password: str) -> Settings:
    """Settings read from the environment, as a production installation's are: only CDCHUB_KAFKA__* differ."""
    monkeypatch.setenv("CDCHUB_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{stack.kafka.sasl_listener_port}")
    monkeypatch.setenv("CDCHUB_KAFKA__CLIENT", SASL_CLIENT)
    monkeypatch.setenv("CDCHUB_KAFKA__SASL_USERNAME", "cdchub")
    monkeypatch.setenv("CDCHUB_KAFKA__SASL_PASSWORD", password)
    monkeypatch.setenv("CDCHUB_KAFKA__TOPIC_PREFIX", prefix)
    settings = Settings()
    assert password not in repr(settings)  # the secret never reaches a repr (log lines, tracebacks)
    return settings


@pytest.fixture()
def sasl(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    prefix = f"test-sasl-{uuid.uuid4().hex[:8]}."
    yield _sasl_settings(stack, monkeypatch, prefix, secret("kafka_sasl_password"))
    admin = AdminClient(stack.kafka.client_config())  # cleanup over the plaintext listener
    ours = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for fut in (admin.delete_topics(ours).values() if ours else []):
        with contextlib.suppress(Exception):  # best effort
            fut.result(10)


def _read(settings: Settings, topic: str, want: int, timeout_s: float = 20.0) -> list[tuple[bytes, bytes]]:
    """``want`` messages of ``topic`` (one partition) through the project's consumer helper."""
    cons = consumer(settings.kafka, f"test-{uuid.uuid4().hex}", **{"enable.auto.commit": "false"})
    cons.assign([TopicPartition(topic, 0, 0)])
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            msg = cons.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append((msg.key() or b"", msg.value() or b""))
    finally:
        cons.close()
    return got


def test_the_listener_demands_credentials(stack: Settings) -> None:
    """The test means something only if the SASL port refuses a client without credentials."""
    with pytest.raises(KafkaConnectionError):
        connect_admin({"bootstrap.servers": f"127.0.0.1:{stack.kafka.sasl_listener_port}"}, timeout_s=4)


def test_topic_creator_producer_and_consumer_over_sasl(sasl: Settings, stack: Settings) -> None:
    topic = sasl.kafka.topic("events")
    limit = ensure_topics(sasl.kafka, [topic], 1, {"cleanup.policy": "delete"})
    assert limit == sasl.kafka.max_event_bytes
    # One broker, nothing set: replication min(3, 1) = 1, min.insync.replicas max(1, 1 - 1) = 1.
    admin = AdminClient(stack.kafka.client_config())
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    assert len(meta.partitions[0].replicas) == 1
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    assert next(iter(described.values())).result()["min.insync.replicas"].value == "1"

    prod = producer(sasl.kafka)
    for i in range(3):
        prod.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert prod.flush(15) == 0
    assert _read(sasl, topic, 3) == [(b"k0", b"v0"), (b"k1", b"v1"), (b"k2", b"v2")]


def test_bytewax_flow_over_sasl(sasl: Settings) -> None:
    """Bytewax's KafkaSource → map → KafkaSink, built by the project's factories, and the shared source."""
    source, target = sasl.kafka.topic("in"), sasl.kafka.topic("out")
    ensure_topics(sasl.kafka, [source, target], 1)
    prod = producer(sasl.kafka)
    for word in ("alpha", "beta", "gamma"):
        prod.produce(source, key=word.encode(), value=word.encode())
    assert prod.flush(15) == 0

    flow = Dataflow("sasl_roundtrip")
    read = op.input("read", flow, kafka_source(sasl.kafka, [source], tail=False))
    oks = op.filter_map("oks", read, lambda m: m if isinstance(m, KafkaSourceMessage) else None)
    upper = op.map("upper", oks, lambda m: KafkaSinkMessage(key=m.key, value=(m.value or b"").upper()))
    op.output("write", upper, kafka_sink(sasl.kafka, target))
    run_main(flow)  # tail=False: ends at the end of the topic
    assert _read(sasl, target, 3) == [(b"alpha", b"ALPHA"), (b"beta", b"BETA"), (b"gamma", b"GAMMA")]

    shared = SharedKafkaSource.from_settings(sasl.kafka, [source], flow="sasl_test")
    assert shared.list_parts() == [f"0-{source}"]
    part = shared.build_part("read", f"0-{source}", None)
    got: list[Any] = []
    deadline = time.monotonic() + 20
    while len(got) < 3 and time.monotonic() < deadline:
        got += part.next_batch()
    assert [m.value for m in got] == [b"alpha", b"beta", b"gamma"]


def test_wrong_password_is_one_clear_line_within_seconds(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "not-the-password-" + uuid.uuid4().hex[:6]
    bad = _sasl_settings(stack, monkeypatch, f"test-sasl-{uuid.uuid4().hex[:8]}.", wrong)

    t0 = time.monotonic()
    with pytest.raises(KafkaAuthenticationFailed) as refused:
        ensure_topics(bad.kafka, [bad.kafka.topic("never")], 1)
    assert time.monotonic() - t0 < 10
    message = str(refused.value)
    assert "\n" not in message and wrong not in message
    assert "refused the credentials" in message and "user 'cdchub'" in message and "SCRAM-SHA-512" in message

    t0 = time.monotonic()
    with pytest.raises(KafkaAuthenticationFailed):
        kafka_source(bad.kafka, [bad.kafka.topic("never")]).list_parts()  # Bytewax's own would wait forever
    assert time.monotonic() - t0 < 10

    prod = producer(bad.kafka)
    prod.produce("__cdchub_never", value=b"x")
    t0 = time.monotonic()
    with pytest.raises(KafkaAuthenticationFailed):
        prod.flush(15)  # without the error callback: waits out message.timeout.ms (5 min) and reports a timeout
    assert time.monotonic() - t0 < 15
    del prod  # stops its retries


class _Registry(BaseHTTPRequestHandler):
    """A registry stand-in that records what reaches it and accepts any schema as id 7."""

    seen: list[tuple[str, str, str | None]] = []

    def _answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(("GET", self.path.split("?")[0], self.headers.get("Authorization")))
        self._answer(["orders-value"])

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append(("POST", self.path.split("?")[0], self.headers.get("Authorization")))
        self._answer({"id": 7})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def fake_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Registry.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/registry/apis/ccompat/v7"
    server.shutdown()
    server.server_close()


def test_registry_url_and_basic_credentials_are_sent(fake_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_REGISTRY__URL", fake_registry + "/")
    monkeypatch.setenv("CDCHUB_REGISTRY__USERNAME", "cdchub-sr")
    monkeypatch.setenv("CDCHUB_REGISTRY__PASSWORD", "s3cr:et")
    settings = Settings()
    assert "s3cr:et" not in repr(settings.registry)
    basic = "Basic " + base64.b64encode(b"cdchub-sr:s3cr:et").decode()

    client = registry_client(settings.registry)  # how capture, pollers and flows make theirs
    assert client.get_subjects() == ["orders-value"]
    encoder = AvroEncoder(client, "orders-value", json.dumps(
        {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}))
    assert encoder.schema_id == 7
    with httpx.Client(**settings.registry.httpx_options()) as http:  # `cdchub schemas check`'s calls
        assert http.get("/subjects").status_code == 200

    assert [(m, p) for m, p, _ in _Registry.seen] == [
        ("GET", "/registry/apis/ccompat/v7/subjects"),
        ("POST", "/registry/apis/ccompat/v7/subjects/orders-value/versions"),
        ("GET", "/registry/apis/ccompat/v7/subjects")]
    assert {auth for _, _, auth in _Registry.seen} == {basic}


def test_registry_bearer_token_is_sent(fake_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_REGISTRY__URL", fake_registry)
    monkeypatch.setenv("CDCHUB_REGISTRY__TOKEN", "tok-123")
    settings = Settings()
    registry_client(settings.registry).get_subjects()
    with httpx.Client(**settings.registry.httpx_options()) as http:
        http.get("/subjects")
    assert [auth for _, _, auth in _Registry.seen] == ["Bearer tok-123", "Bearer tok-123"]


def test_local_registry_by_default(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDCHUB_REGISTRY__URL", raising=False)
    settings = Settings()
    assert settings.registry.url == f"http://127.0.0.1:{settings.registry.port}/apis/ccompat/v7"
    assert isinstance(registry_client(settings.registry).get_subjects(), list)
