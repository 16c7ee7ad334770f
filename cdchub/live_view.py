"""The live view of ``cdchub run``: one line, refreshed every second, from what the runtime writes anyway.

It reads the capture's stats and the runtime processes' health reports (``connectors/common/health.py``), small
JSON files, so the supervisor that shows it stays small: no ledger queries, no database driver.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from connectors.common.health import percentile, read_reports


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.0f}ms" if v < 10_000 else f"{v / 1000:.0f}s")


def summary(state_dir: Path, flows: list[str]) -> str:
    try:
        stats = json.loads((state_dir / "capture-stats.json").read_text())
    except (OSError, ValueError):
        stats = {}
    written = retrying = dead = 0
    latencies: list[int] = []
    for report in read_reports(state_dir):
        for flow, h in (report.get("flows") or {}).items():
            if flow in flows:
                written += int(h.get("written", 0))
                # what a killed process was retrying is retried by its successor, which reports it itself
                retrying += int(h.get("retrying", 0)) if report.get("alive") else 0
                dead += int(h.get("dead_letters", 0))
                latencies += h.get("recent_latencies_ms") or []
    captured = int(stats.get("events", 0)) - int(stats.get("snapshot_events", 0))
    return (f"captured {captured} changes (+{int(stats.get('snapshot_events', 0))} snapshot)  written {written}  "
            f"retrying {retrying}  dead letters {dead + int(stats.get('dead_letters', 0))}  "
            f"latency p50 {_ms(percentile(latencies, 50))} p95 {_ms(percentile(latencies, 95))} "
            f"max {_ms(max(latencies) if latencies else None)}")


def watch(state_dir: Path, flows: list[str], alive: Callable[[], bool], interval_s: float = 1.0) -> None:
    tty = sys.stdout.isatty()
    last = ""
    while alive():
        text = summary(state_dir, flows)
        if tty:
            sys.stdout.write("\r\033[K" + time.strftime("%H:%M:%S ") + text)
            sys.stdout.flush()
        elif text != last:
            print(time.strftime("%H:%M:%S ") + text, flush=True)
        last = text
        time.sleep(interval_s)  # the refresh period of a live view, not a wait for a condition
    if tty:
        sys.stdout.write("\n")
