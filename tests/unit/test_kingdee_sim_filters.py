"""ExecuteBillQuery FilterString: parsing into a tree and compiling to SQL conditions (no SQL text from input)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import column
from sqlalchemy.dialects import postgresql

from infra.simulators.kingdee.filters import BoolOp, Cmp, FilterError, compile_filter, fields_of, parse_filter


def test_simple_comparisons_joined_by_and() -> None:
    tree = parse_filter("FModifyDate >= '2024-01-01 00:00:00' AND FDocumentStatus = 'C'")
    assert tree == BoolOp(
        "AND", (Cmp("FModifyDate", ">=", ("2024-01-01 00:00:00",)), Cmp("FDocumentStatus", "=", ("C",)))
    )


def test_precedence_parentheses_and_operators() -> None:
    tree = parse_filter("a = 1 or b <> 'x' and not (c like 'A%' or d in (1, 2.5)) and e is not null")
    assert isinstance(tree, BoolOp) and tree.op == "OR"
    assert tree.items[0] == Cmp("a", "=", (Decimal(1),))
    right = tree.items[1]
    assert right.op == "AND" and right.items[0] == Cmp("b", "<>", ("x",)) and right.items[2] == Cmp("e", "NOTNULL")
    assert fields_of(tree) == ["a", "b", "c", "d", "e"]


def test_quotes_unicode_dotted_and_entry_fields() -> None:
    assert parse_filter("FName = N'O''Brien 麻醉'") == Cmp("FName", "=", ("O'Brien 麻醉",))
    assert parse_filter("FCustId.FNumber != 'C1'") == Cmp("FCustId.FNumber", "<>", ("C1",))
    assert parse_filter("FSaleOrderEntry_FEntryID between 1 and 5") == Cmp(
        "FSaleOrderEntry_FEntryID", "BETWEEN", (Decimal(1), Decimal(5))
    )
    assert parse_filter("  ") is None


@pytest.mark.parametrize(
    "bad", ["FID >", "FID = 1 AND", "(FID = 1", "FID = 'open", "FID 1", "; DROP TABLE x", "FID = 1)"]
)
def test_malformed_filters_raise_filter_error(bad: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(bad)


def test_compiled_condition_binds_values_as_parameters() -> None:
    tree = parse_filter("FNumber like '1.%' and FQty > 2 and FBillNo not in ('a', 'b')")
    cols = {"FNumber": column("FNUMBER"), "FQty": column("FQTY"), "FBillNo": column("FBILLNO")}
    cond = compile_filter(tree, cols.__getitem__, lambda _f, v: v)
    compiled = cond.compile(dialect=postgresql.dialect())  # type: ignore[union-attr]
    sql = str(compiled)
    assert "'1.%'" not in sql and "%(param_1)s" in sql
    assert {"1.%", Decimal(2)} <= {v for v in compiled.params.values() if not isinstance(v, list)}
