"""What a Kingdee form requires on create, against what cdchub sends (connectors/kingdee/form_requirements.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.kingdee.client import KingdeeApiError
from connectors.kingdee.form_requirements import FormRequirements, FormRequirementsUnmet, load_defaults
from core.errors import PermanentError


class Kingdee:
    def __init__(self, head: set[str], rows: set[str], refuse: bool = False) -> None:
        self.head, self.rows, self.refuse, self.asked = head, rows, refuse, 0

    def business_info(self, form: str) -> dict[str, Any]:
        self.asked += 1
        if self.refuse:
            raise KingdeeApiError("QueryBusinessInfo refused", 8, [])

        def fields(required: set[str], others: tuple[str, ...]) -> list[dict[str, Any]]:
            return [{"Key": k, "MustInput": 1} for k in required] + [{"Key": k, "MustInput": 0} for k in others]

        return {"Entrys": [{"Key": "FBillHead", "Fields": fields(self.head, ("FNote", "FBillNo"))},
                           {"Key": "FSaleOrderEntry", "Fields": fields(self.rows, ("FPrice",))}]}


ORDER = {"FID": 0, "FCustId": {"FNumber": "C1"}, "FDate": "2026-12-07",
         "FSaleOrderEntry": [{"FMaterialId": {"FNumber": "M1"}, "FQty": 2}]}


def test_defaults_fill_what_the_order_leaves_out_and_the_form_is_read_once() -> None:
    kingdee = Kingdee({"FCustId", "FDate", "FSaleOrgId", "FBillTypeID", "FBillNo"}, {"FMaterialId", "FQty"})
    forms = FormRequirements(kingdee, {"SAL_SaleOrder": {"FSaleOrgId": {"FNumber": "100"},
                                                         "FBillTypeID": {"FNumber": "XSDD01_SYS"},
                                                         "FDate": "2000-01-01"}})
    done = forms.complete("SAL_SaleOrder", dict(ORDER))
    assert done["FSaleOrgId"] == {"FNumber": "100"} and done["FDate"] == "2026-12-07", "what is mapped wins"
    forms.complete("SAL_SaleOrder", dict(ORDER))
    assert kingdee.asked == 1


def test_a_required_field_neither_mapped_nor_declared_is_named_with_the_file_to_edit() -> None:
    kingdee = Kingdee({"FCustId", "FSaleOrgId", "FSalerId"}, {"FMaterialId", "FQty", "FUnitID"})
    forms = FormRequirements(kingdee, {"SAL_SaleOrder": {"FSaleOrgId": {"FNumber": "100"}}})
    with pytest.raises(FormRequirementsUnmet) as unmet:
        forms.complete("SAL_SaleOrder", dict(ORDER))
    assert isinstance(unmet.value, PermanentError) and unmet.value.code == "FORM_REQUIREMENTS"
    assert "fsalerid, funitid" in str(unmet.value).lower() and "kingdee_forms.toml" in str(unmet.value)


def test_sub_entities_count_as_header_fields_and_a_kingdee_without_metadata_is_not_checked() -> None:
    kingdee = Kingdee({"FCustId", "FSettleCurrId"}, set())
    order = {**ORDER, "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}}}
    assert FormRequirements(kingdee, {}).complete("SAL_SaleOrder", order) == order
    older = Kingdee(set(), set(), refuse=True)
    assert FormRequirements(older, {}).complete("SAL_SaleOrder", dict(ORDER)) == ORDER


def test_the_installation_file_is_read_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    assert load_defaults()["SAL_SaleOrder"]["FSaleOrgId"] == {"FNumber": "100"}
    bad = tmp_path / "forms.toml"
    bad.write_text('SAL_SaleOrder = "not a table"\n')
    with pytest.raises(ValueError, match="forms.toml"):
        load_defaults(bad)
