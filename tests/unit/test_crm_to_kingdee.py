"""What the CRM → Kingdee flows make of a polled record: our own writes are not dropped by who wrote last (a
person's edit may hide under them), and a product whose Kingdee material is gone is never sent to Kingdee."""

from __future__ import annotations

import json

from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from core.ledger import Position
from flows.crm_to_kingdee import to_kingdee_command
from flows.kingdee_documents import DocumentEvent
from flows.specs import load_mapping

MAPPING = load_mapping("materials")


def polled(record: dict, *, by_integration: bool) -> DocumentEvent:
    envelope = {"op": "u", "record": json.dumps(record, ensure_ascii=False), "by_integration": by_integration,
                "modified_by_name": "CDC Hub Integration" if by_integration else "Sales Rep",
                "source": {"version": 1_796_616_000_000, "number": None}}
    return DocumentEvent("4876876000000000311", envelope, Position("zoho.products", 0, 7))


PRODUCT = {"Kingdee_ID": "100508", "Product_Name": "混沌物料 第886版", "Specification": "规格 6",
           "Description": "销售说明 676", "Kingdee_Deleted": False}


def test_a_record_we_wrote_last_still_carries_what_a_person_changed_before() -> None:
    cmd = to_kingdee_command("products_to_kingdee", MAPPING, polled(PRODUCT, by_integration=True))
    assert isinstance(cmd, SyncCommand)
    assert cmd.record["Description"] == "销售说明 676", "left to the field clock: an echo or a person's edit"


def test_empty_fields_of_our_own_write_are_not_taken_for_edits() -> None:
    ours = {**PRODUCT, "Description": None, "Specification": ""}
    cmd = to_kingdee_command("products_to_kingdee", MAPPING, polled(ours, by_integration=True))
    assert isinstance(cmd, SyncCommand) and "Description" not in cmd.record and "Specification" not in cmd.record


def test_a_product_deleted_in_kingdee_is_not_sent_and_a_persons_edit_of_it_is_reported() -> None:
    gone = {**PRODUCT, "Kingdee_Deleted": True, "Product_Active": False}
    assert to_kingdee_command("products_to_kingdee", MAPPING, polled(gone, by_integration=True)) is None
    letter = to_kingdee_command("products_to_kingdee", MAPPING, polled(gone, by_integration=False))
    assert isinstance(letter, DeadLetter) and letter.error_class == "NotPropagated"
    assert "record 100508 was deleted" in letter.error
