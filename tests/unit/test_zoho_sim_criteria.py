"""Search criteria of the ZOHO simulator: parsing, escaping, evaluation, index use."""

from __future__ import annotations

import pytest

from infra.simulators.zoho.catalog import PRODUCTS
from infra.simulators.zoho.criteria import (
    Condition,
    CriteriaError,
    Group,
    compile_criteria,
    index_lookup,
    parse_criteria,
)
from infra.simulators.zoho.timefmt import ZohoClock

CLOCK = ZohoClock("+08:00")


def matches(criteria: str, row: dict[str, object]) -> bool:
    return compile_criteria(parse_criteria(criteria), PRODUCTS, CLOCK)(row)


def test_escaped_parentheses_and_commas_are_literal() -> None:
    node = parse_criteria(r"(Product_Name:equals:Bolt \(M6\, zinc\) \\ 2)")

    assert node == Condition("Product_Name", "equals", (r"Bolt (M6, zinc) \ 2",))


def test_unescaped_commas_separate_in_values() -> None:
    node = parse_criteria(r"(Kingdee_ID:in:A,B\,C,D)")

    assert node == Condition("Kingdee_ID", "in", ("A", "B,C", "D"))


def test_and_binds_tighter_than_or() -> None:
    node = parse_criteria("((Kingdee_ID:equals:A)and(Product_Code:equals:B)or(Kingdee_ID:equals:C))")

    assert isinstance(node, Group) and node.op == "or"
    assert isinstance(node.items[0], Group) and node.items[0].op == "and"


@pytest.mark.parametrize(
    "criteria",
    [
        "",
        "(Product_Name:equals:a (b))",
        "((Kingdee_ID:equals:A)xor(Kingdee_ID:equals:B))",
        "(Kingdee_ID:equals:A",
        "(Kingdee_ID)",
        "(" + "and".join(f"(Kingdee_ID:equals:{i})" for i in range(11)) + ")",
    ],
)
def test_malformed_criteria_are_refused(criteria: str) -> None:
    with pytest.raises(CriteriaError):
        compile_criteria(parse_criteria(criteria), PRODUCTS, CLOCK)


def test_operators_must_suit_the_field_type() -> None:
    with pytest.raises(CriteriaError):
        compile_criteria(parse_criteria("(Product_Active:greater_than:1)"), PRODUCTS, CLOCK)
    with pytest.raises(CriteriaError):
        compile_criteria(parse_criteria("(Colour:equals:red)"), PRODUCTS, CLOCK)


def test_evaluation_by_type() -> None:
    row = {"Product_Name": "Bolt M6", "Unit_Price": 3.5, "Product_Active": True, "Kingdee_ID": "K-1"}

    assert matches("(Product_Name:equals:bolt m6)", row)
    assert matches("(Product_Name:starts_with:BOLT)", row)
    assert matches("(Unit_Price:between:3,4)", row)
    assert not matches("(Unit_Price:greater_than:3.5)", row)
    assert matches("(Product_Active:equals:true)", row)
    assert matches("(Product_Code:equals:${EMPTY})", row)
    assert matches("((Kingdee_ID:in:K-0,K-1)and(Unit_Price:less_equal:3.5))", row)


def test_equals_on_a_key_field_uses_the_index() -> None:
    assert index_lookup(parse_criteria("((Product_Code:equals:X)and(Kingdee_ID:equals:K-1))"), PRODUCTS) == (
        "Kingdee_ID",
        "k-1",
    )
    assert index_lookup(parse_criteria("((Kingdee_ID:equals:A)or(Kingdee_ID:equals:B))"), PRODUCTS) is None
