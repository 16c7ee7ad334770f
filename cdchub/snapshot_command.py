"""``cdchub snapshot <document|table …>``: ask the running capture for a re-snapshot and follow its progress.

The request goes through the WAL (``connectors/kingdee/resnapshot.py``), so it is never lost: if no capture is
running it is carried out when the capture next starts.  Progress comes from the capture's state folder.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.resnapshot import SnapshotProgress, request_snapshot, resolve_documents
from connectors.settings import Settings

#: How long to wait for a capture to pick the request up before saying none seems to be running.
PICKUP_S = 30.0


def progress_line(p: SnapshotProgress) -> str:
    """The progress as one plain line (when stderr is not a terminal)."""
    share, what = _share(p)
    return f"{share:4.0%}  {what}" + (f", {p.deleted} deleted" if p.deleted else "")


def _share(p: SnapshotProgress) -> tuple[float, str]:
    if p.status == "reading":
        return (p.rows_read / p.rows_total if p.rows_total else 1.0), f"reading {p.rows_read:,}/{p.rows_total:,} rows"
    return ((p.documents_emitted / p.documents_total if p.documents_total else 1.0),
            f"{p.status} {p.documents_emitted:,}/{p.documents_total:,} documents")


class _Shown:
    """Draws the progress: a rich bar on a terminal (one task, re-labelled as the capture goes from reading rows
    to sending documents), else a line whenever it changes."""

    def __init__(self) -> None:
        self.last = ""
        self.bar: Any = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))
            self.bar.add_task("waiting for the capture", total=None)
            self.bar.start()

    def show(self, p: SnapshotProgress) -> None:
        if self.bar is None:
            line = progress_line(p)
            if line != self.last:
                print(line, file=sys.stderr, flush=True)
                self.last = line
            return
        share, what = _share(p)
        self.bar.update(self.bar.task_ids[0], description=what + (f", {p.deleted} deleted" if p.deleted else ""),
                        total=1000, completed=int(share * 1000))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_snapshot(settings: Settings, names: list[str], *, wait_s: float = 600.0) -> int:
    try:
        documents = resolve_documents(DocumentCatalog(), names)
    except ValueError as exc:
        print(f"cdchub snapshot: {exc}", file=sys.stderr)
        return 2
    request = request_snapshot(settings.kingdee_db.dsn(), settings.kingdee_db.slot, documents)
    print(f"re-snapshot {request.id} of {', '.join(documents)} requested (slot {request.slot})", flush=True)
    if wait_s <= 0:
        return 0
    started = time.monotonic()
    shown = _Shown()
    try:
        while time.monotonic() - started < wait_s:
            progress = SnapshotProgress.load(settings.state_dir, request.id)
            if progress is None and time.monotonic() - started > PICKUP_S:
                shown.close()
                print("no capture picked the request up yet; it is done when the capture (`cdchub capture`) runs",
                      file=sys.stderr)
                return 3
            if progress is not None:
                shown.show(progress)
                if progress.status == "done":
                    shown.close()
                    print(f"re-snapshot {request.id} done: {progress.documents_emitted} documents sent, "
                          f"{progress.deleted} deleted")
                    return 0
                if progress.status == "failed":
                    shown.close()
                    print(f"re-snapshot {request.id} failed: {progress.error}", file=sys.stderr)
                    return 1
            time.sleep(0.2)
    finally:
        shown.close()
    print(f"still running after {wait_s:.0f} s; follow it with `cdchub status`", file=sys.stderr)
    return 4
