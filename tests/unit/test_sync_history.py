"""The ledger's history: every write and failure of a document, in order, without the writes that changed nothing."""

from __future__ import annotations

from pathlib import Path

from core.ledger import HISTORY_DAYS, Position, SyncLedger, history, open_engine, sync_history

POS = Position("t", 0, 7)


def row(key: str, version: int, action: str, target: str = "T1") -> dict[str, object]:
    return dict(source_key=key, source_version=version, source_number="XSDD000001", target_id=target,
                fingerprint=f"f{version}", action=action, attempts=1, position=POS, captured_at_ms=1_000)


def test_each_write_and_failure_is_kept_in_order_and_unchanged_ones_are_not(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    orders, deliveries = SyncLedger(engine, "sales_orders", "zoho"), SyncLedger(engine, "deliveries", "zoho")
    orders.record_applied_many([row("1", 10, "insert"), row("2", 10, "insert", "T2")])
    orders.record_applied_many([row("1", 11, "unchanged")])
    orders.record_failed("1", 12, error="ZOHO INVALID_DATA", attempts=3, position=POS, captured_at_ms=1_500)
    orders.record_applied_many([row("1", 13, "update")])
    deliveries.record_applied_many([row("1", 14, "insert", "D1")])

    past = history(engine, ["1"])
    assert [(h.flow, h.source_version, h.status, h.action, h.target_id) for h in past] == [
        ("sales_orders", 10, "synced", "insert", "T1"), ("sales_orders", 12, "failed", None, None),
        ("sales_orders", 13, "synced", "update", "T1"), ("deliveries", 14, "synced", "insert", "D1")]
    assert past[1].error == "ZOHO INVALID_DATA" and past[0].kafka_offset == 7
    assert orders.entries(["1"])["1"].source_version == 13, "the ledger itself keeps the latest only"


def test_history_older_than_the_retention_is_pruned_by_the_writers(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.begin() as conn:
        conn.execute(sync_history.insert(), [dict(flow="materials", source_key="old", target_system="zoho",
                                                  source_version=1, status="synced", at_ms=0)])
    SyncLedger._pruned_at_ms = 0
    SyncLedger(engine, "materials", "zoho").record_applied_many([row("new", 1, "insert")])
    assert [h.source_key for h in history(engine, ["old", "new"])] == ["new"]
    assert HISTORY_DAYS >= 1
