"""Field validation of the ZOHO simulator's module machinery."""

from __future__ import annotations

from typing import Any

import pytest

from infra.simulators.zoho.catalog import PRODUCTS
from infra.simulators.zoho.modules import FieldDef, InvalidValue, ModuleDef, clean_record, coerce


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        (FieldDef("T"), "x" * 255, "x" * 255),
        (FieldDef("N", "currency"), "12.50", 12.5),
        (FieldDef("N", "currency"), 7, 7),
        (FieldDef("N", "double"), 1.25, 1.25),
        (FieldDef("N", "integer"), "42", 42),
        (FieldDef("B", "boolean"), False, False),
        (FieldDef("D", "date"), "2024-02-29", "2024-02-29"),
        (FieldDef("DT", "datetime"), "2024-02-29T10:00:00+08:00", "2024-02-29T10:00:00+08:00"),
        (FieldDef("L", "lookup"), {"id": 123}, {"id": "123"}),
        (FieldDef("P", "picklist", picklist_values=("A",)), "not listed", "not listed"),
        (FieldDef("T"), None, None),
    ],
)
def test_accepted_values(field: FieldDef, value: Any, stored: Any) -> None:
    assert coerce(field, value) == stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (FieldDef("T"), "x" * 256),
        (FieldDef("T"), 12),
        (FieldDef("N", "currency"), "twelve"),
        (FieldDef("N", "currency"), True),
        (FieldDef("N", "currency"), "1.1234567891"),
        (FieldDef("N", "currency"), "12345678901234567"),
        (FieldDef("N", "integer"), 1.5),
        (FieldDef("B", "boolean"), "true"),
        (FieldDef("D", "date"), "2023-02-29"),
        (FieldDef("D", "date"), "29/02/2024"),
        (FieldDef("DT", "datetime"), "2024-02-29T10:00:00"),
        (FieldDef("L", "lookup"), {"name": "x"}),
        (FieldDef("P", "picklist", picklist_values=("A",), restricted=True), "B"),
    ],
)
def test_refused_values(field: FieldDef, value: Any) -> None:
    with pytest.raises(InvalidValue):
        coerce(field, value)


def test_insert_needs_mandatory_fields_update_only_when_sent() -> None:
    _, on_insert = clean_record(PRODUCTS, {"Kingdee_ID": "K"}, 3, for_insert=True)
    _, on_update = clean_record(PRODUCTS, {"Kingdee_ID": "K"}, 3, for_insert=False)
    _, blanked = clean_record(PRODUCTS, {"Product_Name": " "}, 0, for_insert=False)

    assert on_insert is not None and on_insert.code == "MANDATORY_NOT_FOUND"
    assert on_insert.details == {"api_name": "Product_Name", "json_path": "$.data[3].Product_Name"}
    assert on_update is None
    assert blanked is not None and blanked.code == "MANDATORY_NOT_FOUND"


def test_unknown_and_system_fields_are_ignored() -> None:
    values, problem = clean_record(
        PRODUCTS, {"Product_Name": "A", "Nope": 1, "Modified_Time": "x", "id": "1"}, 0, for_insert=True
    )

    assert problem is None
    assert values == {"Product_Name": "A"}


def test_invalid_value_names_field_and_path() -> None:
    _, problem = clean_record(PRODUCTS, {"Product_Name": "A", "Unit_Price": "x"}, 2, for_insert=True)

    assert problem is not None
    assert problem.to_json() == {
        "code": "INVALID_DATA",
        "details": {
            "expected_data_type": "currency",
            "api_name": "Unit_Price",
            "json_path": "$.data[2].Unit_Price",
        },
        "message": "invalid data",
        "status": "error",
    }


def test_a_module_is_declared_as_data() -> None:
    leads = ModuleDef(
        "Leads",
        fields=(FieldDef("Last_Name", mandatory=True), FieldDef("Email", unique=False)),
        system_duplicate_field="Email",
        display_field="Last_Name",
    )

    assert leads.key_fields == ("Email",)
    assert PRODUCTS.key_fields == ("Kingdee_ID", "Product_Name")
    with pytest.raises(ValueError):
        ModuleDef("Bad", fields=(FieldDef("A"),), system_duplicate_field="B")


def test_line_items_accept_both_shapes_and_store_the_v3_name() -> None:
    from infra.simulators.zoho.catalog import SALES_ORDERS
    from infra.simulators.zoho.modules import versioned_view

    v2 = {"Subject": "S", "Product_Details": [{"product": {"id": "7"}, "quantity": "2", "list_price": 3}]}
    v8 = {"Subject": "S", "Ordered_Items": [{"Product_Name": {"id": "7"}, "Quantity": 2, "List_Price": 3}]}

    stored_v2, problem_v2 = clean_record(SALES_ORDERS, v2, 0, for_insert=True)
    stored_v8, problem_v8 = clean_record(SALES_ORDERS, v8, 0, for_insert=True)

    assert problem_v2 is None and problem_v8 is None
    assert (
        stored_v2
        == stored_v8
        == {"Subject": "S", "Ordered_Items": [{"Product_Name": {"id": "7"}, "Quantity": 2, "List_Price": 3}]}
    )
    shown = versioned_view(SALES_ORDERS, {"Ordered_Items": [{"Product_Name": {"id": "7"}, "Quantity": 2}]}, "v2")
    assert shown == {"Product_Details": [{"product": {"id": "7"}, "quantity": 2, "line_tax": []}]}


def test_a_subform_row_names_its_own_missing_field() -> None:
    from infra.simulators.zoho.catalog import SALES_ORDERS

    _, problem = clean_record(SALES_ORDERS, {"Subject": "S", "Ordered_Items": [{"Quantity": 1}]}, 3, for_insert=True)

    assert problem is not None and problem.code == "MANDATORY_NOT_FOUND"
    assert problem.details == {"api_name": "Product_Name", "json_path": "$.data[3].Ordered_Items[0].Product_Name"}
