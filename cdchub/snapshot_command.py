"""``cdchub snapshot <document|table …>``: ask the running capture for a re-snapshot and follow its progress.

The request goes through the WAL (``connectors/kingdee/resnapshot.py``), so it is never lost: if no capture is
running it is carried out when the capture next starts.  Progress comes from the capture's state folder.
"""

from __future__ import annotations

import sys
import time

from cdchub.settings import Settings
from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.resnapshot import SnapshotProgress, request_snapshot, resolve_documents

#: How long to wait for a capture to pick the request up before saying none seems to be running.
PICKUP_S = 30.0


def progress_line(p: SnapshotProgress) -> str:
    if p.status == "reading":
        share = p.rows_read / p.rows_total if p.rows_total else 1.0
        what = f"reading {p.rows_read:,}/{p.rows_total:,} rows"
    else:
        share = p.documents_emitted / p.documents_total if p.documents_total else 1.0
        what = f"{p.status} {p.documents_emitted:,}/{p.documents_total:,} documents"
    bar = "█" * int(share * 30) + "░" * (30 - int(share * 30))
    return f"[{bar}] {share:4.0%}  {what}" + (f", {p.deleted} deleted" if p.deleted else "")


def run_snapshot(settings: Settings, names: list[str], *, wait_s: float = 600.0) -> int:
    try:
        documents = resolve_documents(DocumentCatalog(), names)
    except ValueError as exc:
        print(f"cdchub snapshot: {exc}", file=sys.stderr)
        return 2
    request = request_snapshot(settings.kingdee_db.dsn(), settings.kingdee_db.slot, documents)
    print(f"re-snapshot {request.id} of {', '.join(documents)} requested (slot {request.slot})")
    if wait_s <= 0:
        return 0
    started = time.monotonic()
    tty = sys.stderr.isatty()
    last = ""
    while time.monotonic() - started < wait_s:
        progress = SnapshotProgress.load(settings.state_dir, request.id)
        if progress is None and time.monotonic() - started > PICKUP_S:
            print("no capture picked the request up yet; it is done when the capture (`cdchub capture`) runs",
                  file=sys.stderr)
            return 3
        if progress is not None:
            line = progress_line(progress)
            if line != last:
                sys.stderr.write(("\r" if tty else "") + line + ("" if tty else "\n"))
                sys.stderr.flush()
                last = line
            if progress.status == "done":
                print(f"\nre-snapshot {request.id} done: {progress.documents_emitted} documents sent, "
                      f"{progress.deleted} deleted")
                return 0
            if progress.status == "failed":
                print(f"\nre-snapshot {request.id} failed: {progress.error}", file=sys.stderr)
                return 1
        time.sleep(0.2)
    print(f"\nstill running after {wait_s:.0f} s; follow it with `cdchub status`", file=sys.stderr)
    return 4
