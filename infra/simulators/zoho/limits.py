"""API limits of a CRM org: concurrent calls per OAuth client and a rolling 24-hour credit budget.

Over either limit the real API answers 429 ``TOO_MANY_REQUESTS`` without a ``Retry-After``; past half the
budget it adds ``X-API-CREDITS-REMAINING``. Writes cost one credit per 10 records (at least one), every other
call one. Both live in memory: a restart forgives the day's usage.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

CREDIT_WINDOW_S = 24 * 3600
CREDITS_HEADER = "X-API-CREDITS-REMAINING"


def write_cost(records: int) -> int:
    return max(1, math.ceil(records / 10))


class ConcurrencyGate:
    """Counts in-flight calls per client; ``try_acquire`` refuses the call that would exceed ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def try_acquire(self, client_id: str) -> bool:
        with self._lock:
            if self._in_flight[client_id] >= self.limit:
                return False
            self._in_flight[client_id] += 1
            return True

    def release(self, client_id: str) -> None:
        with self._lock:
            self._in_flight[client_id] = max(0, self._in_flight[client_id] - 1)

    def in_flight(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._in_flight.items() if v}


class CreditMeter:
    """Credits spent in the last 24 hours against ``budget``."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._spent: deque[tuple[float, int]] = deque()
        self._total = 0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - CREDIT_WINDOW_S:
            self._total -= self._spent.popleft()[1]

    def used(self) -> int:
        with self._lock:
            self._expire(time.time())
            return self._total

    def remaining(self) -> int:
        return max(0, self.budget - self.used())

    def exhausted(self) -> bool:
        return self.used() >= self.budget

    def charge(self, credits: int) -> None:
        if credits <= 0:
            return
        with self._lock:
            now = time.time()
            self._expire(now)
            self._spent.append((now, credits))
            self._total += credits

    def header_value(self) -> str | None:
        """``X-API-CREDITS-REMAINING`` once more than half the budget is used, else None."""
        used = self.used()
        return str(max(0, self.budget - used)) if used * 2 > self.budget else None

    def reset(self) -> None:
        with self._lock:
            self._spent.clear()
            self._total = 0
