"""`cdchub doctor`'s zoho-fields check: every CRM field the mappings write must exist in the org, else each record of
that module would be dead-lettered (INVALID_DATA) — the check names the missing fields and who creates them."""

from __future__ import annotations

from typing import Any

import pytest

from cdchub.doctor import target_checks
from cdchub.doctor.base import Context, ok
from connectors.settings import get_settings


class FieldsOfTheOrg:
    """A ZOHO client that answers ``settings/fields`` from the mappings' own field lists, minus ``lacking``."""

    def __init__(self, lacking: dict[str, set[str]]) -> None:
        self.lacking = lacking
        self.asked: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        module = kwargs["params"]["module"]
        self.asked.append(module)
        names = target_checks.crm_fields_written()[module] - self.lacking.get(module, set())
        return 200, {"fields": [{"api_name": n} for n in sorted(names | {"id", "Owner"})]}


def check(monkeypatch: pytest.MonkeyPatch, org: FieldsOfTheOrg) -> Any:
    monkeypatch.setattr(target_checks, "zoho_client", lambda ctx: org)
    ctx = Context(get_settings())
    ctx.found["zoho-scopes"] = ok("zoho-scopes", "granted")
    return target_checks.check_zoho_fields(ctx)


def test_the_mappings_write_the_crm_fields_the_flows_need() -> None:
    written = target_checks.crm_fields_written()
    assert {"Products", "Accounts", "Sales_Orders"} <= set(written)
    assert {"Kingdee_ID", "Product_Name"} <= written["Products"], "the external key and the mapped fields"


def test_an_org_with_every_field_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    org = FieldsOfTheOrg({})
    finding = check(monkeypatch, org)
    assert finding.status == "ok" and sorted(org.asked) == sorted(target_checks.crm_fields_written())


def test_a_missing_custom_field_fails_naming_it_and_who_creates_it(monkeypatch: pytest.MonkeyPatch) -> None:
    finding = check(monkeypatch, FieldsOfTheOrg({"Products": {"Kingdee_ID", "Specification"}}))
    assert finding.status == "fail"
    assert "Products: Kingdee_ID, Specification" in finding.what
    assert "custom fields" in finding.fix and "INVALID_DATA" in finding.fix
