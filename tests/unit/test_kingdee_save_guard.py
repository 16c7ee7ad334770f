"""The CRM → Kingdee sink looks at the Kingdee record before writing a shared field, also when the flow never wrote
to that record before (its own writes never reach it): a person's later edit in Kingdee, not captured yet, wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import TwoWayGuard
from connectors.kingdee.sink import KingdeeSavePartition
from core.errors import TransientError
from core.field_clock import FieldClock
from core.ledger import Position, SyncLedger, open_engine
from core.mapping import fingerprint
from flows.specs import load_mapping
from tests.unit.fakes import DeadLetterProducer

API_USER = "100099"
PERSON = "100010"


class KingdeeRecord:
    """One material as Kingdee's View shows it, and the Saves made to it."""

    user_id = API_USER

    def __init__(self, name: str, modified: str, modifier: str) -> None:
        self.doc: dict[str, Any] = {"Name": name, "ModifyDate": modified, "ModifierId": {"Id": modifier},
                                    "DocumentStatus": "C"}
        self.saves: list[dict[str, Any]] = []

    def view(self, form: str, id: str) -> dict[str, Any]:  # noqa: A002 - the WebAPI's parameter name
        return self.doc

    def save(self, form: str, model: dict[str, Any], **_: Any) -> None:
        self.saves.append(model)

    def unaudit(self, *_: Any, **__: Any) -> None: ...
    def submit(self, *_: Any, **__: Any) -> None: ...
    def audit(self, *_: Any, **__: Any) -> None: ...
    def close(self) -> None: ...


def crm_edit(name: str, at_ms: int) -> SyncCommand:
    record = {"Kingdee_ID": "100001", "Product_Name": name}
    return SyncCommand(flow="products_to_kingdee", key="4876876000000100001", number=None, version=at_ms,
                       record=record, fingerprint=fingerprint(record), captured_at_ms=at_ms, position=Position(),
                       entity="materials:100001", source_time_ms=at_ms)


def partition(tmp_path: Path, kingdee: KingdeeRecord) -> tuple[KingdeeSavePartition, FieldClock]:
    mapping = load_mapping("materials")
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    clock = FieldClock(engine)
    clock.record("materials:100001", "kingdee", 1_795_000_000_000, {"Product_Name": "气管插管"})
    guard = TwoWayGuard(clock, "crm", mapping.shared_fields, mapping.external_key)
    sink = KingdeeSavePartition(kingdee, SyncLedger(engine, "products_to_kingdee", "kingdee"),  # type: ignore[arg-type]
                                DeadLetterProducer(), "products_to_kingdee", mapping, RetryPolicy(give_up_after_s=1),
                                "cdchub.dlq.products_to_kingdee", guard)
    return sink, clock


def test_a_crm_edit_older_than_a_persons_uncaptured_kingdee_edit_is_not_saved(tmp_path: Path) -> None:
    # 2026-11-30 10:00:05 +08:00 in Kingdee, by a person; the CRM edit was made at 10:00:03
    kingdee = KingdeeRecord("气管插管（Kingdee 后改）", "2026-11-30T10:00:05", PERSON)
    sink, clock = partition(tmp_path, kingdee)
    sink.write_batch([crm_edit("气管插管（CRM 先改）", 1_796_004_003_000)])
    assert kingdee.saves == [], "the person's later Kingdee edit is kept; it flows to the CRM through capture"
    assert clock.known(["materials:100001"])["materials:100001"]["Product_Name"].value == "气管插管"


def test_a_crm_edit_newer_than_the_last_kingdee_edit_is_saved(tmp_path: Path) -> None:
    kingdee = KingdeeRecord("气管插管", "2026-11-30T10:00:01", PERSON)
    sink, _ = partition(tmp_path, kingdee)
    sink.write_batch([crm_edit("气管插管（CRM 后改）", 1_796_004_003_000)])
    assert [s["FName"] for s in kingdee.saves] == ["气管插管（CRM 后改）"]


class Unreachable(KingdeeRecord):
    """Kingdee answers nothing: every View fails like a server in trouble."""

    def view(self, form: str, id: str) -> dict[str, Any]:  # noqa: A002
        raise TransientError("Kingdee WebAPI: HTTP 503")


def test_when_kingdee_cannot_be_read_first_the_runtime_holds_the_write_back_for_a_retry(tmp_path: Path) -> None:
    kingdee = Unreachable("气管插管（Kingdee 后改）", "2026-11-30T10:00:05", PERSON)
    sink, clock = partition(tmp_path, kingdee)
    sink.blocking = False  # as the runtime's delivery step uses it
    failed = sink.deliver([crm_edit("气管插管（CRM 先改）", 1_796_004_003_000)])
    assert kingdee.saves == [], "never written blind"
    assert list(failed) == ["4876876000000100001"] and isinstance(failed["4876876000000100001"], TransientError)
    assert sink.dlq.sent == []  # type: ignore[attr-defined]
    assert clock.known(["materials:100001"])["materials:100001"]["Product_Name"].value == "气管插管"


def test_a_plain_sink_that_still_cannot_read_kingdee_after_retrying_dead_letters_instead_of_writing(
        tmp_path: Path) -> None:
    kingdee = Unreachable("气管插管", "2026-11-30T10:00:01", PERSON)
    sink, _ = partition(tmp_path, kingdee)
    sink.policy = RetryPolicy(first_delay_s=0.001, max_delay_s=0.001, give_up_after_s=0.01)
    sink.write_batch([crm_edit("气管插管（CRM 后改）", 1_796_004_003_000)])
    assert kingdee.saves == []
    [value] = sink.dlq.values  # type: ignore[attr-defined]
    letter = json.loads(value)
    assert letter["stage"] == "read-before-write" and "503" in letter["error"]
