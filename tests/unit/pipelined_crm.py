"""A ZOHO stand-in whose answers the test releases one call at a time, and a pipelined upsert sink in front of it
(unit tests of the sink at the target's pace: no sleeps — calls wait on events the test sets)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

import httpx
from pydantic import SecretStr

from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.zoho.client import ZohoClient
from connectors.zoho.settings import ZohoSettings
from connectors.zoho.sink import ZohoUpsertPartition
from core.ledger import Position, SyncLedger, open_engine
from core.mapping import fingerprint
from tests.unit.fakes import DeadLetterProducer


class GatedCrm:
    """Answers upserts like ZOHO once the test lets a call through (:meth:`release`); counts calls in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[list[dict]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.arrived = threading.Semaphore(0)
        self.gates: list[threading.Event] = []
        #: Once opened, calls are answered at once (the rest of a test).
        self.opened = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        records = json.loads(request.content)["data"]
        gate = threading.Event()
        with self.lock:
            self.calls.append(records)
            self.gates.append(gate)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.arrived.release()
        if not self.opened.is_set():
            gate.wait(30)  # released by the test (a bound, not a pause: the test sets it)
        with self.lock:
            self.in_flight -= 1
        return httpx.Response(200, json={"data": [
            {"code": "SUCCESS", "action": "insert", "status": "success", "details": {"id": f"z{r['Kingdee_ID']}"},
             "message": "record added"} for r in records]})

    def wait_arrivals(self, n: int) -> None:
        for _ in range(n):
            assert self.arrived.acquire(timeout=30), "a call did not arrive"

    def open(self) -> None:
        self.opened.set()
        self.release()

    def release(self, n: int | None = None) -> None:
        with self.lock:
            gates = [g for g in self.gates if not g.is_set()]
        for gate in gates[:n]:
            gate.set()


def pipelined_sink(tmp_path: Path, crm: GatedCrm, concurrency: int = 5) -> ZohoUpsertPartition:
    settings = ZohoSettings(accounts_url="http://crm", api_domain="http://crm", client_secret=SecretStr("s"),
                            refresh_token=SecretStr("r"), max_concurrency=concurrency)
    client = ZohoClient(settings, httpx.Client(transport=httpx.MockTransport(crm)))
    ledger = SyncLedger(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), "materials", "zoho")
    sink = ZohoUpsertPartition(client, ledger, DeadLetterProducer(), "materials", "Products",  # type: ignore[arg-type]
                               "Kingdee_ID", RetryPolicy(first_delay_s=1, max_delay_s=8, give_up_after_s=60))
    sink.blocking = False
    sink.pipeline(sink.concurrency)
    return sink


def landed(sink: ZohoUpsertPartition) -> None:
    """Wait until at least one call of the sink came back (its answer is handled when the step collects)."""
    assert sink.flights is not None
    wait([f.future for f in sink.flights.flying], timeout=30, return_when=FIRST_COMPLETED)


def cmd(key: int | str, version: int = 1, name: str = "喉罩") -> SyncCommand:
    record = {"Kingdee_ID": str(key), "Product_Name": f"{name} {key} v{version}"}
    return SyncCommand("materials", str(key), f"1.01.{key}", version, record, fingerprint(record), 1000,
                       Position("kingdee.material", 0, version))
