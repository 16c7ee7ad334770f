"""The Kafka input knows, on the real broker, when a flow has caught up with the end its partitions had when it
started (``kafka_input.catching_up``): what a sum's delivery step waits for before it writes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from connectors.common import kafka_input
from connectors.common.kafka import ensure_topics, producer
from connectors.common.kafka_input import SharedKafkaSource
from connectors.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture()
def topic(stack: Settings) -> Iterator[str]:
    name = stack.kafka.topic(f"test-catch-up-{uuid.uuid4().hex[:8]}")
    ensure_topics(stack.kafka, [name], 3)
    yield name
    AdminClient(stack.kafka.client_config()).delete_topics([name])


def test_a_flow_is_caught_up_once_it_read_what_its_partitions_held_at_its_start(stack: Settings, topic: str) -> None:
    out = producer(stack.kafka)
    for n in range(30):
        out.produce(topic, key=f"receipt-{n}".encode(), value=f"收款单 {n}".encode(), partition=n % 2)
    assert out.flush(30) == 0
    flow = f"catch-up-{uuid.uuid4().hex[:6]}"
    source = SharedKafkaSource.from_settings(stack.kafka, [topic], flow=flow, batch_size=4)
    t0 = time.monotonic()
    parts = [source.build_part("read", part, None) for part in source.list_parts()]
    built_s = time.monotonic() - t0
    assert len(parts) == 3 and kafka_input.catching_up(flow), "partitions 0 and 1 hold 15 messages each"
    assert [p.catch_up_to for p in parts] == [15, 15, None], "partition 2 is empty: nothing to wait for"

    for n in range(6):  # after the start: not waited for
        out.produce(topic, key=b"late", value=f"late {n}".encode(), partition=0)
    assert out.flush(30) == 0
    read: list[int] = []
    deadline = time.monotonic() + 30
    while kafka_input.catching_up(flow) and time.monotonic() < deadline:
        for part in parts:
            read += [m.offset for m in part.next_batch()]  # type: ignore[union-attr]
    assert not kafka_input.catching_up(flow), f"still catching up after reading {len(read)} messages"
    assert len(read) >= 30, "caught up only once both partitions were read to their start's end"
    print(f"3 partitions built in {built_s * 1000:.0f} ms; caught up after {len(read)} messages")
    for part in parts:
        part.close()
