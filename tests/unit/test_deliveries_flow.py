"""The deliveries flow's join and aggregation (flows/deliveries.py): outbound events → parts per order → delivered
totals per order line, with Bytewax's TestingSource/TestingSink and with the logic driven by a fake clock."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from core.ledger import Position
from flows.delivery_lookups import CrmOrder
from flows.delivery_rules import DELIVERED, NOT_DELIVERED, PARTLY_DELIVERED, delivery_status
from flows.kingdee_documents import DocumentEvent
from flows.order_deliveries import OrderDeliveries, order_deliveries
from flows.outbound_parts import OutboundPart, outbound_parts

ORDER = "XSDD000001"
ORDER_LINES = {"101": "9001", "102": "9002"}  # Kingdee order entry id → CRM line id


class Kingdee:
    """Outbound bills producing the change events the capture would (op, before, after, LSN)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.lsn = 1000
        self.events: list[DocumentEvent] = []

    def _emit(self, fid: str, op_: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        self.lsn += 10
        env = {"op": op_, "before": before, "after": after,
               "source": {"lsn": self.lsn, "commit_time": 1_700_000_000_000 + self.lsn, "number": f"XSCK{fid}"}}
        self.events.append(DocumentEvent(fid, env, Position("kingdee.outbound", 0, len(self.events))))

    def put(self, fid: str, lines: dict[str, int], *, status: str = "C", cancel: str = "A",
            order: str = ORDER) -> None:
        before = self.docs.get(fid)
        self.docs[fid] = {
            "FID": int(fid), "FBILLNO": f"XSCK{fid}", "FDATE": datetime(2026, 11, 30), "FDOCUMENTSTATUS": status,
            "FCANCELSTATUS": cancel, "FCUSTOMERID": 7,
            "entries": [{"FENTRYID": int(fid) * 10 + i, "FMATERIALID": 50 + i, "FREALQTY": Decimal(q),
                         "FSOORDERNO": order, "FSOENTRYID": int(so)}
                        for i, (so, q) in enumerate(lines.items())],
        }
        self._emit(fid, "u" if before else "c", before, self.docs[fid])

    def delete(self, fid: str) -> None:
        self._emit(fid, "d", self.docs.pop(fid), None)


def parts(events: list[DocumentEvent]) -> list[tuple[str, OutboundPart]]:
    out: list[tuple[str, OutboundPart]] = []
    for e in events:
        for key, part in outbound_parts(e):
            assert isinstance(part, OutboundPart)
            out.append((key, part))
    return out


class Lookups:
    def __init__(self, present: bool = True) -> None:
        self.present = present
        self.calls = 0

    def order(self, order_no: str) -> CrmOrder | None:
        self.calls += 1
        return CrmOrder("5000", dict(ORDER_LINES)) if self.present else None

    def targets(self, flow: str, keys: list[str]) -> dict[str, str]:
        return {k: f"{flow}-{k}" for k in keys}


def run(items: list[Any], lookups: Lookups | None = None,
        recovery: RecoveryConfig | None = None) -> list[tuple[str, Any]]:
    flow = Dataflow("deliveries_test")
    out: list[tuple[str, Any]] = []
    stream = order_deliveries(op.input("in", flow, TestingSource(items)), lookups or Lookups(), 60,
                              coalesce=timedelta(0))
    op.output("out", op.map("v", stream, lambda kv: kv[1]), TestingSink(out))  # type: ignore[arg-type]
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    return out


def totals(out: list[tuple[str, Any]]) -> list[dict[str, str]]:
    return [cmd.record["delivered"] for kind, cmd in out if kind == "order"]


def final(out: list[tuple[str, Any]]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """The last totals written and the last record written per delivery."""
    records: dict[str, dict[str, Any]] = {}
    newest: SyncCommand | None = None
    for kind, cmd in out:
        if kind == "delivery":
            records[cmd.key] = cmd.record
        elif kind == "order" and (newest is None or cmd.version >= newest.version):
            newest = cmd
    assert newest is not None
    return newest.record["delivered"], records


# --- parts --------------------------------------------------------------------------------------------------------


def test_an_audited_outbound_delivers_and_voided_unaudited_deleted_ones_deliver_nothing() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4, "102": 1})
    kd.put("1", {"101": 4}, cancel="B")
    kd.put("2", {"101": 1}, status="D")
    kd.delete("1")
    (first,), (voided,), (unaudited,), (deleted,) = (outbound_parts(e) for e in kd.events)
    assert first[0] == ORDER and isinstance(first[1], OutboundPart)
    assert first[1].live and first[1].delivered() == {"101": 4, "102": 1} and first[1].date == "2026-11-30"
    assert not voided[1].live and not unaudited[1].live and not deleted[1].live  # type: ignore[union-attr]
    assert deleted[1].version > voided[1].version  # type: ignore[union-attr]


def test_an_unknown_status_letter_is_a_dead_letter_naming_it() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4}, cancel="X")
    ((_, letter),) = outbound_parts(kd.events[0])
    assert isinstance(letter, DeadLetter) and "FCANCELSTATUS 'X'" in letter.error


def test_an_outbound_moved_to_another_order_leaves_the_first() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4})
    kd.put("1", {"201": 4}, order="XSDD000002")
    left, joined = outbound_parts(kd.events[1])
    assert left[0] == ORDER and not left[1].live  # type: ignore[union-attr]
    assert joined[0] == "XSDD000002" and joined[1].live  # type: ignore[union-attr]


# --- the sum per order --------------------------------------------------------------------------------------------


def test_partial_then_complete_then_a_deleted_outbound_rolls_back() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4, "102": 1})
    kd.put("2", {"101": 6})
    kd.delete("1")
    out = run(parts(kd.events))
    assert totals(out) == [{"101": "4", "102": "1"}, {"101": "10", "102": "1"}, {"101": "6"}]
    delivered, records = final(out)
    assert records["1"] == {"Kingdee_Outbound_ID": "1", "Deleted_In_Kingdee": True}
    two = records["2"]
    assert two["Sales_Order"] == {"id": "5000"} and two["Name"] == two["Outbound_No"] == "XSCK2"
    assert two["Delivery_Lines"] == [{"Order_Line_ID": "9001", "Delivered_Qty": 6.0, "Kingdee_Entry_ID": "20",
                                      "Product": {"id": "materials-50"}}]
    assert two["Account"] == {"id": "customers-7"} and two["Delivery_Date"] == "2026-11-30"


def test_duplicates_and_any_arrival_order_give_the_same_totals() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4, "102": 1})
    kd.put("2", {"101": 6})
    kd.put("1", {"101": 3, "102": 1})  # edited while not audited … and audited again
    kd.put("3", {"102": 2})
    kd.put("3", {"102": 2}, cancel="B")
    expected = {"101": "9", "102": "1"}
    items = parts(kd.events)
    assert final(run(items))[0] == expected
    rng = random.Random(7)
    for _ in range(5):
        shuffled = items + items[: rng.randrange(len(items))]  # duplicates (a capture re-send)
        rng.shuffle(shuffled)
        delivered, records = final(run(shuffled))
        # Delivery records and totals are versioned: the sink writes only the newest; the newest total is right.
        assert delivered == expected
        # Outbound 3's voided version may come first: then it is never written at all.
        assert "3" not in records or records["3"]["Deleted_In_Kingdee"] is True


def test_the_totals_version_never_goes_back() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4})
    kd.put("2", {"101": 1})
    out = run(list(reversed(parts(kd.events))))
    versions = [cmd.version for kind, cmd in out if kind == "order"]
    assert versions == sorted(versions) and versions[-1] == kd.lsn


def test_a_replayed_stale_image_changes_nothing() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4})
    kd.put("1", {"101": 5})
    items = parts(kd.events)
    out = run([items[0], items[1], items[0], items[1]])
    assert totals(out) == [{"101": "4"}, {"101": "5"}]


# --- waiting for the order, bounded -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_outbound_waits_for_its_order_and_is_applied_when_it_arrives() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4})
    ((_, part),) = parts(kd.events)
    lookups, clock = Lookups(present=False), Clock()
    logic = OrderDeliveries(None, lookups, wait_s=60, clock=clock, coalesce=timedelta(0))
    out, discard = logic.on_item(part)
    assert list(out) == [] and not discard
    assert logic.notify_at() is not None
    clock.now += 10
    assert list(logic.on_notify()[0]) == []
    lookups.present = True
    clock.now += 10
    written, _ = logic.on_notify()
    kinds = [k for k, _ in written]
    assert kinds == ["delivery", "order"]


def test_an_order_that_never_arrives_dead_letters_its_outbounds_naming_it_and_drops_them() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4})
    ((_, part),) = parts(kd.events)
    clock = Clock()
    logic = OrderDeliveries(None, Lookups(present=False), wait_s=30, clock=clock, coalesce=timedelta(0),
                            retire_after=timedelta(seconds=60))
    logic.on_item(part)
    letters: list[Any] = []
    for _ in range(40):
        clock.now += 1
        letters += list(logic.on_notify()[0])
    assert [k for k, _ in letters] == ["dead"]
    letter = letters[0][1]
    assert ORDER in letter.error and "XSCK1" in letter.error and letter.stage == "resolve"
    assert not logic.state.live and logic.notify_at() is not None  # a tombstone until it retires
    clock.now += 61
    _, discard = logic.on_notify()
    assert discard, "nothing left: the order's state is dropped"


def test_an_order_whose_outbounds_are_all_gone_drops_its_state() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 4})
    kd.delete("1")
    clock = Clock()
    logic = OrderDeliveries(None, Lookups(), wait_s=30, clock=clock, coalesce=timedelta(0),
                            retire_after=timedelta(seconds=60))
    for _, p in parts(kd.events):
        logic.on_item(p)
    assert not logic.state.live and not logic.state.dirty
    clock.now += 61
    assert logic.on_notify()[1] is True


def test_state_survives_a_crash(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    kd = Kingdee()
    kd.put("1", {"101": 4})
    kd.put("2", {"101": 6})
    first, second = parts(kd.events)
    flow = Dataflow("deliveries_recovery_test")
    out: list[tuple[str, Any]] = []
    stream = order_deliveries(op.input("in", flow, TestingSource([first, TestingSource.ABORT(), second])),
                              Lookups(), 60, coalesce=timedelta(0))
    op.output("out", op.map("v", stream, lambda kv: kv[1]), TestingSink(out))  # type: ignore[arg-type]
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    assert totals(out) == [{"101": "4"}]
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)  # resumes with outbound 1 in the state
    assert totals(out) == [{"101": "4"}, {"101": "10"}]


def test_delivery_status() -> None:
    rows = [{"Kingdee_Entry_ID": "101", "Quantity": 10}, {"Kingdee_Entry_ID": "102", "Quantity": 2}]
    assert delivery_status(rows, {}) == NOT_DELIVERED
    assert delivery_status(rows, {"101": Decimal(10)}) == PARTLY_DELIVERED
    assert delivery_status(rows, {"101": Decimal(10), "102": Decimal(2)}) == DELIVERED


def test_an_unaudit_then_a_delete_within_one_coalescing_window_still_marks_the_delivery_deleted() -> None:
    kd = Kingdee()
    kd.put("1", {"101": 3})
    kd.put("1", {"101": 3}, status="D")  # the clerk un-audits …
    kd.delete("1")  # … and deletes at once, before the un-audit was written
    now = [100.0]
    logic = OrderDeliveries(None, Lookups(), 60, clock=lambda: now[0], coalesce=timedelta(seconds=1))
    (_, written), (_, unaudited), (_, deleted) = parts(kd.events)
    logic.on_item(written)
    now[0] += 2
    out, _ = logic.on_notify()
    assert [cmd.record.get("Deleted_In_Kingdee") for kind, cmd in out if kind == "delivery"] == [False]
    logic.on_item(unaudited)
    logic.on_item(deleted)
    now[0] += 2
    out, _ = logic.on_notify()
    marks = [cmd for kind, cmd in out if kind == "delivery"]
    assert [(m.record, m.version) for m in marks] == [
        ({"Kingdee_Outbound_ID": "1", "Deleted_In_Kingdee": True}, deleted.version)]
    assert [cmd.record["delivered"] for kind, cmd in out if kind == "order"] == [{}]
