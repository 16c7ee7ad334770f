"""One setting chooses how Kingdee is captured: ``cdchub capture`` (and so ``cdchub run``) starts the log capture or
a polled one with the reader of that mode and its poll settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cdchub import capture_modes
from connectors.kingdee.polled_capture import PolledCapture
from connectors.kingdee.query_reader import QueryReader
from connectors.kingdee.settings import CaptureSettings
from connectors.kingdee.source import KingdeeCdcSource
from connectors.settings import Settings


@pytest.fixture()
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    ran: list[Any] = []
    monkeypatch.setattr(KingdeeCdcSource, "run", lambda self, until_idle=False: ran.append(self))
    monkeypatch.setattr(PolledCapture, "run", lambda self, until_idle=False: ran.append(self))
    return ran


def settings(tmp_path: Path, **capture: Any) -> Settings:
    return Settings(state_dir=tmp_path, capture=CaptureSettings(**capture))


def test_the_log_capture_by_default(tmp_path: Path, started: list[Any]) -> None:
    capture_modes.capture(settings(tmp_path))
    [source] = started
    assert type(source) is KingdeeCdcSource


def test_the_query_mode_from_the_setting_with_its_database_and_poll_settings(tmp_path: Path,
                                                                             started: list[Any]) -> None:
    capture_modes.capture(settings(tmp_path, mode="query", query_url=f"sqlite:///{tmp_path / 'erp.db'}",
                                   keyset_interval_s=7, margin_s=3))
    [source] = started
    assert isinstance(source, PolledCapture) and source.mode == "query"
    assert isinstance(source.reader, QueryReader) and str(source.reader.engine.url).endswith("erp.db")
    assert (source.poll.interval_s, source.poll.keyset_interval_s, source.poll.margin_s) == (1.0, 7, 3)


def test_the_command_line_mode_wins_over_the_setting(tmp_path: Path, started: list[Any]) -> None:
    capture_modes.capture(settings(tmp_path, mode="query", query_url="sqlite://"), mode="log")
    assert type(started[0]) is KingdeeCdcSource


def test_the_webapi_polls_every_five_seconds_unless_told(tmp_path: Path) -> None:
    assert CaptureSettings(mode="webapi").poll_interval_s() == 5.0
    assert CaptureSettings(mode="webapi", interval_s=2).poll_interval_s() == 2.0
    with pytest.raises(ValueError):
        CaptureSettings(mode="binlog")  # type: ignore[arg-type]


def test_status_shows_what_a_polled_capture_costs_its_source_and_nothing_for_the_log() -> None:
    from cdchub.flow_status import capture_mode_line

    assert capture_mode_line({"events": 5}) is None
    started = int((time.time() - 120) * 1000)
    text = capture_mode_line({"mode": "query", "polls": 118, "source_calls": 1680, "source_rows": 2400,
                              "documents_read": 60, "started_ms": started})
    assert text == ("capture mode query: 118 polls, 1680 statements (840/min since the start), 2400 rows and 60 "
                    "documents read")
    assert "API calls" in (capture_mode_line({"mode": "webapi", "started_ms": started}) or "")
