"""The Kafka input follows the sink: an idle leader waits no longer than a step asked, and a flow whose delivery
steps hold too much stops taking messages (``connectors/common/kafka_input.py``)."""

from __future__ import annotations

import time
from collections import deque

from connectors.common import kafka_input


def test_a_step_due_soon_shortens_the_idle_wait() -> None:
    kafka_input.wake_by(time.time() + 0.002)
    assert kafka_input.idle_wait_s() <= 0.002
    kafka_input.wake_by(time.time() - 10)  # a request long past is stale: the full idle wait again
    assert kafka_input.idle_wait_s() == kafka_input.IDLE_WAIT_S


def test_a_flow_is_held_while_its_steps_hold_enough_and_released_when_they_drain() -> None:
    flow = "test-held"
    kafka_input.backlog(flow, 1, kafka_input.HOLD_ABOVE - 1)
    assert not kafka_input.held(flow)
    kafka_input.backlog(flow, 2, 1)
    assert kafka_input.held(flow) and not kafka_input.held("another-flow")
    kafka_input.backlog(flow, 1, 0)  # a step that drained (and is discarded) reports 0 last
    assert not kafka_input.held(flow)
    kafka_input.backlog(flow, 2, 0)


class _Consumer:
    """Records how long each consume may wait; hands out the messages it is given, one call at a time."""

    def __init__(self, batches: list[list[object]]) -> None:
        self.batches, self.waits = batches, []

    def consume(self, n: int, timeout: float) -> list[object]:
        self.waits.append(timeout)
        return self.batches.pop(0) if self.batches else []


class _Message:
    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> None:
        return None

    def latency(self) -> None:
        return None

    def offset(self) -> int:
        return 7

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def test_once_a_message_came_the_input_lingers_for_more_to_come_with_it() -> None:
    shared = kafka_input.SharedConsumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, leads=True)
    shared.buffers[("t", 0)] = deque()
    shared.linger_s = 0.01
    shared.consumer = _Consumer([[_Message()], [_Message(), _Message()]])  # type: ignore[assignment]
    assert shared._fill(0.25) == 3
    assert shared.consumer.waits == [0.25, 0.01], "the first waited the idle wait, the rest the linger"
    shared.consumer = _Consumer([])  # type: ignore[assignment]
    assert shared._fill(0.25) == 0
    assert shared.consumer.waits == [0.25, 0], "nothing came: no linger"
    kafka_input.wake_by(time.time() + 0.002)  # a step is due in 2 ms: the linger ends by then
    shared.consumer = _Consumer([[_Message()]])  # type: ignore[assignment]
    shared._fill(0.002)
    assert shared.consumer.waits[1] <= 0.002
    kafka_input.wake_by(time.time() - 10)
