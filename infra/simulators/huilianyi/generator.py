"""Build plausible new expense reports (status 1001) from a seeded random source and optional pinned values.

Daily reports draw lines from entertainment, meetings, marketing and office supplies; travel reports from
transport, hotel and allowance, with a destination form value. A report linked to a marketing campaign carries
``{"fieldCode": "crm_campaign_id", "value": <campaign id>}`` in ``customFormValueVOList``. Amounts are CNY
with two decimals; ``taxAmount`` is the VAT inside the amount (``amount * rate / (1 + rate)``).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from infra.simulators.huilianyi.catalog import (
    CAMPAIGN_FIELD,
    CURRENCY,
    DESTINATIONS,
    EMPLOYEES,
    EMPLOYEES_BY_ID,
    EXPENSE_TYPES_BY_CODE,
    FORM_FIELDS,
    LINE_TYPES,
    REPORT_TYPE_TITLES,
)
from infra.simulators.huilianyi.statuses import RejectType, ReportType, Status

CENT = Decimal("0.01")
CAMPAIGN_LINE_TYPES = ("MARKETING", "MEETING", "ENTERTAINMENT")


@dataclass(frozen=True)
class LineSpec:
    expense_type_code: str
    amount: Decimal | None = None  # None: a random amount in the type's usual range
    comment: str | None = None


@dataclass(frozen=True)
class ReportSpec:
    """What a caller may pin down about a new report; everything left ``None`` is drawn at random."""

    type: ReportType | None = None
    employee_id: str | None = None
    campaign_id: str | None = None
    title: str | None = None
    lines: tuple[LineSpec, ...] | None = None


def _oid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _money(value: Decimal) -> float:
    return float(value.quantize(CENT, ROUND_HALF_UP))


def _form_value(code: str, value: str) -> dict[str, str]:
    return {"fieldCode": code, "fieldName": FORM_FIELDS[code], "value": value}


class ReportFactory:
    def __init__(self, company_code: str, company_oid: str) -> None:
        self.company_code = company_code
        self.company_oid = company_oid

    def build(
        self, rng: random.Random, spec: ReportSpec, *, report_id: str, business_code: str, at_ms: int
    ) -> dict[str, Any]:
        report_type = spec.type or rng.choice((ReportType.DAILY, ReportType.DAILY, ReportType.TRAVEL))
        employee = EMPLOYEES_BY_ID[spec.employee_id] if spec.employee_id else rng.choice(EMPLOYEES)
        destination = rng.choice(DESTINATIONS) if report_type == ReportType.TRAVEL else None
        forms = []
        if spec.campaign_id:
            forms.append(_form_value(CAMPAIGN_FIELD, spec.campaign_id))
        if destination:
            forms.append(_form_value("travel_destination", destination))
        reason = "市场活动支出" if spec.campaign_id else "日常业务支出"
        if destination:
            reason = f"{destination}出差"
        forms.append(_form_value("reason", reason))

        line_specs = spec.lines or self._random_lines(rng, report_type, bool(spec.campaign_id))
        lines = [self._line(rng, line, destination) for line in line_specs]
        total = sum((Decimal(str(line["amount"])) for line in lines), Decimal(0))
        title = spec.title or f"{employee.name}-{destination or ''}{REPORT_TYPE_TITLES[report_type]}"
        return {
            "id": report_id,
            "expenseReportOID": _oid(rng),
            "businessCode": business_code,
            "title": title,
            "status": int(Status.EDITING),
            "rejectType": int(RejectType.NONE),
            "type": int(report_type),
            "applicantOID": employee.oid,
            "applicantName": employee.name,
            "applicantEmployeeId": employee.employee_id,
            "departmentName": employee.department,
            "companyCode": self.company_code,
            "companyOID": self.company_oid,
            "currencyCode": CURRENCY,
            "totalAmount": _money(total),
            "baseCurrencyAmount": _money(total),
            "realPaymentAmount": _money(total),
            "createdDate": at_ms,
            "lastSubmittedDate": None,
            "lastModifiedDate": at_ms,
            "customFormValueVOList": forms,
            "invoiceVOList": lines,
        }

    @staticmethod
    def _random_lines(rng: random.Random, report_type: ReportType, campaign: bool) -> tuple[LineSpec, ...]:
        codes = CAMPAIGN_LINE_TYPES if campaign else LINE_TYPES[report_type]
        if report_type == ReportType.TRAVEL:
            chosen = ["TRAVEL_TRANSPORT", "TRAVEL_HOTEL", *rng.sample(codes, k=rng.randint(0, 1))]
        else:
            chosen = [rng.choice(codes) for _ in range(rng.randint(1, 3))]
        return tuple(LineSpec(code) for code in chosen)

    @staticmethod
    def _line(rng: random.Random, spec: LineSpec, destination: str | None) -> dict[str, Any]:
        kind = EXPENSE_TYPES_BY_CODE[spec.expense_type_code]
        amount = spec.amount
        if amount is None:
            amount = Decimal(rng.randint(kind.low * 100, kind.high * 100)) / 100
        tax = amount * kind.tax_rate / (1 + kind.tax_rate)
        comment = spec.comment or rng.choice(kind.comments)
        if destination and spec.comment is None and kind.code.startswith("TRAVEL"):
            comment = f"{destination} {comment}"
        attachments = [
            {"attachmentOID": _oid(rng), "fileName": f"发票{n + 1}.pdf", "fileType": "PDF"}
            for n in range(rng.randint(0, 2))
        ]
        return {
            "invoiceOID": _oid(rng),
            "expenseTypeCode": kind.code,
            "expenseTypeName": kind.name,
            "amount": _money(amount),
            "currencyCode": CURRENCY,
            "taxAmount": _money(tax),
            "taxRate": float(kind.tax_rate),
            "comment": comment,
            "attachments": attachments,
        }
