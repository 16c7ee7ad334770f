"""ZohoUpsertSink decisions against a faked HTTP transport: batching, idempotency, errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.zoho.client import ZohoClient
from connectors.zoho.settings import ZohoSettings
from connectors.zoho.sink import ZohoUpsertPartition
from core.ledger import Position, SyncLedger, open_engine
from core.mapping import fingerprint
from tests.unit.fakes import DeadLetterProducer


class FakeCrm:
    """Answers like ZOHO: token endpoint, upsert with per-record results; scripted failures."""

    def __init__(self) -> None:
        self.upserts: list[list[dict]] = []
        self.tokens = 0
        self.fail_next: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            self.tokens += 1
            return httpx.Response(200, json={"access_token": f"t{self.tokens}", "expires_in": 3600})
        if self.fail_next:
            return httpx.Response(self.fail_next.pop(0), json={"code": "TOO_MANY_REQUESTS", "status": "error"})
        records = json.loads(request.content)["data"]
        self.upserts.append(records)
        results = []
        for r in records:
            if "Product_Name" not in r:  # an insert needs the mandatory name
                results.append({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Product_Name"},
                                "message": "required field not found", "status": "error"})
            elif len(r.get("Product_Name", "")) > 120:
                results.append({"code": "INVALID_DATA", "details": {"api_name": "Product_Name"},
                                "message": "invalid data", "status": "error"})
            else:
                results.append({"code": "SUCCESS", "action": "insert", "status": "success",
                                "details": {"id": f"z{r['Kingdee_ID']}"}, "message": "record added"})
        return httpx.Response(201, json={"data": results})


@pytest.fixture()
def parts(tmp_path: Path):  # type: ignore[no-untyped-def]
    crm = FakeCrm()
    settings = ZohoSettings(accounts_url="http://crm", api_domain="http://crm", client_secret=SecretStr("s"),
                            refresh_token=SecretStr("r"))
    client = ZohoClient(settings, httpx.Client(transport=httpx.MockTransport(crm)))
    ledger = SyncLedger(open_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), "materials", "zoho")
    dlq = DeadLetterProducer()
    sink = ZohoUpsertPartition(client, ledger, dlq, "materials", "Products", "Kingdee_ID",  # type: ignore[arg-type]
                               RetryPolicy(first_delay_s=0.001, max_delay_s=0.002, give_up_after_s=5))
    return crm, ledger, dlq, sink


def cmd(key: int, version: int, name: str = "喉罩") -> SyncCommand:
    record = {"Kingdee_ID": str(key), "Product_Name": name}
    return SyncCommand("materials", str(key), f"1.01.{key}", version, record, fingerprint(record), 1000,
                       Position("kingdee.material", 0, version))


def test_batches_are_at_most_100_and_all_are_recorded(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, _, sink = parts
    sink.write_batch([cmd(i, 10) for i in range(250)])
    assert [len(b) for b in crm.upserts] == [100, 100, 50]
    assert ledger.counts() == {"synced": 250}
    assert crm.tokens == 1, "one token for all calls"


def test_replays_and_stale_versions_make_no_calls(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, _, sink = parts
    sink.write_batch([cmd(1, 10, "新名"), cmd(1, 5, "旧名")])
    assert crm.upserts == [[{"Kingdee_ID": "1", "Product_Name": "新名"}]], "newest version per key only"
    sink.write_batch([cmd(1, 10, "新名"), cmd(1, 7, "旧名")])
    assert len(crm.upserts) == 1
    sink.write_batch([cmd(1, 11, "新名")])  # newer version, same content: recorded, not sent
    assert len(crm.upserts) == 1
    assert ledger.entries(["1"])["1"].source_version == 11


def test_per_record_errors_are_dead_lettered_and_the_rest_applied(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, sink = parts
    sink.write_batch([cmd(4, 10)])
    assert dlq.flushed_at == [], "no dead letter, nothing to flush"
    sink.write_batch([cmd(1, 10), cmd(2, 10, "长" * 130), cmd(3, 10)])
    assert ledger.counts() == {"synced": 3, "failed": 1}
    assert dlq.flushed_at == [1], "the dead letter is in Kafka before the batch is done"
    (topic, value), = dlq.sent
    letter = json.loads(value)
    assert topic == "cdchub.dlq.materials"
    assert letter["source"]["key"] == "2" and "INVALID_DATA" in letter["error"]
    sink.write_batch([cmd(2, 10, "长" * 130)])
    assert len(dlq.sent) == 1, "a replay of a dead-lettered version is not dead-lettered again"


def test_transient_errors_are_retried_until_success(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, sink = parts
    crm.fail_next = [429, 500, 503]
    sink.write_batch([cmd(1, 10)])
    assert ledger.counts() == {"synced": 1}
    assert dlq.sent == []


def test_a_later_failure_keeps_the_target_id(parts) -> None:  # type: ignore[no-untyped-def]
    _, ledger, dlq, sink = parts
    sink.write_batch([cmd(1, 10)])
    sink.write_batch([cmd(1, 11, "长" * 130)])
    entry = ledger.entries(["1"])["1"]
    assert (entry.status, entry.source_version, entry.target_id) == ("failed", 11, "z1")
    assert len(dlq.sent) == 1


def test_marking_the_deletion_of_a_record_the_crm_never_had_is_a_no_op(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, sink = parts
    record = {"Kingdee_ID": "9", "Product_Active": False, "Kingdee_Deleted": True}
    deleted = SyncCommand("materials", "9", None, 20, record, fingerprint(record), 1000,
                          Position("kingdee.material", 0, 20), deleted=True)
    sink.write_batch([deleted])
    assert dlq.sent == []
    assert ledger.entries(["9"])["9"].status == "synced"
