"""The ZOHO upsert at the target's pace: calls of 100, as many in flight as the org allows, none queued behind
them, and cost-aware partial batches (``connectors/common/batching.py``)."""

from __future__ import annotations

from pathlib import Path

from connectors.common.batching import batch_take
from connectors.common.delivery import Delivery
from connectors.common.retry import RetryPolicy
from connectors.zoho.budget import credits_for
from tests.unit.pipelined_crm import GatedCrm, cmd, landed, pipelined_sink


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_batch_take_fills_free_calls_in_hundreds_and_rounds_to_the_credit_unit() -> None:
    assert batch_take(1000, 5) == 500, "five calls of 100, nothing queued behind the slots"
    assert batch_take(1000, 0) == 0
    assert batch_take(250, 5) == 250
    assert batch_take(205, 3) == 200, "a rest under 10 behind full calls waits to join one"
    assert batch_take(37, 5) == 30, "light load: a multiple of 10 — 37 would cost what 40 do"
    assert batch_take(7, 5) == 7, "under 10, once the oldest has waited the linger"
    assert batch_take(7, 5, lingered=False) == 0, "under 10 before the linger: waits for more to join"
    assert batch_take(12, 5, lingered=False) == 10, "a credit's worth goes at once"


def test_a_busy_shards_few_changes_wait_the_linger_for_more_then_go_together(tmp_path: Path) -> None:
    crm = GatedCrm()
    crm.open()
    sink = pipelined_sink(tmp_path, crm, concurrency=5)
    clock = Clock()
    step = Delivery(None, lambda: sink, RetryPolicy(), clock, linger_s=0.03)
    step.on_item(cmd(100))
    at = step.notify_at()
    assert at is not None and abs(at.timestamp() - clock.now) < 1e-3, "a lone change on a quiet shard goes at once"
    step.on_notify()
    crm.wait_arrivals(1)
    while step.state.pending:
        landed(sink)
        step.on_notify()
    clock.now += 0.05  # the shard sent a call 50 ms ago: busy
    for i in range(3):
        step.on_item(cmd(i))
    at = step.notify_at()
    assert at is not None and round(at.timestamp() - clock.now, 3) == 0.03, "woken when the linger is over"
    clock.now += 0.01
    step.on_notify()
    assert len(crm.calls) == 1 and len(step.state.pending) == 3, "nothing sent within the linger"
    for i in range(3, 6):
        step.on_item(cmd(i))
    clock.now += 0.02
    step.on_notify()
    crm.wait_arrivals(1)
    assert [len(c) for c in crm.calls] == [1, 6], "the six went as one call, one credit"
    while step.state.pending:
        landed(sink)
        step.on_notify()
    for i in range(6, 16):
        step.on_item(cmd(i))
    at = step.notify_at()
    assert at is not None and abs(at.timestamp() - clock.now) < 1e-3, "a credit's worth does not wait"
    while step.state.pending:
        landed(sink)
        step.on_notify()
    assert sink.ledger.counts() == {"synced": 17}


def test_five_calls_of_100_in_flight_then_one_more_per_answer(tmp_path: Path) -> None:
    crm = GatedCrm()
    sink = pipelined_sink(tmp_path, crm, concurrency=5)
    clock = Clock()
    step = Delivery(None, lambda: sink, RetryPolicy(), clock)
    for i in range(1000):
        step.on_item(cmd(i))
    step.on_notify()
    crm.wait_arrivals(5)
    assert [len(c) for c in crm.calls] == [100] * 5 and crm.in_flight == 5
    step.on_notify()  # nothing came back: nothing more is sent, the rest stays pending (where it coalesces)
    assert len(crm.calls) == 5 and len(step.state.pending) == 1000

    crm.release(1)
    landed(sink)
    step.on_notify()  # one answer collected: its 100 leave the state, one more call of 100 goes
    crm.wait_arrivals(1)
    assert len(crm.calls) == 6 and len(step.state.pending) == 900

    crm.open()
    while step.state.pending:  # the rest, answer by answer
        landed(sink)
        step.on_notify()
    assert crm.most_in_flight == 5
    assert [len(c) for c in crm.calls] == [100] * 10
    assert sink.ledger.counts() == {"synced": 1000}
    assert sum(credits_for("POST", len(c)) for c in crm.calls) / 1000 == 0.1


def test_the_flow_never_waits_for_an_answer(tmp_path: Path) -> None:
    crm = GatedCrm()
    sink = pipelined_sink(tmp_path, crm, concurrency=2)
    step = Delivery(None, lambda: sink, RetryPolicy(), Clock())
    step.on_item(cmd(1))
    step.on_notify()  # returns with the call in flight (the gate is closed)
    crm.wait_arrivals(1)
    at = step.notify_at()
    assert at is not None and at.timestamp() - Clock.now < 0.01, "woken within milliseconds to collect"
    step.on_item(cmd(2))
    step.on_notify()
    crm.wait_arrivals(1)
    assert crm.in_flight == 2
    crm.release()
    while step.state.pending:
        landed(sink)
        step.on_notify()
    assert sink.ledger.counts() == {"synced": 2}
