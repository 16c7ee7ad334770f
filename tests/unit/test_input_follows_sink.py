"""The Kafka input follows the sink: an idle leader waits no longer than a step asked, and a flow whose delivery
steps hold too much stops taking messages (``connectors/common/kafka_input.py``)."""

from __future__ import annotations

import time

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
