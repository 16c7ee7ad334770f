"""CRM → Kingdee orders: which CRM changes are looked at, the rules file, the Kingdee lines, the comparison."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from core.ledger import Position
from flows.crm_orders_to_kingdee import Line, _same, load_rules, to_command
from flows.kingdee_documents import DocumentEvent

RULES = load_rules()


def event(record: dict[str, Any] | None, *, op: str = "u", by_integration: bool = False) -> DocumentEvent:
    env = {"op": op, "id": "42", "record": json.dumps(record) if record is not None else None,
           "by_integration": by_integration, "source": {"version": 1000, "commit_time": 1000}}
    return DocumentEvent("42", env, Position("zoho.sales_orders", 0, 1))


def test_the_rules_are_data() -> None:
    assert RULES.confirmed({"Status": "Confirmed"}) and not RULES.confirmed({"Status": "Created"})
    assert RULES.bill_no("42") == "CRM42" and RULES.refusal_msg_codes == {11, 12}
    assert RULES.account_number_fields == ("Kingdee_Number", "Account_Number")


def test_only_confirmed_or_linked_human_changes_are_looked_at() -> None:
    assert to_command(RULES, event({"Status": "Created"})) is None
    assert to_command(RULES, event({"Status": "Confirmed"}, by_integration=True)) is None
    assert to_command(RULES, event(None, op="d")) is None
    cmd = to_command(RULES, event({"Status": "Confirmed", "Subject": "Q4"}))
    assert cmd is not None and cmd.key == "42" and cmd.version == 1000 and cmd.number == "Q4"
    assert to_command(RULES, event({"Status": "Delivered", "Kingdee_Order_ID": "100001"})) is not None


def test_a_line_sends_material_by_number_and_the_tax_included_price() -> None:
    line = Line("7", "1.01.0001", Decimal(10), Decimal(100), Decimal(13))
    assert line.to_kingdee() == {"FMaterialId": {"FNumber": "1.01.0001"}, "FQty": 10.0, "FEntryID": 7,
                                 "FPrice": 100.0, "FTaxPrice": 113.0, "FEntryTaxRate": 13.0}
    assert "FEntryID" not in Line(None, "1.01.0001", Decimal(1), None, Decimal(13)).to_kingdee()


def test_an_order_kingdee_already_holds_is_not_saved_again() -> None:
    doc = {"CustId": {"Number": "CUST0001"}, "SaleOrderEntry": [
        {"Id": 7, "Seq": 1, "MaterialId": {"Number": "1.01.0001"}, "Qty": 10, "Price": 99.999999}]}
    same = [Line("7", "1.01.0001", Decimal(10), Decimal(100), Decimal(13))]
    assert _same(doc, "CUST0001", same)
    assert not _same(doc, "CUST0002", same)
    assert not _same(doc, "CUST0001", [Line("7", "1.01.0001", Decimal(11), Decimal(100), Decimal(13))])
    assert not _same(doc, "CUST0001", [Line(None, "1.01.0001", Decimal(10), Decimal(100), Decimal(13))])
    assert not _same(doc, "CUST0001", [*same, Line(None, "1.01.0002", Decimal(1), None, Decimal(13))])
