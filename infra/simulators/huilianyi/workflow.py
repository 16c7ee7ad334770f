"""Apply the moves of :mod:`statuses` to stored reports: one transaction per move, history kept, times bumped.

Every applied move and every journal number that changes sets ``lastModifiedDate`` to the time of the move, so
the change shows up in the next ``expenseReport/v2`` window. Writing the same journal number again changes
nothing (not even ``lastModifiedDate``): the write-back is idempotent and does not echo into the next poll.
"""

from __future__ import annotations

from typing import Any

from infra.simulators.huilianyi.errors import HuilianyiApiError, report_not_found, wrong_status
from infra.simulators.huilianyi.reports import ReportStore
from infra.simulators.huilianyi.statuses import JOURNAL_NO_STATUSES, WrongStatus, transition
from infra.simulators.huilianyi.timefmt import now_ms


class ReportWorkflow:
    def __init__(self, store: ReportStore) -> None:
        self.store = store

    def create(self, doc: dict[str, Any], operator: str | None = None) -> dict[str, Any]:
        with self.store.db.transaction():
            self.store.put(doc)
            self.store.add_event(
                doc["businessCode"], "create", None, doc["status"], operator or doc["applicantName"], None,
                doc["createdDate"],
            )  # fmt: skip
        return doc

    def load(self, business_code: str) -> dict[str, Any]:
        doc = self.store.get(business_code)
        if doc is None:
            raise report_not_found(business_code)
        return doc

    def move(
        self,
        business_code: str,
        action: str,
        *,
        operator: str | None = None,
        text: str | None = None,
        at_ms: int | None = None,
    ) -> dict[str, Any]:
        """Apply ``action`` (a key of ``statuses.TRANSITIONS``); 404 unknown code, 400 wrong status."""
        at = at_ms if at_ms is not None else now_ms()
        with self.store.db.transaction():
            doc = self.load(business_code)
            try:
                step = transition(action, doc["status"])
            except WrongStatus as exc:
                raise wrong_status(business_code, exc.current, int(exc.required)) from None
            doc["status"] = int(step.target)
            if step.reject_type is not None:
                doc["rejectType"] = int(step.reject_type)
            if step.submits:
                doc["lastSubmittedDate"] = at
            doc["lastModifiedDate"] = at
            self.store.put(doc)
            self.store.add_event(business_code, action, int(step.source), int(step.target), operator, text, at)
        return doc

    def write_journal_no(
        self,
        business_code: str,
        journal_no: str,
        *,
        company_code: str | None = None,
        at_ms: int | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Store the ERP bill number; returns ``(report, changed)``. Needs status 1003–1005 [L]."""
        with self.store.db.transaction():
            doc = self.load(business_code)
            if company_code and company_code != doc["companyCode"]:
                raise HuilianyiApiError(
                    400, "COMPANY_CODE_MISMATCH", f"报销单 {business_code} 不属于公司 {company_code}"
                )
            if doc["status"] not in JOURNAL_NO_STATUSES:
                raise wrong_status(business_code, doc["status"], min(JOURNAL_NO_STATUSES))
            if doc.get("journalNo") == journal_no:
                return doc, False
            at = at_ms if at_ms is not None else now_ms()
            previous = doc.get("journalNo")
            doc["journalNo"] = journal_no
            doc["lastModifiedDate"] = at
            self.store.put(doc)
            note = f"{previous} -> {journal_no}" if previous else journal_no
            self.store.add_event(business_code, "journal_no", doc["status"], doc["status"], None, note, at)
        return doc, True
