"""Sums over several partitions wait for the input to catch up: a replay never writes a partial total
(``kafka_input.catching_up``, the delivery step's ``hold``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from confluent_kafka import KafkaException, TopicPartition

from connectors.common import kafka_input
from connectors.common.delivery import HOLD_RECHECK_S, Delivery
from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from core.ledger import Position
from flows.bill_amounts import Contribution
from flows.order_sums import OrderSum, TotalWrite, total_command
from tests.unit.test_delivery import Clock, ScriptedWriter

POLICY = RetryPolicy(first_delay_s=1, max_delay_s=8, give_up_after_s=60)


def contribution(bill: str, amount: str | None, version: int) -> Contribution:
    return Contribution("SO-001", bill, None if amount is None else Decimal(amount), version, version,
                        Position("kingdee.receipt", 0, version))


#: Receipts of order SO-001 as a replay from scratch may read them from two partitions: the newest (R2 at LSN 300)
#: first, then R1's audit (LSN 100) and R1's deletion (LSN 200).  The order's total is 400 throughout.
REPLAYED = [contribution("R2", "400", 300), contribution("R1", "150", 100), contribution("R1", None, 200)]


def replay_into(delivery: Delivery, clock: Clock) -> None:
    orders = OrderSum(None, resolve=lambda number: "crm-" + number, flow="receipts", wait_s=60, clock=clock)
    for c in REPLAYED:
        out, _ = orders.on_item(c)
        for write in out:
            assert isinstance(write, TotalWrite)
            delivery.on_item(total_command("receipts", "Received_Amount", write))
            delivery.on_notify()  # the step is woken between items, as a busy worker's is


class RecordingWriter(ScriptedWriter):
    def __init__(self) -> None:
        super().__init__()
        self.commands: list[SyncCommand] = []

    def deliver(self, commands: list[SyncCommand]) -> dict[str, BaseException]:
        self.commands += commands
        return super().deliver(commands)


def test_a_replay_read_out_of_order_writes_a_partial_total_unless_the_step_holds_until_caught_up() -> None:
    clock = Clock()
    writer = RecordingWriter()
    replay_into(Delivery(None, lambda: writer, POLICY, clock), clock)
    amounts = [c.record["Received_Amount"] for c in writer.commands]
    assert amounts == [400.0, 550.0, 400.0], "without the hold, R1's audit shows as 550 at R2's version"
    assert {c.version for c in writer.commands} == {300}, "all at one version: the ledger must write each"

    catching_up = [True]
    writer = RecordingWriter()
    held = Delivery(None, lambda: writer, POLICY, clock, flow="receipts", hold=lambda: catching_up[0])
    replay_into(held, clock)
    assert writer.commands == [], "nothing is written while the flow catches up"
    assert held.notify_at().timestamp() == clock.now + HOLD_RECHECK_S  # type: ignore[union-attr]
    pending = held.state.pending["order:SO-001"]
    assert pending.superseded == [], "a total of the same version, less complete, is not history"
    catching_up[0] = False
    clock.now += HOLD_RECHECK_S
    held.on_notify()
    assert [(c.version, c.record["Received_Amount"]) for c in writer.commands] == [(300, 400.0)]
    assert not held.state.pending


def test_a_holding_step_never_holds_its_input_back() -> None:
    """It needs the input to catch up: holding thousands of orders must not stop the reading (``backlog``)."""
    clock, writer = Clock(), RecordingWriter()
    held = Delivery(None, lambda: writer, POLICY, clock, flow="test-hold-backlog", hold=lambda: True)
    for n in range(kafka_input.HOLD_ABOVE + 10):
        record = {"id": str(n), "Received_Amount": 1.0}
        held.on_item(SyncCommand("test-hold-backlog", f"order:{n}", str(n), 1, record, str(n), 1,
                                 Position("t", 0, n)))
    held.notify_at()
    held.on_notify()
    assert not kafka_input.held("test-hold-backlog") and writer.commands == []
    released = Delivery(held.snapshot(), lambda: writer, POLICY, clock, flow="test-hold-backlog")
    released.notify_at()
    assert kafka_input.held("test-hold-backlog"), "the same backlog, not held for catching up, holds the input"
    released.on_notify()
    released.notify_at()
    assert len(writer.commands) == kafka_input.HOLD_ABOVE + 10 and not kafka_input.held("test-hold-backlog")


class _Consumer:
    """A partition's watermarks and position, and the messages a fetch gives."""

    def __init__(self, low: int, high: int, position: int = -1001, fails: bool = False) -> None:
        self.low, self.high, self.at, self.fails = low, high, position, fails

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool) -> tuple[int, int]:
        if self.fails:
            raise KafkaException("broker down")
        return self.low, self.high

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tps[0].topic, tps[0].partition, self.at)]


class _Shared:
    """What a partition needs of its worker's shared consumer."""

    def __init__(self, consumer: _Consumer) -> None:
        self.consumer = consumer
        self.leads = False
        self.buffers: dict[tuple[str, int], deque[Any]] = {}

    def assign(self, topic: str, partition: int, offset: int) -> bool:
        self.buffers[(topic, partition)] = deque()
        return False

    def take(self, topic: str, partition: int, limit: int, wait_s: float) -> list[Any]:
        buffer = self.buffers[(topic, partition)]
        return [buffer.popleft() for _ in range(min(limit, len(buffer)))]

    def arrive(self, topic: str, partition: int, *offsets: int) -> None:
        self.buffers[(topic, partition)].extend(
            KafkaSourceMessage(key=b"k", value=b"v", topic=topic, partition=partition, offset=o) for o in offsets)


class _Ends:
    def __init__(self, consumer: _Consumer) -> None:
        self.consumer = consumer

    def of(self, topic: str, partition: int, config: dict[str, Any]) -> tuple[int, int]:
        return self.consumer.get_watermark_offsets(TopicPartition(topic, partition), 10, False)


@pytest.fixture()
def partition(monkeypatch: pytest.MonkeyPatch) -> Callable[..., kafka_input._Partition]:
    def make(flow: str, shared: _Shared, index: int, resume: int | None = None) -> kafka_input._Partition:
        monkeypatch.setattr(kafka_input, "ENDS", _Ends(shared.consumer))
        return kafka_input._Partition(shared, "kingdee.receipt", index,  # type: ignore[arg-type]
                                      -2 if resume is None else resume, 100, flow, {})
    return make


def test_a_flow_catches_up_when_every_partition_read_here_reached_the_end_it_had_at_its_start(
        partition: Callable[..., kafka_input._Partition]) -> None:
    flow = "test-catch-up"
    one, two = _Shared(_Consumer(0, 5)), _Shared(_Consumer(10, 12))
    p0, p1 = partition(flow, one, 0), partition(flow, two, 1)
    assert kafka_input.catching_up(flow) and not kafka_input.catching_up("another-flow")
    one.arrive("kingdee.receipt", 0, 0, 1, 2)
    assert len(p0.next_batch()) == 3 and kafka_input.catching_up(flow)
    one.arrive("kingdee.receipt", 0, 3, 4, 5)  # offset 5 arrived after the start: the end stays 5
    assert len(p0.next_batch()) == 3 and p0.catch_up_to is None
    assert kafka_input.catching_up(flow), "partition 1 is still behind"
    two.arrive("kingdee.receipt", 1, 10)
    p1.next_batch()
    assert kafka_input.catching_up(flow)
    two.consumer.at = 12  # offset 11 holds no message (a transaction marker): the consumer stepped over it
    assert p1.next_batch() == [] and not kafka_input.catching_up(flow)


def test_a_partition_at_its_end_an_unknown_end_and_a_closed_partition_hold_nothing(
        partition: Callable[..., kafka_input._Partition]) -> None:
    flow = "test-catch-up-none"
    partition(flow, _Shared(_Consumer(0, 7)), 0, resume=7)  # resumed from recovery at the end
    partition(flow, _Shared(_Consumer(0, 0)), 1)  # empty
    partition(flow, _Shared(_Consumer(0, 9, fails=True)), 2)  # the end could not be read: not waited for
    assert not kafka_input.catching_up(flow)
    behind = partition(flow, _Shared(_Consumer(0, 9)), 3)
    assert kafka_input.catching_up(flow)
    behind.close()  # the dataflow stopped: a later one in this process is not held by it
    assert not kafka_input.catching_up(flow)


def test_a_flow_that_caught_up_holds_its_sums_a_little_longer(partition: Callable[..., kafka_input._Partition],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The last messages read are still on their way, and a step between may keep a total back (the inventory
    writes a material at most once a second): a holding step waits ``settle_s`` more."""
    flow, now = "test-catch-up-settle", [500.0]
    monkeypatch.setattr(kafka_input.time, "monotonic", lambda: now[0])
    shared = _Shared(_Consumer(0, 2))
    p = partition(flow, shared, 0)
    shared.arrive("kingdee.receipt", 0, 0, 1)
    p.next_batch()
    assert not kafka_input.catching_up(flow), "caught up: no settle asked"
    assert kafka_input.catching_up(flow, settle_s=2.5), "caught up just now: 2.5 s more asked"
    now[0] += 2.4
    assert kafka_input.catching_up(flow, settle_s=2.5)
    now[0] += 0.2
    assert not kafka_input.catching_up(flow, settle_s=2.5)
