"""Coalescing of repeated keys at the pipelined ZOHO sink: several versions of one record pending → only the newest
is written; never two writes of one key at once; the ledger and its history account for every version."""

from __future__ import annotations

from pathlib import Path

from connectors.common.delivery import Delivery
from connectors.common.retry import RetryPolicy
from core.ledger import history
from tests.unit.pipelined_crm import GatedCrm, cmd, landed, pipelined_sink


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(step: Delivery, sink) -> None:  # type: ignore[no-untyped-def]
    while step.state.pending:
        landed(sink)
        step.on_notify()


def test_versions_pending_together_are_written_once_as_the_newest(tmp_path: Path) -> None:
    crm = GatedCrm()
    crm.open()
    sink = pipelined_sink(tmp_path, crm)
    step = Delivery(None, lambda: sink, RetryPolicy(), Clock())
    for version in (10, 11, 12):
        step.on_item(cmd("A", version))
    step.on_item(cmd("B", 10))
    step.on_item(cmd("A", 9))  # an older one arriving late (a replay) changes nothing
    step.on_notify()
    drain(step, sink)
    assert [[(r["Kingdee_ID"], r["Product_Name"]) for r in call] for call in crm.calls] == [
        [("A", "喉罩 A v12"), ("B", "喉罩 B v10")]]
    assert sink.ledger.entries(["A"])["A"].source_version == 12
    rows = [(h.source_key, h.source_version, h.action, h.status) for h in history(sink.ledger.engine, ["A", "B"])]
    assert sorted(rows) == [("A", 10, "superseded", "synced"), ("A", 11, "superseded", "synced"),
                            ("A", 12, "insert", "synced"), ("B", 10, "insert", "synced")]
    superseded = [h for h in history(sink.ledger.engine, ["A"]) if h.action == "superseded"]
    assert {h.target_id for h in superseded} == {"zA"} and all("version 12" in h.error for h in superseded)


def test_a_key_in_flight_is_not_sent_again_until_its_answer_and_then_only_its_newest(tmp_path: Path) -> None:
    crm = GatedCrm()
    sink = pipelined_sink(tmp_path, crm)
    step = Delivery(None, lambda: sink, RetryPolicy(), Clock())
    step.on_item(cmd("A", 1))
    step.on_notify()
    crm.wait_arrivals(1)
    for version in (2, 3, 4):  # arrive while version 1 is in flight
        step.on_item(cmd("A", version))
    step.on_item(cmd("B", 1))
    step.on_notify()
    crm.wait_arrivals(1)
    assert [[r["Kingdee_ID"] for r in call] for call in crm.calls] == [["A"], ["B"]], "A is not written twice at once"
    crm.open()
    drain(step, sink)
    assert [[r["Product_Name"] for r in call] for call in crm.calls][2:] == [["喉罩 A v4"]]
    assert sink.ledger.entries(["A"])["A"].source_version == 4
    actions = sorted((h.source_version, h.action) for h in history(sink.ledger.engine, ["A"]))
    assert actions == [(1, "insert"), (2, "superseded"), (3, "superseded"), (4, "insert")]


def test_a_snapshot_with_a_write_in_flight_holds_the_newest_version_pending(tmp_path: Path) -> None:
    crm = GatedCrm()
    sink = pipelined_sink(tmp_path, crm)
    step = Delivery(None, lambda: sink, RetryPolicy(), Clock())
    step.on_item(cmd("A", 1))
    step.on_notify()
    crm.wait_arrivals(1)
    step.on_item(cmd("A", 2))
    state = step.snapshot()  # a crash now: the write of version 1 may or may not have happened
    held = state.pending["A"]
    assert (held.command.version, held.flying, [c.version for c in held.superseded]) == (2, False, [1])
    crm.open()
    drain(step, sink)
