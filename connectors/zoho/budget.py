"""The ZOHO API budget: credits this installation spent over the rolling 24 hours ZOHO counts, 429 answers, and what
ZOHO itself last said was left (``X-API-CREDITS-REMAINING``, sent once half the budget is used).

Every ZOHO call of a cdchub process is counted by its process-wide :data:`METER` (writes cost one credit per 10
records, at least one; other calls one — the reference's rule).  A process that runs a flow or a poller enables
writing (:func:`enable`): its counts go, at most every few seconds and at exit, to
``<state dir>/zoho-usage/<process>.json`` in hourly buckets.  ``cdchub status`` and the metrics add up every file's
last 24 hours (:func:`usage`), so the figure covers all flows and pollers together.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOUR_S = 3600
WINDOW_S = 24 * HOUR_S
FLUSH_S = 5.0
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def credits_for(method: str, records: int) -> int:
    if method.upper() in WRITES and records > 0:
        return max(1, math.ceil(records / 10))
    return 1


class CreditMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hours: dict[int, int] = {}  # hour (epoch s // 3600) -> credits
        self.throttled: dict[int, int] = {}  # hour -> 429 answers
        self.remaining: int | None = None
        self.remaining_at: float | None = None
        self._path: Path | None = None
        self._flushed = 0.0

    def record(self, method: str, path: str, records: int, status: int, remaining: str | None) -> None:
        hour = int(time.time()) // HOUR_S
        with self._lock:
            self.hours[hour] = self.hours.get(hour, 0) + credits_for(method, records)
            if status == 429:
                self.throttled[hour] = self.throttled.get(hour, 0) + 1
            if remaining is not None and remaining.strip().isdigit():
                self.remaining, self.remaining_at = int(remaining), time.time()
        if self._path is not None and time.monotonic() - self._flushed >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if self._path is None:
            return
        floor = int(time.time() - WINDOW_S) // HOUR_S
        with self._lock:
            self.hours = {h: n for h, n in self.hours.items() if h >= floor}
            self.throttled = {h: n for h, n in self.throttled.items() if h >= floor}
            body = {"hours": self.hours, "throttled": self.throttled, "remaining": self.remaining,
                    "remaining_at": self.remaining_at}
            self._flushed = time.monotonic()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, self._path)

    def enable(self, state_dir: Path, process: str) -> None:
        self._path = state_dir / "zoho-usage" / f"{process}.json"
        if self._path.exists():  # the same process name ran before: keep its last 24 hours
            old = json.loads(self._path.read_text(encoding="utf-8"))
            self.hours = {int(h): n for h, n in old.get("hours", {}).items()}
            self.throttled = {int(h): n for h, n in old.get("throttled", {}).items()}
        atexit.register(self.flush)


METER = CreditMeter()


def enable(state_dir: Path, process: str) -> None:
    METER.enable(state_dir, process)


@dataclass(frozen=True)
class Usage:
    credits_24h: int
    throttled_24h: int
    remaining: int | None  # as ZOHO last said (only sent past half the budget)
    remaining_at: float | None

    def line(self, daily_credits: int, concurrency: int) -> str:
        share = self.credits_24h / daily_credits if daily_credits else 0.0
        said = (f", ZOHO says {self.remaining:,} left ({time.strftime('%H:%M', time.localtime(self.remaining_at))})"
                if self.remaining is not None and self.remaining_at else "")
        return (f"ZOHO API (24 h): {self.credits_24h:,} credits of {daily_credits:,} ({share:.1%}){said}, "
                f"{self.throttled_24h} throttled (429), at most {concurrency} calls at once per process")


def usage(state_dir: Path, now: float | None = None) -> Usage:
    floor = int((now or time.time()) - WINDOW_S) // HOUR_S
    credits = throttled = 0
    remaining: int | None = None
    remaining_at: float | None = None
    for path in sorted((state_dir / "zoho-usage").glob("*.json")):
        try:
            body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a file being replaced right now: the next look sees it
        credits += sum(n for h, n in body.get("hours", {}).items() if int(h) >= floor)
        throttled += sum(n for h, n in body.get("throttled", {}).items() if int(h) >= floor)
        at = body.get("remaining_at")
        if at and (remaining_at is None or at > remaining_at) and at >= floor * HOUR_S:
            remaining, remaining_at = body.get("remaining"), at
    return Usage(credits, throttled, remaining, remaining_at)
