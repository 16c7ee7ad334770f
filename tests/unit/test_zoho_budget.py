"""The ZOHO API budget: credits per call as ZOHO counts them, and the 24-hour sum over every process's file."""

from __future__ import annotations

import json
import time
from pathlib import Path

from connectors.zoho.budget import HOUR_S, CreditMeter, credits_for, usage


def test_writes_cost_a_credit_per_ten_records_and_other_calls_one() -> None:
    assert credits_for("POST", 100) == 10
    assert credits_for("PUT", 11) == 2
    assert credits_for("POST", 1) == 1
    assert credits_for("GET", 0) == 1


def test_usage_adds_up_every_process_over_the_last_24_hours(tmp_path: Path) -> None:
    meter = CreditMeter()
    meter.enable(tmp_path, "flow-materials")
    meter.record("POST", "Products/upsert", 100, 200, None)
    meter.record("GET", "Products/1", 0, 429, None)
    meter.record("GET", "Products/2", 0, 200, "24000")
    meter.flush()
    now = time.time()
    old_hour = int(now - 30 * HOUR_S) // HOUR_S
    (tmp_path / "zoho-usage" / "poll-zoho.json").write_text(json.dumps(
        {"hours": {str(old_hour): 900, str(int(now) // HOUR_S): 5}, "throttled": {}, "remaining": None}))
    spent = usage(tmp_path, now)
    assert (spent.credits_24h, spent.throttled_24h, spent.remaining) == (10 + 1 + 1 + 5, 1, 24000)
    assert "17 credits of 50,000 (0.0%)" in spent.line(50_000, 5) and "ZOHO says 24,000 left" in spent.line(50_000, 5)
