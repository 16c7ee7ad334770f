"""The ZOHO CRM simulator's own upsert ceiling: a plain client, no Kafka, no ledger, straight at the simulator.

Batches of 100 Products shaped like the materials flow's (the same fields, new external keys), sent by as many
threads as the org's concurrency allows (``ZohoClient``'s shared slots keep it at that), each thread taking the next
batch as soon as its last one is answered.  What this reaches is what no sink in front of this simulator can beat.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from connectors.zoho.budget import credits_for
from connectors.zoho.client import MAX_RECORDS_PER_WRITE, ZohoClient
from connectors.zoho.settings import ZohoSettings


def product(i: int, prefix: str) -> dict[str, Any]:
    """A Products record as the materials mapping writes one (``flows/mappings/materials.toml``)."""
    number = f"{prefix}{i:06d}"
    return {
        "Kingdee_ID": f"{prefix}{i}", "Product_Code": number, "Kingdee_Number": number,
        "Product_Name": "一次性使用麻醉呼吸回路", "Specification": "成人 1.8m 可伸缩", "Description": " ",
        "Product_Category": None, "Usage_Unit": None, "Product_Active": True, "Kingdee_Deleted": False,
    }


@dataclass
class Ceiling:
    records: int
    calls: int
    seconds: float
    credits: int
    concurrency: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def measure(settings: ZohoSettings, records: int, prefix: str = "C") -> Ceiling:
    """Upsert ``records`` new Products in batches of 100 with ``settings.max_concurrency`` calls in flight."""
    client = ZohoClient(settings)
    client.tokens.token()  # minted before the clock starts
    batches = [[product(i, prefix) for i in range(s, min(records, s + MAX_RECORDS_PER_WRITE))]
               for s in range(0, records, MAX_RECORDS_PER_WRITE)]
    lock = threading.Lock()
    errors: list[str] = []

    def work() -> None:
        while True:
            with lock:
                if not batches:
                    return
                batch = batches.pop()
            results = client.upsert("Products", batch, ["Kingdee_ID"])
            bad = [r for r in results if r.get("status") != "success"]
            if bad:
                with lock:
                    errors.append(str(bad[0]))

    threads = [threading.Thread(target=work) for _ in range(settings.max_concurrency)]
    calls = -(-records // MAX_RECORDS_PER_WRITE)
    credits = sum(credits_for("POST", min(MAX_RECORDS_PER_WRITE, records - s))
                  for s in range(0, records, MAX_RECORDS_PER_WRITE))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    client.close()
    if errors:
        raise AssertionError(f"the simulator refused records of the ceiling run: {errors[0]}")
    return Ceiling(records, calls, seconds, credits, settings.max_concurrency)
