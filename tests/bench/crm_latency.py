"""Benchmark: how fast a sales rep's change in the CRM reaches Kingdee and the OA, and what watching the CRM costs.

The demo installation (its own database, simulators, topics and state) run by ``cdchub run`` twice in one go:

* **before** — polling only, every 30 s (``CDCHUB_ZOHO__WATCH_NOTIFY_URL`` empty), as until this change;
* **after** — the defaults: ZOHO watch notifications wake the poller, a full poll every 5 minutes as a safety net.

In each: ``--idle`` seconds with nothing happening (ZOHO API credits the integration spends, extrapolated to a day);
then ``--edits`` product descriptions edited by a sales rep (CRM → Kingdee ``FDESCRIPTION``) and ``--campaigns``
campaigns created (CRM → OA workflow request), a few seconds apart; latency from the rep's write to the change in
Kingdee's database / the OA, p50/p95/max.  Prints figures; asserts nothing about time.

    python -m tests.bench.crm_latency [--idle 320] [--edits 12] [--campaigns 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine, create_engine, text

from connectors.settings import Settings, get_settings
from core.process import interruptible
from tests.bench.installation import Installation, SupervisedRun
from tests.integration.harness import ZohoSim, wait_for

MODES = {
    "before: polling every 30 s": {"CDCHUB_ZOHO__WATCH_NOTIFY_URL": "", "CDCHUB_ZOHO__POLL_INTERVAL_S": "30"},
    "after: watch notifications (default)": {"CDCHUB_ZOHO__POLL_INTERVAL_S": "30"},
}


@dataclass
class Figures:
    mode: str
    idle_credits_per_day: float
    idle_calls: int
    to_kingdee: list[float]
    to_oa: list[float]
    credits_during: int


def credits_used(crm_url: str) -> int:
    return int(httpx.get(f"{crm_url}/__sim/limits", timeout=10).json()["credits_used"])


def description(kingdee: Engine, material: str) -> str | None:
    with kingdee.connect() as conn:
        return conn.execute(text('SELECT "FDESCRIPTION" FROM "T_BD_MATERIAL_L" WHERE "FMATERIALID" = :id '
                                 'AND "FLOCALEID" = 2052'), {"id": int(material)}).scalar()


def oa_requests(weaver_url: str) -> set[str]:
    """The CRM campaign ids the OA has a workflow request for."""
    body = httpx.get(f"{weaver_url}/__sim/workflow-requests", timeout=10).json()
    return {str(r["main"].get("crmid")) for r in body["requests"] if (r.get("main") or {}).get("crmid")}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(mode: str, overrides: dict[str, str], base: Settings, tmp: Path, args: argparse.Namespace) -> Figures:
    inst = Installation(base, tmp).start()
    run = SupervisedRun({**inst.env, **overrides}, tmp / "logs")
    crm = ZohoSim(inst.urls["zoho"])
    kingdee = create_engine(inst.settings().kingdee_db.sqlalchemy_url())
    try:
        run.start()
        products = wait_for(lambda: (p := crm.by_kingdee_id()) and len(p) >= args.edits and p, 300,
                            "the demo products in the CRM", 1.0)
        time.sleep(20)  # let the first sync settle before the idle window (a benchmark, not a test)
        start_credits, start_calls = credits_used(inst.urls["zoho"]), len(crm.requests())
        time.sleep(args.idle)
        idle = credits_used(inst.urls["zoho"]) - start_credits
        idle_calls = len(crm.requests()) - start_calls

        to_kingdee: list[float] = []
        to_oa: list[float] = []
        done = threading.Event()
        credits_before = credits_used(inst.urls["zoho"])

        def follow_edit(material: str, value: str, at: float) -> None:
            wait_for(lambda: description(kingdee, material) == value or done.is_set(), 120, "the edit", 0.05)
            if not done.is_set():
                to_kingdee.append(time.time() - at)

        def follow_campaign(cid: str, at: float) -> None:
            wait_for(lambda: cid in oa_requests(inst.urls["weaver"]) or done.is_set(), 120, "the request", 0.05)
            if not done.is_set():
                to_oa.append(time.time() - at)

        threads = []
        for i, (material, record) in enumerate(list(products.items())[: args.edits]):
            value = f"{mode[:6]} 说明 {i}"
            at = time.time()
            crm.human_edit("Products", record["id"], {"Description": value})
            threads.append(threading.Thread(target=follow_edit, args=(material, value, at), daemon=True))
            threads[-1].start()
            if i < args.campaigns:
                at = time.time()
                cid = crm.human_create("Campaigns", {
                    "Campaign_Name": f"{mode[:6]} 学术会议 {i}", "Type": "Conference", "Budgeted_Cost": 20000,
                    "Expected_Revenue": 100000, "Start_Date": "2027-01-10", "End_Date": "2027-01-11"})
                threads.append(threading.Thread(target=follow_campaign, args=(cid, at), daemon=True))
                threads[-1].start()
            time.sleep(args.spacing)
        for t in threads:
            t.join(150)
        done.set()
        return Figures(mode, idle * 86400 / args.idle, idle_calls, to_kingdee, to_oa,
                       credits_used(inst.urls["zoho"]) - credits_before)
    finally:
        run.stop()
        kingdee.dispose()
        inst.stop()


def show(f: Figures) -> str:
    def stats(values: list[float]) -> str:
        if not values:
            return "none arrived"
        return (f"p50 {statistics.median(values):5.2f} s  p95 {percentile(values, 0.95):5.2f} s  "
                f"max {max(values):5.2f} s  (n={len(values)})")
    return (f"{f.mode}\n  CRM edit → Kingdee        {stats(f.to_kingdee)}\n"
            f"  CRM campaign → OA request {stats(f.to_oa)}\n"
            f"  idle: {f.idle_calls} ZOHO calls, {f.idle_credits_per_day:,.0f} API credits per day; "
            f"credits during the edits: {f.credits_during}")


def main() -> None:
    interruptible()
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=320.0, help="seconds of idle measured (one safety poll: 300 s)")
    ap.add_argument("--edits", type=int, default=12)
    ap.add_argument("--campaigns", type=int, default=6)
    ap.add_argument("--spacing", type=float, default=3.0, help="seconds between the rep's changes")
    args = ap.parse_args()

    from infra.stack.manager import up

    up(get_settings(), ["postgres", "kafka", "registry"])
    get_settings.cache_clear()
    base = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-bench-crm-"))
    print(f"== CRM → Kingdee / OA latency and API credits ({os.cpu_count()} cores); logs in {tmp}", flush=True)
    results = []
    for i, (mode, overrides) in enumerate(MODES.items()):
        results.append(measure(mode, overrides, base, tmp / f"mode{i}", args))
        print(show(results[-1]), flush=True)
    before, after = results
    if before.to_kingdee and after.to_kingdee:
        ratio = statistics.median(before.to_kingdee) / statistics.median(after.to_kingdee)
        print(f"== p50 CRM → Kingdee {ratio:.0f}× faster; idle credits per day {before.idle_credits_per_day:,.0f} → "
              f"{after.idle_credits_per_day:,.0f}")


if __name__ == "__main__":
    main()
