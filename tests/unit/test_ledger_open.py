"""Flows open the SQLite ledger at once: a new file is turned to WAL by one of them, and none is refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from core import ledger
from core.ledger import SyncLedger, open_engine


class _Cursor:
    """A ledger file's journal mode; the switch refused ``refusals`` times, as a concurrent open refuses it."""

    def __init__(self, mode: str, refusals: int = 0) -> None:
        self.mode, self.refusals, self.switches = mode, refusals, 0
        self._last: list[tuple[str]] = []

    def execute(self, sql: str) -> _Cursor:
        if sql == "PRAGMA journal_mode=WAL":
            self.switches += 1
            if self.refusals:
                self.refusals -= 1
                raise sqlite3.OperationalError("database is locked")
            self.mode = "wal"
        self._last = [(self.mode,)]
        return self

    def fetchone(self) -> tuple[str]:
        return self._last[0]


def test_a_file_already_in_wal_is_not_switched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    cur = _Cursor("wal")
    ledger._wal(cur)
    assert cur.switches == 0, "no switch, so no lock that another process's open could refuse"


def test_a_refused_switch_is_tried_again_and_a_lasting_refusal_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger.time, "sleep", lambda s: None)
    cur = _Cursor("delete", refusals=3)
    ledger._wal(cur)
    assert cur.mode == "wal" and cur.switches == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        ledger._wal(_Cursor("delete", refusals=ledger.WAL_ATTEMPTS))


def test_flows_opening_a_new_ledger_at_once_all_get_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    start, errors = threading.Barrier(8), []

    def open_and_write(n: int) -> None:
        start.wait()
        try:
            engine = open_engine(url)
            SyncLedger(engine, f"flow-{n}", "zoho").entries([f"key-{n}"])
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        mode: Any = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
