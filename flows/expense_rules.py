"""The expense rules, declared as data in ``flows/mappings/expenses.toml``: which Huilianyi statuses count as
approved, the Kingdee bill made from an approved report (number, proposer, currency, one line per expense with the
expense type mapped to a Kingdee expense item), and which CRM campaign a report's amount adds to.

Pure: no I/O besides reading the file, so every rule is unit-tested on its own (``tests/unit/test_expense_rules.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from connectors.settings import get_settings
from core.china_time import CHINA_TIME
from core.errors import PermanentError
from core.toml_specs import Spec, load_toml_spec
from flows.specs import spec_path

#: The rules file unless ``CDCHUB_FLOWS__EXPENSES_MAPPING`` names another.
RULES_PATH = spec_path("expenses")


class UnmappedExpenseType(PermanentError):
    """A report has an expense type the mapping does not know: no Kingdee bill until the mapping says where."""


@dataclass(frozen=True)
class ExpenseItem:
    """A Kingdee 费用项目."""

    id: int
    number: str
    name: str


@dataclass(frozen=True)
class ExpenseRules:
    approved_statuses: frozenset[int]
    form: str
    bill_prefix: str
    default_proposer_id: int
    contact_unit_type: str
    currencies: dict[str, int]
    refusal_msg_codes: frozenset[int]
    deletable_statuses: frozenset[str]
    employees: dict[str, int]
    expense_items: dict[str, ExpenseItem]
    campaign_field: str
    campaign_module: str
    cost_field: str
    amount_field: str

    # --- the report -----------------------------------------------------------------------------------------
    def approved(self, report: dict[str, Any]) -> bool:
        return int(report.get("status") or 0) in self.approved_statuses

    def bill_no(self, business_code: str) -> str:
        return f"{self.bill_prefix}{business_code}"

    def campaign_of(self, report: dict[str, Any]) -> str | None:
        """The CRM campaign id the report is linked to (its custom form value), or None."""
        for value in report.get("customFormValueVOList") or []:
            if value.get("fieldCode") == self.campaign_field and str(value.get("value") or "").strip():
                return str(value["value"]).strip()
        return None

    def amount_of(self, report: dict[str, Any]) -> Decimal:
        raw = report.get(self.amount_field)
        if raw in (None, ""):
            raw = report.get("totalAmount")
        return Decimal(str(raw if raw not in (None, "") else 0))

    # --- the Kingdee bill -----------------------------------------------------------------------------------
    def bill_model(self, report: dict[str, Any]) -> dict[str, Any]:
        """The ``Save`` model of the report's 费用报销单; ``UnmappedExpenseType`` naming every unknown type."""
        lines = report.get("invoiceVOList") or []
        unknown = sorted({str(line.get("expenseTypeCode")) for line in lines
                          if line.get("expenseTypeCode") not in self.expense_items})
        code = str(report["businessCode"])
        if unknown:
            names = ", ".join(
                f"{t} ({next((str(li.get('expenseTypeName')) for li in lines if li.get('expenseTypeCode') == t), '?')})"
                for t in unknown)
            raise UnmappedExpenseType(f"expense report {code}: expense type {names} is not mapped to a Kingdee "
                                      f"expense item (flows/mappings/expenses.toml [expense_items])",
                                      code="EXPENSE_TYPE_UNMAPPED")
        if not lines:
            raise PermanentError(f"expense report {code} has no expense lines", code="VALIDATION")
        day = _china_date(report.get("lastSubmittedDate") or report.get("createdDate"))
        proposer = self.employees.get(str(report.get("applicantEmployeeId") or ""), self.default_proposer_id)
        model: dict[str, Any] = {
            "FID": 0,
            "FBillNo": self.bill_no(code),
            "FProposerID": {"FID": proposer},
            "FContactUnitType": self.contact_unit_type,
            "FContactUnit": {"FID": proposer},
            "FCausa": str(report.get("title") or ""),
            "FSourceBillNo": code,
            "FEntity": [self._line(line, day) for line in lines],
        }
        if day:
            model["FDate"] = day
        currency = self.currencies.get(str(report.get("currencyCode") or ""))
        if currency is not None:
            model["FCurrencyID"] = {"FID": currency}
        return model

    def _line(self, line: dict[str, Any], day: str | None) -> dict[str, Any]:
        item = self.expense_items[str(line["expenseTypeCode"])]
        amount = _dec(line.get("amount"))
        remark = " ".join(str(p) for p in (line.get("expenseTypeName"), line.get("comment")) if p)
        entry: dict[str, Any] = {
            "FExpID": {"FID": item.id},
            "FReqAmount": float(amount),
            "FExpAmount": float(amount),
            "FTaxRate": float(_dec(line.get("taxRate")) * 100),
            "FTaxAmount": float(_dec(line.get("taxAmount"))),
            "FRemark": remark,
        }
        if day:
            entry["FOccurDate"] = day
        return entry


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _china_date(instant: Any) -> str | None:
    """An API instant (``2026-11-30T02:00:00Z``) → the China calendar day ``2026-11-30``."""
    if not instant:
        return None
    moment = datetime.fromisoformat(str(instant).replace("Z", "+00:00"))
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d")


def intent_fingerprint(rules: ExpenseRules, report: dict[str, Any]) -> str:
    """What the Kingdee side depends on: approved or not, and the bill's content.  The journal number and the
    modified time are left out, so our own write-back coming back from the poller changes nothing."""
    try:
        content: Any = rules.bill_model(report) if rules.approved(report) else None
    except PermanentError as exc:
        content = str(exc)
    blob = json.dumps({"approved": rules.approved(report), "bill": content}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


# --- the file --------------------------------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1)]


class StatusesSpec(Spec):
    #: Huilianyi report statuses in which a report counts as approved.
    approved: frozenset[int] = Field(min_length=1)


class KingdeeBillSpec(Spec):
    form: Text
    bill_prefix: Text
    default_proposer_id: int
    contact_unit_type: Text = "BD_Empinfo"
    currencies: dict[str, int] = {}
    refusal_msg_codes: frozenset[int]
    deletable_statuses: frozenset[str]


class ExpenseItemSpec(Spec):
    id: int
    number: Text
    name: Text


class CampaignCostSpec(Spec):
    field_code: Text
    module: Text
    cost_field: Text
    amount: Text


class ExpensesSpec(Spec):
    """``flows/mappings/expenses.toml``."""

    statuses: StatusesSpec
    kingdee: KingdeeBillSpec
    employees: dict[str, int] = {}
    expense_items: dict[str, ExpenseItemSpec]
    campaign: CampaignCostSpec


def rules_path() -> Path:
    return get_settings().flows.expenses_mapping or RULES_PATH


def load_rules(path: Path | None = None) -> ExpenseRules:
    """Read and check the rules (``path``, else the configured file); a missing or wrong entry fails at start,
    naming the file and the key."""
    path = path or rules_path()
    spec = load_toml_spec(path, ExpensesSpec)
    kd, camp = spec.kingdee, spec.campaign
    return ExpenseRules(
        approved_statuses=spec.statuses.approved,
        form=kd.form,
        bill_prefix=kd.bill_prefix,
        default_proposer_id=kd.default_proposer_id,
        contact_unit_type=kd.contact_unit_type,
        currencies=dict(kd.currencies),
        refusal_msg_codes=kd.refusal_msg_codes,
        deletable_statuses=kd.deletable_statuses,
        employees=dict(spec.employees),
        expense_items={code: ExpenseItem(item.id, item.number, item.name) for code, item in spec.expense_items.items()},
        campaign_field=camp.field_code,
        campaign_module=camp.module,
        cost_field=camp.cost_field,
        amount_field=camp.amount,
    )
