"""Figures from the ledger for ``cdchub status`` and the console: records captured, synced, in error, latency, and
the writes per minute of the last hour (the console's sparklines)."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from connectors.settings import Settings
from core.ledger import SUPERSEDED, open_engine, sync_history, sync_ledger


@dataclass
class Snapshot:
    captured: int
    snapshot: int
    capture_dead: int
    synced: int
    failed: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    last_applied_ms: int | None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def capture_stats(state_dir: Path) -> dict[str, Any]:
    try:
        stats = json.loads((state_dir / "capture-stats.json").read_text())
    except (OSError, ValueError):
        return {}
    return stats if isinstance(stats, dict) else {}


def rate_history(engine: Engine, minutes: int = 60, now_ms: int | None = None) -> dict[str, list[int]]:
    """Per flow, the writes and failures of each of the last ``minutes`` minutes, oldest first, from the ledger's
    history (the console's sparklines; versions coalesced into newer ones are not writes and not counted)."""
    now_minute = (now_ms or int(time.time() * 1000)) // 60_000
    first = now_minute - minutes + 1
    h = sync_history.c
    bucket = h.at_ms // 60_000
    with engine.connect() as conn:
        rows = conn.execute(select(h.flow, bucket, func.count())
                            .where(h.at_ms >= first * 60_000, or_(h.action.is_(None), h.action != SUPERSEDED))
                            .group_by(h.flow, bucket)).all()
    out: dict[str, list[int]] = {}
    for flow, minute, n in rows:
        index = int(minute) - first
        if 0 <= index < minutes:
            out.setdefault(str(flow), [0] * minutes)[index] += int(n)
    return out


_engines: dict[str, Engine] = {}


def _engine(settings: Settings) -> Engine:
    """One ledger engine per URL for the life of the process (the live view asks every second)."""
    url = settings.ledger_database_url()
    if url not in _engines:
        _engines[url] = open_engine(url)
    return _engines[url]


def take(settings: Settings, flow: str | list[str], window: int = 500) -> Snapshot:
    """Figures of one flow, or of several added up."""
    flows = [flow] if isinstance(flow, str) else list(flow)
    stats = capture_stats(settings.state_dir)
    t = sync_ledger.c
    # latency of what was applied in the last two minutes (commit in Kingdee → applied in the target)
    since = int(time.time() * 1000) - 120_000
    with _engine(settings).connect() as conn:
        counts: dict[str, int] = {str(s): int(n) for s, n in conn.execute(
            select(t.status, func.count()).where(t.flow.in_(flows)).group_by(t.status))}
        recent = conn.execute(
            select(t.captured_at_ms, t.applied_at_ms).where(
                t.flow.in_(flows), t.applied_at_ms >= since, t.captured_at_ms.is_not(None), t.action != "unchanged")
            .order_by(t.applied_at_ms.desc()).limit(window)).all()
    lat = [float(r.applied_at_ms - r.captured_at_ms) for r in recent]
    return Snapshot(
        captured=int(stats.get("events", 0)) - int(stats.get("snapshot_events", 0)),
        snapshot=int(stats.get("snapshot_events", 0)),
        capture_dead=int(stats.get("dead_letters", 0)), synced=int(counts.get("synced", 0)),
        failed=int(counts.get("failed", 0)),
        latency_p50_ms=percentile(lat, 50), latency_p95_ms=percentile(lat, 95),
        latency_max_ms=max(lat) if lat else None,
        last_applied_ms=recent[0].applied_at_ms if recent else None,
    )


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.0f}ms" if v < 10_000 else f"{v / 1000:.0f}s")


def line(s: Snapshot) -> str:
    return (
        f"captured {s.captured} changes (+{s.snapshot} snapshot)  synced {s.synced}  "
        f"in error {s.failed + s.capture_dead}  "
        f"latency p50 {_ms(s.latency_p50_ms)} p95 {_ms(s.latency_p95_ms)} max {_ms(s.latency_max_ms)}"
    )
