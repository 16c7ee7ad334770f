"""The document store's rows in memory: what is read is what was written, committed or not; a rollback forgets;
eviction at any size changes nothing but speed."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.kingdee.document_store import DocumentStore


def typed(table: str, row: dict[str, Any]) -> dict[str, Any]:
    return {k: (int(v) if isinstance(v, str) and v.isdigit() else v) for k, v in row.items()}


@pytest.mark.parametrize("cache_rows", [1, 7, 10_000])
def test_random_changes_read_back_as_a_plain_dict_would_at_any_cache_size(tmp_path: Path, cache_rows: int) -> None:
    rnd = random.Random(cache_rows)
    store = DocumentStore(tmp_path / "s.sqlite", cache_rows=cache_rows)
    model: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    committed: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for step in range(2_000):
        table, doc, pk = rnd.choice(["H", "E"]), str(rnd.randint(1, 40)), str(rnd.randint(1, 5))
        action = rnd.random()
        if action < 0.5:
            row = {"FID": doc, "FPK": pk, "FNAME": f"物料 {step}", "FBILLNO": f"XSCK{doc}"}
            store.put(table, pk, doc, row)
            model.setdefault((table, doc), {})[pk] = row
        elif action < 0.7:
            store.delete(table, doc, pk)
            model.get((table, doc), {}).pop(pk, None)
        elif action < 0.8:
            store.commit(step)
            committed = {k: dict(v) for k, v in model.items()}
        elif action < 0.83:
            store.write_pending()  # what the stream does when it has nothing to read: still uncommitted
        elif action < 0.86:
            store.rollback()
            model = {k: dict(v) for k, v in committed.items()}
        else:
            expected = [model.get((table, doc), {})[k] for k in sorted(model.get((table, doc), {}))]
            assert store.rows(table, doc) == expected
            assert store.typed_rows(table, doc, typed) == [typed(table, r) for r in expected]
    for (table, doc), rows in model.items():
        assert store.rows(table, doc) == [rows[k] for k in sorted(rows)]
    assert sorted(store.row_keys("H")) == sorted((d, pk) for (t, d), rows in model.items() if t == "H" for pk in rows)


def test_values_json_cannot_hold_read_back_typed_as_they_were(tmp_path: Path) -> None:
    """Rows are kept as JSON: non-finite floats travel as text (typing makes them floats again), an integer beyond 64
    bits as JSON, Chinese and emoji as they are; a store an older version wrote (``NaN`` tokens) still reads."""
    import sqlite3

    from connectors.kingdee.assembly import wire_row

    store = DocumentStore(tmp_path / "s.sqlite", cache_rows=1)  # rows are read back from SQLite, not from memory
    row = {"FID": 1, "FQTY": float("nan"), "FMAX": float("inf"), "FBIG": 2**70, "FNAME": "麻醉面罩 😷", "FX": 1.5}
    store.put("T", "1", "1", wire_row(row))
    store.put("T", "2", "2", {"FID": 2})  # evicts document 1
    store.commit(1)
    store.close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("""INSERT INTO row_image (tbl, doc, pk, data) VALUES ('T', '3', '3', '{"FQTY": NaN}')""")
    again = DocumentStore(tmp_path / "s.sqlite", cache_rows=1)
    got = again.rows("T", "1")[0]
    assert got == {"FID": 1, "FQTY": "nan", "FMAX": "inf", "FBIG": 2**70, "FNAME": "麻醉面罩 😷", "FX": 1.5}
    assert float(got["FQTY"]) != float(got["FQTY"]) and float(got["FMAX"]) == float("inf")
    old = again.rows("T", "3")[0]["FQTY"]
    assert old != old  # NaN


def test_committed_rows_survive_a_reopen_and_uncommitted_do_not(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.sqlite")
    store.put("T_BD_MATERIAL", "1", "1", {"FMATERIALID": 1, "FNUMBER": "1.01"})
    store.commit(10)
    store.put("T_BD_MATERIAL", "2", "2", {"FMATERIALID": 2, "FNUMBER": "1.02"})
    store.write_pending()
    assert store.has_pending() is False
    store.close()
    again = DocumentStore(tmp_path / "s.sqlite")
    assert again.lsn == 10
    assert again.rows("T_BD_MATERIAL", "1") == [{"FMATERIALID": 1, "FNUMBER": "1.01"}]
    assert again.rows("T_BD_MATERIAL", "2") == []


def test_typed_rows_are_typed_again_after_the_rows_change(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.sqlite")
    calls: list[str] = []

    def counting(table: str, row: dict[str, Any]) -> dict[str, Any]:
        calls.append(table)
        return typed(table, row)

    store.put("T", "1", "9", {"FQTY": "5"})
    assert store.typed_rows("T", "9", counting) == [{"FQTY": 5}]
    assert store.typed_rows("T", "9", counting) == [{"FQTY": 5}]
    assert len(calls) == 1
    store.put("T", "1", "9", {"FQTY": "6"})
    assert store.typed_rows("T", "9", counting) == [{"FQTY": 6}]
    store.forget_typed()
    store.typed_rows("T", "9", counting)
    assert len(calls) == 3


def test_lookups_by_bill_number_and_reference_see_uncommitted_rows(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.sqlite")
    store.index_references([("T_SAL_OUTSTOCK", "FBILLNO"), ("T_SAL_ORDER", "FCUSTID")])
    store.put("T_SAL_OUTSTOCK", "7", "7", {"FID": 7, "FBILLNO": "XSCKD000123"})
    store.put("T_SAL_ORDER", "8", "8", {"FID": 8, "FCUSTID": 100200})
    assert store.doc_by_bill_no("T_SAL_OUTSTOCK", "XSCKD000123") == "7"
    assert store.docs_referencing("T_SAL_ORDER", "FCUSTID", "100200") == ["8"]
    store.rollback()
    assert store.doc_by_bill_no("T_SAL_OUTSTOCK", "XSCKD000123") is None


def test_a_position_counts_as_durable_only_after_a_sync_that_started_once_it_was_committed(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "s.sqlite")
    store.commit(5)
    assert store.durable_lsn is None, "committed, not yet synced"
    deadline = time.monotonic() + 10
    while store.make_durable() != 5:
        assert time.monotonic() < deadline, "the sync of position 5 never finished"
    store.commit(9)
    assert store.make_durable() == 5, "9 is committed after the last sync started"
    store.close()
    assert DocumentStore(tmp_path / "s.sqlite").durable_lsn == 9, "a reopened store syncs before it counts"


def test_a_failing_sync_keeps_the_position_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    store = DocumentStore(tmp_path / "s.sqlite")
    store.commit(5)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("connectors.kingdee.document_store.os.fsync", broken_fsync)
    deadline = time.monotonic() + 10
    while not store.sync_problem():
        assert time.monotonic() < deadline, "a failed sync is not reported"
        assert store.make_durable() is None, "nothing counts as durable while syncs fail"
        time.sleep(0.01)
    assert "Input/output error" in store.sync_problem() and "s.sqlite" in store.sync_problem()
    assert "fsync of" in caplog.text and "not confirmed" in caplog.text

    monkeypatch.undo()
    while store.make_durable() != 5:
        assert time.monotonic() < deadline, "the position does not move once syncs work again"
        time.sleep(0.01)
    assert store.sync_problem() == ""
    store.close()
