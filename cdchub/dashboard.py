"""The live view of ``cdchub run``: records captured, synced, in error, and end-to-end latency."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from cdchub.ledger import open_engine, sync_ledger
from cdchub.settings import Settings


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


def _capture_stats(state_dir: Path) -> dict[str, int]:
    try:
        return json.loads((state_dir / "capture-stats.json").read_text())
    except (OSError, ValueError):
        return {}


def take(settings: Settings, flow: str | list[str], window: int = 500) -> Snapshot:
    """Figures of one flow, or of several added up."""
    flows = [flow] if isinstance(flow, str) else list(flow)
    stats = _capture_stats(settings.state_dir)
    engine = open_engine(settings.ledger_database_url())
    t = sync_ledger.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.status, t.action, t.captured_at_ms, t.applied_at_ms).where(t.flow.in_(flows))
        ).all()
    engine.dispose()
    synced = sum(1 for r in rows if r.status == "synced")
    failed = sum(1 for r in rows if r.status == "failed")
    # latency of what was applied in the last two minutes (commit in Kingdee → applied in the target)
    since = int(time.time() * 1000) - 120_000
    recent = sorted((r for r in rows if r.applied_at_ms and r.captured_at_ms and r.action != "unchanged"
                     and r.applied_at_ms >= since), key=lambda r: r.applied_at_ms)[-window:]
    lat = [float(r.applied_at_ms - r.captured_at_ms) for r in recent]
    return Snapshot(
        captured=int(stats.get("events", 0)) - int(stats.get("snapshot_events", 0)),
        snapshot=int(stats.get("snapshot_events", 0)),
        capture_dead=int(stats.get("dead_letters", 0)), synced=synced, failed=failed,
        latency_p50_ms=percentile(lat, 50), latency_p95_ms=percentile(lat, 95),
        latency_max_ms=max(lat) if lat else None,
        last_applied_ms=recent[-1].applied_at_ms if recent else None,
    )


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.0f}ms" if v < 10_000 else f"{v / 1000:.0f}s")


def line(s: Snapshot) -> str:
    return (
        f"captured {s.captured} changes (+{s.snapshot} snapshot)  synced {s.synced}  "
        f"in error {s.failed + s.capture_dead}  "
        f"latency p50 {_ms(s.latency_p50_ms)} p95 {_ms(s.latency_p95_ms)} max {_ms(s.latency_max_ms)}"
    )


def watch(settings: Settings, flow: str | list[str], alive: Callable[[], bool], interval_s: float = 1.0) -> None:
    tty = sys.stdout.isatty()
    last = ""
    while alive():
        try:
            text = line(take(settings, flow))
        except Exception as exc:  # the ledger may not exist yet in the first second
            text = f"waiting for the flow ({type(exc).__name__})"
        if tty:
            sys.stdout.write("\r\033[K" + time.strftime("%H:%M:%S ") + text)
            sys.stdout.flush()
        elif text != last:
            print(time.strftime("%H:%M:%S ") + text, flush=True)
        last = text
        time.sleep(interval_s)
    if tty:
        sys.stdout.write("\n")
