"""The ZOHO API budget: credits per call as ZOHO counts them, and one 24-hour meter for every process."""

from __future__ import annotations

import json
import time
from pathlib import Path

from connectors.common import shared_state
from connectors.zoho.budget import HOUR_S, CreditMeter, credits_for, usage


def test_writes_cost_a_credit_per_ten_records_and_other_calls_one() -> None:
    assert credits_for("POST", 100) == 10
    assert credits_for("PUT", 11) == 2
    assert credits_for("POST", 1) == 1
    assert credits_for("GET", 0) == 1


def test_every_process_adds_to_one_meter_over_the_last_24_hours(tmp_path: Path) -> None:
    shared_state.share(tmp_path)
    try:
        now = time.time()
        old_hour = int(now - 30 * HOUR_S) // HOUR_S
        with shared_state.locked_record("meters", "zoho-credits") as meter:  # what ran a day and more ago
            meter["hours"] = {str(old_hour): 900}
        flows, poller = CreditMeter(), CreditMeter()  # two processes
        for meter_ in (flows, poller):
            meter_.enable(tmp_path, "any")
        flows.record("POST", "Products/upsert", 100, 200, None)
        flows.record("GET", "Products/1", 0, 429, None)
        poller.record("GET", "Products", 0, 200, None)
        poller.record("GET", "Products/2", 0, 200, "24000")
        flows.flush()
        poller.flush()
        flows.flush()  # nothing new: adds nothing
    finally:
        shared_state.unshare()
    spent = usage(tmp_path, now)
    assert (spent.credits_24h, spent.throttled_24h, spent.remaining) == (10 + 1 + 1 + 1, 1, 24000)
    assert "13 credits of 50,000 (0.0%)" in spent.line(50_000, 5) and "ZOHO says 24,000 left" in spent.line(50_000, 5)
    stored = json.loads((tmp_path / "meters" / "zoho-credits.json").read_text())
    assert str(old_hour) not in stored["hours"], "hours older than the window are dropped"
