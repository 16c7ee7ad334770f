"""PolledCapture's decisions on a real database (SQLite through the query reader), Kafka left out: which documents
each poll, key-set cycle and full compare emit, and that a restart re-sends nothing it had committed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from connectors.kingdee.assembly import DocumentChange, Transaction
from connectors.kingdee.models import create_schema, metadata
from connectors.kingdee.polled_capture import PollConfig, PolledCapture
from connectors.kingdee.query_reader import QueryReader
from connectors.kingdee.row_types import RowTypes
from connectors.kingdee.source import MODE_KEY, CaptureConfig, KingdeeCdcSource, SlotInvalid
from core.settings import KafkaSettings
from infra.simulators.kingdee.erp import (
    OrderLine,
    delete_material,
    ensure_users,
    insert_customer,
    insert_material,
    insert_sales_order,
    update_material,
    update_order_line,
)

T0 = datetime(2026, 12, 7, 9, 0, 0)


class _NoEvolution:
    def unknown_columns(self, table: str, row: dict[str, Any]) -> list[str]:
        return []


class Recording(PolledCapture):
    """The capture with what it would produce recorded instead of sent."""

    events: list[tuple[str, str, str, bool]]

    def _prepare_kafka(self) -> None:
        self.evolver = _NoEvolution()  # type: ignore[assignment]
        self.events = []

    def _emit(self, change: DocumentChange, tx: Transaction, *, snapshot: bool) -> None:
        self.events.append((change.spec.name, change.op, change.doc_id, snapshot))

    def _acknowledge(self, cur: Any, lsn: int, *, batch: bool = False, meta: dict[str, str] | None = None) -> None:
        self.store.commit(lsn, **(meta or {}))

    def take(self) -> list[tuple[str, str, str, bool]]:
        events, self.events = self.events, []
        return events


@pytest.fixture()
def kingdee(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'kingdee.db'}")
    create_schema(engine)
    ensure_users(engine, T0)
    return engine


def capture(kingdee: Engine, tmp_path: Path, **poll: Any) -> Recording:
    config = CaptureConfig(dsn="", database="kingdee", slot="polled", kafka=KafkaSettings(),
                           registry_url="", state_dir=tmp_path / "state",
                           documents=["material", "customer", "sales_order"])
    source = Recording(config, RowTypes(metadata), QueryReader(kingdee),
                       PollConfig(**{"margin_s": 10.0, "resolution_s": 1.0, **poll}), "query")
    source._prepare_kafka()
    return source


def started(kingdee: Engine, tmp_path: Path, **poll: Any) -> Recording:
    source = capture(kingdee, tmp_path, **poll)
    source._snapshot()
    return source


def test_the_snapshot_sends_every_document_as_a_read_and_then_only_changes_are_sent(kingdee: Engine,
                                                                                      tmp_path: Path) -> None:
    a = insert_material(kingdee, "1.01.0001", "一次性使用喉罩", now=T0)
    b = insert_material(kingdee, "1.01.0002", "麻醉面罩", now=T0)
    source = started(kingdee, tmp_path)
    assert sorted((n, op, d) for n, op, d, snap in source.take() if snap and n == "material") == [
        ("material", "r", str(a)), ("material", "r", str(b))]

    source.poll_changes()  # the snapshot's documents at the newest time are read again: nothing differs
    assert source.take() == []
    update_material(kingdee, a, name="一次性使用喉罩（加强型）", now=T0 + timedelta(seconds=30))
    new = insert_material(kingdee, "1.01.0003", "吸痰管", now=T0 + timedelta(seconds=31))
    source.poll_changes()
    assert source.take() == [("material", "u", str(a), False), ("material", "c", str(new), False)]
    source.poll_changes()
    assert source.take() == [], "a re-read within the margin sends nothing"


def test_an_order_whose_entry_changed_is_sent_whole_once(kingdee: Engine, tmp_path: Path) -> None:
    customer = insert_customer(kingdee, "CUST0001", "北京协和医院")
    m1 = insert_material(kingdee, "1.01.0001", "一次性使用喉罩")
    order = insert_sales_order(kingdee, customer, [OrderLine(m1, 10, "20"), OrderLine(m1, 3, "25")])
    source = started(kingdee, tmp_path)
    source.take()
    update_order_line(kingdee, order.entry_ids[1], qty=4)  # a Kingdee save: the header's time moves
    source.poll_changes()
    assert source.take() == [("sales_order", "u", str(order.fid), False)]
    rows = source.store.rows("T_SAL_ORDERENTRY", str(order.fid))
    assert sorted(str(r["FQTY"]) for r in rows) == ["10.0000000000", "4.0000000000"]


def test_deletions_are_seen_by_the_key_set_comparison_and_inserts_behind_the_watermark_too(
        kingdee: Engine, tmp_path: Path) -> None:
    ids = [insert_material(kingdee, f"2.01.{i:04d}", f"呼吸过滤器 {i}", now=T0) for i in range(5)]
    source = started(kingdee, tmp_path, bucket_size=2)
    source.take()
    delete_material(kingdee, ids[3])
    late = insert_material(kingdee, "2.01.0999", "鼻氧管", now=T0 - timedelta(days=1))  # an old modified time
    source.poll_changes()
    assert source.take() == [], "a poll sees neither"
    before = source.reader.calls
    assert source.compare_keys() == 2
    assert sorted(source.take()) == sorted([("material", "d", str(ids[3]), False), ("material", "c", str(late), False)])
    assert source.compare_keys() == 0 and source.take() == []
    assert source.reader.calls - before < 20, "buckets that agree are not listed"


def test_a_change_that_did_not_move_the_modified_time_is_sent_by_the_full_compare(kingdee: Engine,
                                                                                  tmp_path: Path) -> None:
    a = insert_material(kingdee, "3.01.0001", "雾化器", now=T0)
    source = started(kingdee, tmp_path, margin_s=0.0, resolution_s=0.0)
    source.poll_changes()  # read once at its modified time: settled
    source.take()
    with kingdee.begin() as conn:  # a script, not a Kingdee save
        conn.execute(text('UPDATE "T_BD_MATERIAL_L" SET "FNAME" = \'雾化器（成人）\' WHERE "FMATERIALID" = :m'),
                     {"m": a})
    source.poll_changes()
    source.compare_keys()
    assert source.take() == []
    source.full_compare()
    assert source.take() == [("material", "u", str(a), False)]


def test_a_save_within_the_same_tick_after_a_read_is_read_again(kingdee: Engine, tmp_path: Path) -> None:
    a = insert_material(kingdee, "4.01.0001", "气管插管", now=T0)
    source = started(kingdee, tmp_path)
    source.take()
    update_material(kingdee, a, name="气管插管 6.5#", now=T0 + timedelta(seconds=20))
    source.poll_changes()
    assert source.take() == [("material", "u", str(a), False)]
    update_material(kingdee, a, name="气管插管 7.0#", now=T0 + timedelta(seconds=20))  # the same modified time
    source.poll_changes()
    assert source.take() == [("material", "u", str(a), False)]


def test_a_restart_resumes_from_the_committed_watermark_and_sends_nothing_twice(kingdee: Engine,
                                                                                tmp_path: Path) -> None:
    a = insert_material(kingdee, "5.01.0001", "麻醉面罩", now=T0)
    source = started(kingdee, tmp_path)
    update_material(kingdee, a, name="麻醉面罩 4#", now=T0 + timedelta(seconds=40))
    source.poll_changes()
    source.store.close()
    again = capture(kingdee, tmp_path)
    assert again.store.lsn is not None and again.store.get_meta(MODE_KEY) == "query"
    again.poll_changes()
    again.compare_keys()
    assert again.take() == [], "what was committed is not sent again"
    update_material(kingdee, a, name="麻醉面罩 5#", now=T0 + timedelta(seconds=50))
    again.poll_changes()
    assert again.take() == [("material", "u", str(a), False)]


def test_the_log_capture_refuses_a_store_a_polled_mode_wrote(kingdee: Engine, tmp_path: Path) -> None:
    insert_material(kingdee, "6.01.0001", "喉镜片", now=T0)
    started(kingdee, tmp_path).store.close()
    config = CaptureConfig(dsn="", database="kingdee", slot="polled", kafka=KafkaSettings(), registry_url="",
                           state_dir=tmp_path / "state")
    log_capture = KingdeeCdcSource(config, RowTypes(metadata))
    log_capture._prepare_kafka = lambda: None  # type: ignore[method-assign]
    with pytest.raises(SlotInvalid, match="written by the query capture mode"):
        log_capture.run()


def test_at_idle_documents_at_the_newest_times_are_read_again_only_for_a_while(kingdee: Engine,
                                                                              tmp_path: Path) -> None:
    insert_material(kingdee, "7.01.0001", "喉镜片", now=T0)
    insert_customer(kingdee, "CUST0701", "浙江省人民医院", now=T0 - timedelta(hours=1))  # another kind, older
    source = started(kingdee, tmp_path, margin_s=10.0, resolution_s=1.0)
    source.take()
    clock = [1000.0]
    source._clock = lambda: clock[0]
    read = source.poll_stats.documents_read
    source.poll_changes()
    assert source.poll_stats.documents_read > read, "the newest documents are read again at first"
    clock[0] += 5.0
    source.poll_changes()  # within resolution + margin: a save in the same tick could still follow
    clock[0] += 6.5
    read = source.poll_stats.documents_read
    source.poll_changes()
    source.poll_changes()
    assert source.poll_stats.documents_read == read, "idle: every kind settled, nothing is read"
    assert source.take() == []


def test_switching_from_the_log_capture_compares_everything_once_and_sends_only_what_differs(
        kingdee: Engine, tmp_path: Path) -> None:
    a = insert_material(kingdee, "8.01.0001", "呼吸回路", now=T0)
    b = insert_material(kingdee, "8.01.0002", "呼吸过滤器", now=T0)
    log_store = started(kingdee, tmp_path)  # stands in for the log capture's store: the same images
    log_store.store.commit(None, **{MODE_KEY: "log"})
    log_store.store.close()
    with kingdee.begin() as conn:  # changed while no capture ran, without a Kingdee save
        conn.execute(text('UPDATE "T_BD_MATERIAL_L" SET "FNAME" = \'呼吸回路（成人）\' WHERE "FMATERIALID" = :m'),
                     {"m": a})
    source = capture(kingdee, tmp_path, interval_s=0.01, margin_s=0.0, resolution_s=0.0)
    source.run(until_idle=True)
    assert source.events == [("material", "u", str(a), False)], f"only the changed one, not {b}"
    assert source.poll_stats.full_compares == 1
