"""The two-way ZOHO sink writes what its guard looked at only if the CRM record is unchanged since the look
(``If-Unmodified-Since``); a person's save in between makes it look and decide again instead of overwriting."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import MAX_REDECISIONS, TwoWayGuard
from connectors.zoho.client import ZohoClient
from connectors.zoho.settings import ZohoSettings
from connectors.zoho.sink import ZohoUpsertPartition
from core.field_clock import FieldClock
from core.ledger import Position, SyncLedger, open_engine
from core.mapping import fingerprint
from tests.unit.fakes import DeadLetterProducer

ENTITY = "materials:100548"
SYNCED_AT = 1_796_615_294_000
KINGDEE_EDIT_AT = SYNCED_AT + 60_000
ME = {"id": "me", "name": "CDC Hub Integration"}
REP = {"id": "rep", "name": "Sales Rep"}


def shown(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).isoformat()


class Crm:
    """One CRM product, conditional updates as ZOHO answers them; ``rep_saves`` edits it just before each of the
    next that many conditional updates arrive (a person saving between the sink's look and its write)."""

    def __init__(self) -> None:
        self.record = {"id": "z1", "Kingdee_ID": "100548", "Product_Name": "喉罩", "Specification": "成人 4#",
                       "Modified_Time": shown(SYNCED_AT), "Modified_By": ME}
        self.modified_ms = SYNCED_AT
        self.rep_saves = 0
        self.rep_edit: dict[str, str] = {"Specification": "销售改 4#"}
        self.puts: list[tuple[str, list[dict]]] = []
        self.reads = 0

    def save(self, values: dict, by: dict) -> None:
        # the rep saves after the Kingdee edit the sink is writing (and after the sink looked)
        self.modified_ms = max(self.modified_ms, KINGDEE_EDIT_AT) + 5_000 if by is REP else self.modified_ms + 1_000
        self.record.update(values, Modified_Time=shown(self.modified_ms), Modified_By=by)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if path == "/crm/v8/users":
            return httpx.Response(200, json={"users": [ME]})
        if request.method == "GET" and path == "/crm/v8/Products/z1":
            self.reads += 1
            return httpx.Response(200, json={"data": [dict(self.record)]})
        if request.method == "PUT" and path == "/crm/v8/Products":
            since, rows = request.headers["If-Unmodified-Since"], json.loads(request.content)["data"]
            self.puts.append((since, rows))
            if self.rep_saves:
                self.rep_saves -= 1
                self.save(dict(self.rep_edit), REP)
            if self.modified_ms // 1000 > int(datetime.fromisoformat(since).timestamp()):
                return httpx.Response(412, json={"data": [{"code": "ALREADY_MODIFIED", "details": {"id": "z1"},
                                                           "message": "modified", "status": "error"}]})
            self.save({k: v for k, v in rows[0].items() if k != "id"}, ME)
            return httpx.Response(200, json={"data": [{"code": "SUCCESS", "details": {"id": "z1"},
                                                       "message": "record updated", "status": "success"}]})
        raise AssertionError(f"unexpected {request.method} {path}")


@pytest.fixture()
def parts(tmp_path: Path):  # type: ignore[no-untyped-def]
    crm = Crm()
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    clock = FieldClock(engine)
    clock.record(ENTITY, "kingdee", SYNCED_AT, {"Product_Name": "喉罩", "Specification": "成人 4#"})
    settings = ZohoSettings(accounts_url="http://crm", api_domain="http://crm", client_secret=SecretStr("s"),
                            refresh_token=SecretStr("r"))
    client = ZohoClient(settings, httpx.Client(transport=httpx.MockTransport(crm)))
    ledger = SyncLedger(engine, "materials", "zoho")
    dlq = DeadLetterProducer()
    guard = TwoWayGuard(clock, "kingdee", frozenset({"Product_Name", "Specification"}), "Kingdee_ID")
    sink = ZohoUpsertPartition(client, ledger, dlq, "materials", "Products", "Kingdee_ID",  # type: ignore[arg-type]
                               RetryPolicy(first_delay_s=0.001, max_delay_s=0.002, give_up_after_s=5), guard=guard)
    first = command(1, {"Product_Name": "喉罩", "Specification": "成人 4#"})
    ledger.record_applied_many([sink.ledger_row(first, "z1", "insert", 1)])
    return crm, ledger, dlq, sink, clock


def command(version: int, values: dict[str, str]) -> SyncCommand:
    record = {"Kingdee_ID": "100548", **values}
    return SyncCommand("materials", "100548", "7.00.0241", version, record, fingerprint(record), KINGDEE_EDIT_AT,
                       Position("kingdee.material", 0, version), entity=ENTITY, source_time_ms=KINGDEE_EDIT_AT)


def kingdee_edit() -> SyncCommand:
    return command(2, {"Product_Name": "喉罩（加强型）", "Specification": "成人 5#"})


def test_the_write_is_conditional_on_the_modified_time_looked_at(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, sink, _ = parts
    sink.write_batch([kingdee_edit()])
    written = {"id": "z1", "Product_Name": "喉罩（加强型）", "Specification": "成人 5#"}
    assert crm.puts == [(shown(SYNCED_AT), [written])], "an update by id, unless modified since the look"
    assert ledger.entries(["100548"])["100548"].status == "synced" and dlq.sent == []


def test_a_save_between_look_and_write_is_not_overwritten(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, sink, clock = parts
    crm.rep_saves = 1  # the rep changes the specification while the sink's write is on its way
    sink.write_batch([kingdee_edit()])
    (first_since, _), (second_since, second_rows) = crm.puts
    assert crm.reads == 2, "looked again after the refusal"
    assert (first_since, second_since) == (shown(SYNCED_AT), shown(KINGDEE_EDIT_AT + 5_000)), "the rep's save"
    assert second_rows == [{"id": "z1", "Product_Name": "喉罩（加强型）"}], "decided again: the rep's field is left"
    assert crm.record["Specification"] == "销售改 4#" and crm.record["Product_Name"] == "喉罩（加强型）"
    assert ledger.entries(["100548"])["100548"].status == "synced" and dlq.sent == []
    assert clock.known([ENTITY])[ENTITY]["Specification"].value == "成人 4#", "no claim left on the held-back field"


def test_a_rep_edit_of_every_written_field_leaves_nothing_to_write(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, _, sink, _ = parts
    crm.rep_saves, crm.rep_edit = 1, {"Product_Name": "销售改名", "Specification": "销售改 4#"}
    sink.write_batch([kingdee_edit()])
    assert len(crm.puts) == 1, "the second decision writes nothing"
    assert (crm.record["Product_Name"], crm.record["Specification"]) == ("销售改名", "销售改 4#")
    assert ledger.entries(["100548"])["100548"].source_version == 2


def test_a_record_that_keeps_changing_is_dead_lettered_by_a_plain_sink(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, sink, _ = parts
    crm.rep_saves, crm.rep_edit = 99, {"Description": "每次都改"}
    sink.write_batch([kingdee_edit()])
    assert len(crm.puts) == MAX_REDECISIONS
    letter = json.loads(dlq.values[0])
    assert letter["stage"] == "conditional-write" and "changed again" in letter["error"]
    assert ledger.entries(["100548"])["100548"].status == "failed"
    assert crm.record["Product_Name"] == "喉罩"


def test_a_record_that_keeps_changing_waits_in_the_runtime(parts) -> None:  # type: ignore[no-untyped-def]
    crm, ledger, dlq, sink, clock = parts
    sink.blocking = False
    crm.rep_saves, crm.rep_edit = 99, {"Description": "每次都改"}
    deferred = sink.deliver([kingdee_edit()])
    assert list(deferred) == ["100548"] and "changed again" in str(deferred["100548"])
    assert dlq.sent == [] and ledger.entries(["100548"])["100548"].source_version == 1
    assert clock.known([ENTITY])[ENTITY]["Product_Name"].value == "喉罩", "the claim is released for the retry"
