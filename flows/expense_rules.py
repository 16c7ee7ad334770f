"""The expense rules, declared as data in ``flows/mappings/expenses.toml``: which Huilianyi statuses count as
approved, the Kingdee bill made from an approved report (number, proposer, currency, one line per expense with the
expense type mapped to a Kingdee expense item), and which CRM campaign a report's amount adds to.

Pure: no I/O besides reading the file, so every rule is unit-tested on its own (``tests/unit/test_expense_rules.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.common.errors import PermanentError
from flows.mapping import MAPPINGS_DIR

RULES_PATH = MAPPINGS_DIR / "expenses.toml"
#: Environment variable naming another rules file.
RULES_ENV = "CDCHUB_EXPENSES_MAPPING"
CHINA_TZ = timezone(timedelta(hours=8))


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
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d")


def intent_fingerprint(rules: ExpenseRules, report: dict[str, Any]) -> str:
    """What the Kingdee side depends on: approved or not, and the bill's content.  The journal number and the
    modified time are left out, so our own write-back coming back from the poller changes nothing."""
    try:
        content: Any = rules.bill_model(report) if rules.approved(report) else None
    except PermanentError as exc:
        content = str(exc)
    blob = json.dumps({"approved": rules.approved(report), "bill": content}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def rules_path() -> Path:
    return Path(os.environ.get(RULES_ENV) or RULES_PATH)


def load_rules(path: Path | None = None) -> ExpenseRules:
    """Read and check the rules; a missing or wrong entry fails at start, naming the file and the key."""
    path = path or rules_path()
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        kd, camp = raw["kingdee"], raw["campaign"]
        items = {code: ExpenseItem(int(spec["id"]), str(spec["number"]), str(spec["name"]))
                 for code, spec in raw["expense_items"].items()}
        return ExpenseRules(
            approved_statuses=frozenset(int(s) for s in raw["statuses"]["approved"]),
            form=str(kd["form"]),
            bill_prefix=str(kd["bill_prefix"]),
            default_proposer_id=int(kd["default_proposer_id"]),
            contact_unit_type=str(kd.get("contact_unit_type") or "BD_Empinfo"),
            currencies={str(k): int(v) for k, v in (kd.get("currencies") or {}).items()},
            refusal_msg_codes=frozenset(int(c) for c in kd["refusal_msg_codes"]),
            deletable_statuses=frozenset(str(s) for s in kd["deletable_statuses"]),
            employees={str(k): int(v) for k, v in (raw.get("employees") or {}).items()},
            expense_items=items,
            campaign_field=str(camp["field_code"]),
            campaign_module=str(camp["module"]),
            cost_field=str(camp["cost_field"]),
            amount_field=str(camp["amount"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: missing or wrong entry {exc!r}") from exc
