"""The ZOHO API budget: credits this installation spent over the rolling 24 hours ZOHO counts, 429 answers, token
refusals, and what ZOHO itself last said was left (``X-API-CREDITS-REMAINING``, sent once half the budget is used).

Every ZOHO call of a cdchub process is counted by its process-wide :data:`METER` (writes cost one credit per 10
records, at least one; other calls one — the reference's rule).  A process that runs flows or pollers enables
sharing (:func:`enable`): at most every few seconds and at exit it adds what it counted to the installation's one
meter, ``<state dir>/meters/zoho-credits.json`` (hourly buckets, under a file lock), so ``cdchub status`` and the
metrics (:func:`usage`) show all processes together — like ZOHO, which counts per org.
"""

from __future__ import annotations

import atexit
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.common.shared_state import locked_record, read_records

HOUR_S = 3600
WINDOW_S = 24 * HOUR_S
FLUSH_S = 5.0
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
METERS = "meters"
CREDITS = "zoho-credits"


def credits_for(method: str, records: int) -> int:
    if method.upper() in WRITES and records > 0:
        return max(1, math.ceil(records / 10))
    return 1


def _add(into: dict[str, int], hours: dict[int, int]) -> None:
    for hour, n in hours.items():
        into[str(hour)] = int(into.get(str(hour), 0)) + n


class CreditMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Counted since the last flush: hour (epoch s // 3600) → credits, → 429 answers.
        self.hours: dict[int, int] = {}
        self.throttled: dict[int, int] = {}
        self.remaining: int | None = None
        self.remaining_at: float | None = None
        self._enabled = False
        self._flushed = 0.0

    def record(self, method: str, path: str, records: int, status: int, remaining: str | None) -> None:
        hour = int(time.time()) // HOUR_S
        with self._lock:
            self.hours[hour] = self.hours.get(hour, 0) + credits_for(method, records)
            if status == 429:
                self.throttled[hour] = self.throttled.get(hour, 0) + 1
            if remaining is not None and remaining.strip().isdigit():
                self.remaining, self.remaining_at = int(remaining), time.time()
        if self._enabled and time.monotonic() - self._flushed >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Add what was counted since the last flush to the installation's meter."""
        if not self._enabled:
            return
        with self._lock:
            hours, throttled, remaining, remaining_at = self.hours, self.throttled, self.remaining, self.remaining_at
            self.hours, self.throttled, self.remaining, self.remaining_at = {}, {}, None, None
            self._flushed = time.monotonic()
        floor = int(time.time() - WINDOW_S) // HOUR_S
        with locked_record(METERS, CREDITS) as meter:
            for kind, counted in (("hours", hours), ("throttled", throttled)):
                kept = {h: n for h, n in (meter.get(kind) or {}).items() if int(h) >= floor}
                _add(kept, counted)
                meter[kind] = kept
            if remaining_at is not None and remaining_at >= float(meter.get("remaining_at") or 0):
                meter["remaining"], meter["remaining_at"] = remaining, remaining_at

    def enable(self, state_dir: Path, process: str) -> None:
        """Count into the installation's meter (``shared_state.share(state_dir)`` must be on)."""
        if not self._enabled:
            self._enabled = True
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
                f"{self.throttled_24h} throttled (429), at most {concurrency} calls at once for the org")


def usage(state_dir: Path, now: float | None = None) -> Usage:
    floor = int((now or time.time()) - WINDOW_S) // HOUR_S
    meter: dict[str, Any] = read_records(state_dir, METERS).get(CREDITS, {})
    credits = sum(int(n) for h, n in (meter.get("hours") or {}).items() if int(h) >= floor)
    throttled = sum(int(n) for h, n in (meter.get("throttled") or {}).items() if int(h) >= floor)
    at = float(meter.get("remaining_at") or 0)
    fresh = at >= floor * HOUR_S
    return Usage(credits, throttled, meter.get("remaining") if fresh else None, at if fresh else None)
