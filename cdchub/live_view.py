"""The live view of ``cdchub run``, from what the runtime writes anyway.

It reads the capture's stats and the runtime processes' health reports (``connectors/common/health.py``), small
JSON files, so the supervisor that shows it stays small: no ledger queries, no database driver.  On a terminal it
is a rich live panel (figures, then each supervised process with its pid, state and restarts) refreshed every
second; otherwise (a pipe, ``make run | tee run.log``) one plain line whenever the figures change.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.common.health import percentile, read_reports

if TYPE_CHECKING:
    from rich.console import RenderableType

#: A supervised process as the view shows it: name, pid, state ("running", "exited 1, restart in 4s" …), restarts.
ProcessRow = tuple[str, int, str, int]


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.0f}ms" if v < 10_000 else f"{v / 1000:.0f}s")


@dataclass(frozen=True)
class Figures:
    """What the flows of a run did so far (summed over the live processes' reports)."""

    captured: int = 0
    snapshot: int = 0
    written: int = 0
    retrying: int = 0
    dead_letters: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float | None:
        return percentile(self.latencies_ms, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies_ms, 95)

    @property
    def max(self) -> float | None:
        return max(self.latencies_ms) if self.latencies_ms else None

    def line(self) -> str:
        return (f"captured {self.captured} changes (+{self.snapshot} snapshot)  written {self.written}  "
                f"retrying {self.retrying}  dead letters {self.dead_letters}  "
                f"latency p50 {_ms(self.p50)} p95 {_ms(self.p95)} max {_ms(self.max)}")


def figures(state_dir: Path, flows: list[str]) -> Figures:
    try:
        stats = json.loads((state_dir / "capture-stats.json").read_text())
    except (OSError, ValueError):
        stats = {}
    written = retrying = dead = 0
    latencies: list[float] = []
    for report in read_reports(state_dir):
        for flow, h in (report.get("flows") or {}).items():
            if flow in flows:
                written += int(h.get("written", 0))
                # what a killed process was retrying is retried by its successor, which reports it itself
                retrying += int(h.get("retrying", 0)) if report.get("alive") else 0
                dead += int(h.get("dead_letters", 0))
                latencies += h.get("recent_latencies_ms") or []
    snapshot = int(stats.get("snapshot_events", 0))
    return Figures(int(stats.get("events", 0)) - snapshot, snapshot, written, retrying,
                   dead + int(stats.get("dead_letters", 0)), latencies)


def summary(state_dir: Path, flows: list[str]) -> str:
    """The figures as one line."""
    return figures(state_dir, flows).line()


def panel(found: Figures, processes: list[ProcessRow]) -> RenderableType:
    """The live view's panel: the figures, then one row per supervised process."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    numbers = Table.grid(padding=(0, 3))
    for _ in range(4):
        numbers.add_column(justify="right")
        numbers.add_column(style="bold")
    numbers.add_row("captured", f"{found.captured:,}", "written", f"{found.written:,}", "retrying",
                    f"[yellow]{found.retrying:,}[/]" if found.retrying else "0", "dead letters",
                    f"[red]{found.dead_letters:,}[/]" if found.dead_letters else "0")
    numbers.add_row("snapshot", f"{found.snapshot:,}", "latency p50", _ms(found.p50), "p95", _ms(found.p95),
                    "max", _ms(found.max))
    parts: list[RenderableType] = [numbers]
    if processes:
        table = Table(box=None, padding=(0, 2), header_style="dim")
        for name in ("process", "pid", "state", "restarts"):
            table.add_column(name, justify="right" if name in ("pid", "restarts") else "left")
        for name, pid, state, restarts in processes:
            table.add_row(name, str(pid), state if state == "running" else f"[red]{state}[/]",
                          f"[yellow]{restarts}[/]" if restarts else "0")
        parts += ["", table]
    return Panel(Group(*parts), title=f"cdchub run · {time.strftime('%H:%M:%S')}", title_align="left",
                 subtitle="Ctrl-C stops", subtitle_align="right", expand=False)


def watch(state_dir: Path, flows: list[str], alive: Callable[[], bool], interval_s: float = 1.0,
          processes: Callable[[], list[ProcessRow]] = list) -> None:
    """Show the view until ``alive()`` says no (it also restarts what exited, and may print about it: on a
    terminal such lines appear above the panel)."""
    if not sys.stdout.isatty():
        last = ""
        while alive():
            text = summary(state_dir, flows)
            if text != last:
                print(time.strftime("%H:%M:%S ") + text, flush=True)
            last = text
            time.sleep(interval_s)  # the refresh period of a live view, not a wait for a condition
        return
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(), auto_refresh=False, redirect_stdout=True, redirect_stderr=True) as live:
        while alive():
            live.update(panel(figures(state_dir, flows), processes()), refresh=True)
            time.sleep(interval_s)  # the refresh period of a live view, not a wait for a condition
