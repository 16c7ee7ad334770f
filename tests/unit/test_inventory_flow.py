"""The inventory flow's aggregation and coalescing (flows/inventory.py), with Bytewax's TestingSource/TestingSink,
and its update sink against a faked CRM."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import bytewax.operators as op
import httpx
import pytest
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main
from pydantic import SecretStr

from connectors.common.dead_letters import DeadLetter
from connectors.common.retry import RetryPolicy
from connectors.zoho.client import ZohoClient
from connectors.zoho.settings import ZohoSettings
from connectors.zoho.update_sink import ZohoUpdatePartition
from core.ledger import Position, SyncLedger, open_engine
from flows.inventory import (
    RowChange,
    StockSum,
    StockTotal,
    StockWrite,
    StockWriteThrottle,
    ThrottleState,
    row_changes,
    stock_totals,
    throttled_writes,
    to_command,
)
from flows.kingdee_documents import DocumentEvent
from tests.unit.fakes import DeadLetterProducer

# --- building blocks ------------------------------------------------------------------------------------------


def row(fid: str, material: int, qty: int | str, stock: int = 1, lot: int = 0) -> dict[str, Any]:
    return {"FID": fid, "FMATERIALID": material, "FSTOCKID": stock, "FLOT": lot, "FBASEQTY": Decimal(qty),
            "material_number": f"M.{material}"}


class Db:
    """A tiny inventory table that produces the change events the capture would (op, before, after, LSN)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.lsn = 1000
        self.events: list[DocumentEvent] = []

    def _emit(self, fid: str, op_: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        self.lsn += 10
        env = {"op": op_, "before": before, "after": after,
               "source": {"lsn": self.lsn, "commit_time": 1_700_000_000_000 + self.lsn, "number": fid}}
        self.events.append(DocumentEvent(fid, env, Position("kingdee.inventory", 0, len(self.events))))

    def put(self, fid: str, material: int, qty: int | str, stock: int = 1, lot: int = 0) -> None:
        before = self.rows.get(fid)
        self.rows[fid] = row(fid, material, qty, stock, lot)
        self._emit(fid, "u" if before else "c", before, self.rows[fid])

    def add(self, fid: str, material: int, delta: int, stock: int = 1) -> None:
        current = self.rows.get(fid)
        qty = (current["FBASEQTY"] if current else Decimal(0)) + delta
        self.put(fid, material, qty, stock)

    def delete(self, fid: str) -> None:
        self._emit(fid, "d", self.rows.pop(fid), None)

    def sums(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for r in self.rows.values():
            out[str(r["FMATERIALID"])] = out.get(str(r["FMATERIALID"]), Decimal(0)) + r["FBASEQTY"]
        return out


def keyed_changes(events: list[DocumentEvent]) -> list[tuple[str, RowChange]]:
    out: list[tuple[str, RowChange]] = []
    for e in events:
        for key, change in row_changes(e):
            assert isinstance(change, RowChange)
            out.append((key, change))
    return out


def run_totals(items: list[Any], recovery: RecoveryConfig | None = None) -> list[tuple[str, StockTotal]]:
    flow = Dataflow("inventory_sum_test")
    changes = op.input("in", flow, TestingSource(items))
    out: list[tuple[str, StockTotal]] = []
    op.output("out", stock_totals(changes), TestingSink(out))  # type: ignore[arg-type]
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    return out


def last_per_material(totals: list[tuple[str, StockTotal]]) -> dict[str, Decimal]:
    return {k: t.qty for k, t in totals}


# --- row changes ----------------------------------------------------------------------------------------------


def test_a_row_moving_to_another_material_leaves_the_old_one() -> None:
    db = Db()
    db.put("a", 1, 5)
    db.put("a", 2, 5)
    (first,), (left, joined) = (row_changes(e) for e in db.events)
    assert first[0] == "1" and first[1].qty == Decimal(5)  # type: ignore[union-attr]
    assert left[0] == "1" and left[1].qty is None  # type: ignore[union-attr]
    assert joined[0] == "2" and joined[1].qty == Decimal(5)  # type: ignore[union-attr]


def test_a_row_without_material_is_a_dead_letter() -> None:
    db = Db()
    db.put("a", 0, 5)
    ((_, letter),) = row_changes(db.events[0])
    assert isinstance(letter, DeadLetter) and "names no material" in letter.error


# --- the sum ----------------------------------------------------------------------------------------------------


def test_totals_across_warehouses_and_lots_and_a_deleted_row() -> None:
    db = Db()
    db.put("a", 1, 10, stock=1, lot=1)
    db.put("b", 1, 5, stock=2, lot=1)
    db.put("c", 1, 7, stock=2, lot=2)
    db.put("d", 2, 3)
    db.add("b", 1, -2)
    db.delete("c")
    totals = run_totals(keyed_changes(db.events))
    assert [t.qty for k, t in totals if k == "1"] == [10, 15, 22, 20, 13]
    assert last_per_material(totals) == {"1": Decimal(13), "2": Decimal(3)}
    assert totals[-1][1].version == db.lsn, "versioned by the newest LSN included"


def test_a_moved_row_and_a_material_emptied_to_zero() -> None:
    db = Db()
    db.put("a", 1, 4)
    db.put("b", 1, 6)
    db.put("a", 2, 4)  # row a now belongs to material 2
    db.delete("b")
    assert last_per_material(run_totals(keyed_changes(db.events))) == {"1": Decimal(0), "2": Decimal(4)}


def test_stale_and_duplicate_row_images_change_nothing() -> None:
    db = Db()
    db.put("a", 1, 4)
    db.put("a", 1, 9)
    db.delete("a")
    db.put("b", 1, 1)
    changes = keyed_changes(db.events)
    # A capture re-send after a crash: the first three events again, after the newer ones.
    totals = run_totals([*changes, *changes[:3]])
    assert [t.qty for _, t in totals] == [4, 9, 0, 1], "replayed older images of a deleted row are ignored"


def test_out_of_order_rows_of_one_material_keep_the_highest_version() -> None:
    db = Db()
    db.put("a", 1, 4)
    db.put("b", 1, 6)
    first, second = keyed_changes(db.events)
    totals = run_totals([second, first])  # rows of one material in two partitions, read in the other order
    assert [(t.qty, t.version) for _, t in totals] == [(6, second[1].version), (10, second[1].version)]


def test_state_is_dropped_when_a_material_has_no_rows_left() -> None:
    now = [100.0]
    logic = StockSum(None, clock=lambda: now[0], retire_after=timedelta(seconds=60))
    db = Db()
    db.put("a", 1, 4)
    db.delete("a")
    (_, put), (_, gone) = keyed_changes(db.events)
    assert logic.on_item(put)[1] is False
    emitted, discard = logic.on_item(gone)
    assert [t.qty for t in emitted] == [0] and discard is False, "the tombstone is kept for a while"
    assert logic.notify_at() is not None
    now[0] += 61
    assert logic.on_notify() == ([], True), "then the state is dropped"


def test_sums_are_right_after_a_crash_and_resume_from_recovery(tmp_path: Path) -> None:
    rng = random.Random(7)
    db = Db()
    for i in range(300):
        material = rng.randint(1, 5)
        fid = f"{material}-{rng.randint(1, 4)}"
        if fid in db.rows and rng.random() < 0.1:
            db.delete(fid)
        else:
            db.add(fid, material, rng.randint(-5, 20))
        assert i >= 0
    changes: list[Any] = keyed_changes(db.events)
    items = [*changes[:150], TestingSource.ABORT(), *changes[150:]]
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    out: list[tuple[str, StockTotal]] = []
    flow = Dataflow("inventory_recovery_test")
    op.output("out", stock_totals(op.input("in", flow, TestingSource(items))), TestingSink(out))  # type: ignore[arg-type]
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)
    assert len(out) < len(changes), "the first run stopped mid-stream"
    run_main(flow, epoch_interval=timedelta(0), recovery_config=recovery)  # resumes from the snapshot
    assert last_per_material(out) == db.sums()


# --- coalescing ------------------------------------------------------------------------------------------------


def total(material: str, qty: int, version: int) -> StockTotal:
    return StockTotal(material, f"M.{material}", Decimal(qty), version, 0, Position("t", 0, version), 1)


def test_a_burst_becomes_one_write_per_interval_with_the_newest_total() -> None:
    now = [0.0]
    logic = StockWriteThrottle(None, lambda m: f"z{m}", clock=lambda: now[0], interval=timedelta(seconds=1))
    writes: list[StockWrite | DeadLetter] = []
    for i in range(250):  # 250 changes over 2.5 s
        now[0] = i * 0.01
        writes += logic.on_item(total("1", i, 10 + i))[0]
        notify = logic.notify_at()
        if notify is not None and notify.timestamp() <= now[0]:
            writes += logic.on_notify()[0]
    now[0] = 3.0
    writes += logic.on_notify()[0]
    assert [w.total.qty for w in writes if isinstance(w, StockWrite)] == [0, 100, 200, 249]
    now[0] = 4.5
    assert logic.on_notify() == ([], True), "quiet for an interval: the state goes"


def test_an_older_total_never_replaces_a_pending_newer_one() -> None:
    now = [0.0]
    logic = StockWriteThrottle(None, lambda m: "z1", clock=lambda: now[0], interval=timedelta(seconds=1))
    logic.on_item(total("1", 1, 10))
    logic.on_item(total("1", 5, 30))
    logic.on_item(total("1", 3, 20))
    now[0] = 1.0
    (write,), _ = logic.on_notify()
    assert isinstance(write, StockWrite) and write.total.qty == 5


def test_stock_of_a_material_not_in_the_crm_waits_for_it_without_dead_letters() -> None:
    now = [0.0]
    known: dict[str, str] = {}
    logic = StockWriteThrottle(None, known.get, clock=lambda: now[0], interval=timedelta(seconds=1),
                               give_up=timedelta(seconds=10))
    assert logic.on_item(total("1", 4, 10))[0] == []
    now[0] = 1.0
    assert logic.on_notify()[0] == [], "retried a moment later"
    known["1"] = "z1"  # the materials flow has synced it meanwhile
    now[0] = logic.notify_at().timestamp()  # type: ignore[union-attr]
    (write,), _ = logic.on_notify()
    assert isinstance(write, StockWrite) and write.target_id == "z1"

    # a material that is not audited: its stock waits, looked up less and less often, never a dead letter
    draft = StockWriteThrottle(ThrottleState(), known.get, clock=lambda: now[0], give_up=timedelta(seconds=10))
    draft.on_item(total("2", 4, 10))
    lookups = 0
    while now[0] < 3600:
        now[0] = draft.notify_at().timestamp()  # type: ignore[union-attr]
        assert list(draft.on_notify()[0]) == []
        lookups += 1
    assert lookups <= 10 + 3600 / 30, "backoff, then parked: not a busy loop"
    assert draft.state.parked and draft.state.pending is not None
    known["2"] = "z2"  # the clerk audits it; the materials flow creates the product
    now[0] = draft.notify_at().timestamp()  # type: ignore[union-attr]
    (write,), _ = draft.on_notify()
    assert isinstance(write, StockWrite) and (write.target_id, write.total.qty) == ("z2", 4)
    assert not draft.state.parked


def test_stock_of_a_material_the_materials_flow_dead_lettered_is_a_dead_letter_naming_it() -> None:
    now = [0.0]
    refused = {"3": "PermanentError: unknown unit code"}
    logic = StockWriteThrottle(None, {}.get, clock=lambda: now[0], refused=refused.get)
    (letter,), _ = logic.on_item(total("3", 4, 10))
    assert isinstance(letter, DeadLetter) and letter.stage == "resolve"
    assert "material M.3" in letter.error and "unknown unit code" in letter.error


def test_the_pipeline_burst_of_200_moves_across_5_materials() -> None:
    rng = random.Random(3)
    db = Db()
    for _ in range(200):
        material = rng.randint(1, 5)
        db.add(f"{material}-{rng.randint(1, 3)}", material, rng.randint(-3, 10))
    flow = Dataflow("inventory_burst_test")
    changes = op.input("in", flow, TestingSource(keyed_changes(db.events), batch_size=20))
    out: list[tuple[str, StockWrite | DeadLetter]] = []
    writes = throttled_writes(stock_totals(changes), lambda m: f"z{m}", interval=timedelta(seconds=5))
    op.output("out", writes, TestingSink(out))  # type: ignore[arg-type]
    run_main(flow)
    per_material = Counter(k for k, _ in out)
    assert max(per_material.values()) <= 2, per_material  # the first change at once, the rest as one write
    final = {k: w.total.qty for k, w in out if isinstance(w, StockWrite)}
    assert final == db.sums()


# --- the update sink ----------------------------------------------------------------------------------------------


class FakeCrm:
    def __init__(self, missing: set[str] | None = None) -> None:
        self.puts: list[list[dict[str, Any]]] = []
        self.missing = missing or set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        records = json.loads(request.content)["data"]
        self.puts.append(records)
        results = [{"code": "INVALID_DATA", "status": "error", "message": "the id given seems to be invalid",
                    "details": {"id": r["id"]}} if r["id"] in self.missing else
                   {"code": "SUCCESS", "status": "success", "details": {"id": r["id"]}} for r in records]
        return httpx.Response(200, json={"data": results})


@pytest.fixture()
def sink(tmp_path: Path):  # type: ignore[no-untyped-def]
    crm = FakeCrm({"zgone"})
    settings = ZohoSettings(accounts_url="http://crm", api_domain="http://crm", client_secret=SecretStr("s"),
                            refresh_token=SecretStr("r"))
    client = ZohoClient(settings, httpx.Client(transport=httpx.MockTransport(crm)))
    ledger = SyncLedger(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), "inventory", "zoho")
    dlq = DeadLetterProducer()
    part = ZohoUpdatePartition(client, ledger, dlq, "inventory", "Products",
                               RetryPolicy(first_delay_s=0.001, max_delay_s=0.002, give_up_after_s=5))
    return crm, ledger, dlq, part


def test_the_sink_updates_by_crm_id_and_a_replay_writes_nothing(sink) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, _, part = sink
    commands = [to_command(StockWrite(total(str(m), 10 * m, 100 + m), f"z{m}")) for m in range(1, 4)]
    part.write_batch(commands)
    assert crm.puts == [[{"id": f"z{m}", "Qty_in_Stock": 10.0 * m} for m in range(1, 4)]]
    part.write_batch(commands)  # a replay (recovery, or the topic read again)
    part.write_batch([to_command(StockWrite(total("1", 99, 50), "z1"))])  # an older total
    assert len(crm.puts) == 1
    assert ledger.counts() == {"synced": 3}


def test_a_refused_record_is_isolated_and_dead_lettered(sink) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, part = sink
    part.write_batch([to_command(StockWrite(total("1", 1, 10), "z1")),
                      to_command(StockWrite(total("2", 2, 10), "zgone"))])
    assert ledger.counts() == {"synced": 1, "failed": 1}
    (letter,) = [json.loads(v) for v in dlq.values]
    assert letter["source"]["key"] == "2" and "INVALID_DATA" in letter["error"]
    assert [len(p) for p in crm.puts] == [2, 1, 1]


def test_a_notification_before_its_time_neither_writes_nor_drops_the_spacing() -> None:
    now = [5.2]
    logic = StockWriteThrottle(None, lambda m: "z1", clock=lambda: now[0], interval=timedelta(seconds=1))
    (first,), _ = logic.on_item(total("1", 1, 10))
    assert isinstance(first, StockWrite)
    assert logic.on_notify() == ([], False), "Bytewax may call it with the time asked for before the item"
    now[0] = 5.3
    assert logic.on_item(total("1", 2, 11))[0] == []
    assert logic.notify_at().timestamp() == 7.0  # type: ignore[union-attr]  # the grid tick ≥ 0.9 s later
