"""``cdchub capture --mode log|query|webapi``: the capture a Kingdee installation allows, from the settings.

``log`` reads PostgreSQL's write-ahead log (``connectors/kingdee/source.py``); ``query`` polls the Kingdee database
through SQLAlchemy (``query_reader.py``), ``webapi`` polls Kingdee's WebAPI (``webapi_reader.py``), both through
``polled_capture.py``.  All three write the same events to the same topics (docs/capture-modes.md).
"""

from __future__ import annotations

import signal

from sqlalchemy import create_engine

from cdchub.kingdee_db import capture_config
from connectors.kingdee.document_reader import DocumentReader
from connectors.kingdee.document_store import DocumentStore
from connectors.kingdee.models import metadata
from connectors.kingdee.polled_capture import PollConfig, PolledCapture
from connectors.kingdee.row_types import RowTypes
from connectors.kingdee.source import CaptureStats, KingdeeCdcSource
from connectors.settings import Settings

MODES = ("log", "query", "webapi")


def reader_for(settings: Settings, mode: str) -> DocumentReader:
    """The source a polled mode reads: the database by SQLAlchemy URL, or the WebAPI."""
    if mode == "query":
        from connectors.kingdee.query_reader import QueryReader

        url = settings.capture.query_url
        engine = create_engine(url.get_secret_value() if url else settings.kingdee_db.sqlalchemy_url(),
                               pool_pre_ping=True)
        return QueryReader(engine, schema=settings.capture.query_schema)
    if mode == "webapi":
        from connectors.kingdee.webapi_reader import webapi_reader

        return webapi_reader(settings)
    raise ValueError(f"no reader for capture mode {mode!r} (one of {', '.join(MODES)})")


def poll_config(settings: Settings) -> PollConfig:
    c = settings.capture
    return PollConfig(interval_s=c.poll_interval_s(), margin_s=c.margin_s, resolution_s=c.resolution_s,
                      keyset_interval_s=c.keyset_interval_s, full_compare_interval_s=c.full_compare_interval_s,
                      bucket_size=c.bucket_size)


def capture(settings: Settings, *, mode: str | None = None, documents: list[str] | None = None,
            until_idle: bool = False, accept_gap: bool = False, resnapshot: bool = False) -> CaptureStats:
    """Run the capture of ``mode`` (default: the setting) until stopped (SIGINT/SIGTERM) or idle."""
    mode = mode or settings.capture.mode
    config = capture_config(settings, documents)
    config.accept_gap = accept_gap
    if resnapshot:
        store = DocumentStore(config.state_dir / f"capture-{config.slot}.sqlite")
        store.clear()
        store.commit()
        store.close()
    types = RowTypes(metadata)
    source = (KingdeeCdcSource(config, types) if mode == "log"
              else PolledCapture(config, types, reader_for(settings, mode), poll_config(settings), mode))
    signal.signal(signal.SIGTERM, source.stop)
    signal.signal(signal.SIGINT, source.stop)
    source.run(until_idle=until_idle)
    return source.stats
