"""Expense reports, Huilianyi → Kingdee → Huilianyi: an approved report becomes a Kingdee 费用报销单
(``ER_ExpReimbursement``) and the bill number is written back to the report (``update/journalNo``); a report that is
rejected or cancelled after that loses its bill.

    huilianyi.expense_reports ─► decode ─► intent per report (approved or not) ─► ExpenseBillSink:
        approved     ─► bill found by its 来源单号 = business code (ExecuteBillQuery), or Save (status A 创建)
                        ─► journalNo = the bill's number, as Kingdee's coding rule gave it (idempotent)
        not approved ─► a bill we made (ledger) ─► deleted while Kingdee allows it (Z/A/D); submitted or audited
                        in Kingdee → left to finance, reported on cdchub.dlq.expenses_to_kingdee
        unmapped expense type, Kingdee refusal, retries exhausted ─► cdchub.dlq.expenses_to_kingdee

Rules are data (``flows/mappings/expenses.toml``, ``flows/expense_rules.py``).

Crash safety: the bill carries the business code (``FSourceBillNo``), looked up before a create, so a crash between
Kingdee's write and its answer (or between the save and the ledger record) never makes a second bill; the journal
number is written again after such a crash, which changes nothing in Huilianyi.  The ledger (keyed by business code,
versioned by ``lastModifiedDate``) skips versions already handled; its fingerprint is the intent (approved or not,
and the bill's content), not the report, so our own journal-number write coming back from the poller makes no call.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import dlq_topic
from connectors.common.delivery import deliver
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.huilianyi.client import HuilianyiClient
from connectors.huilianyi.source import SCHEMA, TOPIC
from connectors.kingdee.client import KingdeeApiError, KingdeeWebApiClient
from connectors.kingdee.form_requirements import FormRequirements
from connectors.kingdee.sink import kingdee_client
from connectors.settings import Settings, get_settings
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine
from flows.expense_rules import ExpenseRules, intent_fingerprint, load_rules
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters

log = logging.getLogger(__name__)
FLOW = "expenses_to_kingdee"
#: Huilianyi's answer when the report is not in a status that takes a journal number (it was rejected meanwhile).
WRONG_STATUS = "EXPENSE_REPORT_STATUS_ERROR"


class KingdeeRefused(PermanentError):
    """Kingdee refused the bill (validation, not operable); its message is kept."""


class BillLocked(PermanentError):
    """The report is no longer approved, but its Kingdee bill is submitted or audited: finance must act."""


def report_of(event: DocumentEvent) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(event.envelope["report"])
    return report


def to_command(rules: ExpenseRules, event: DocumentEvent) -> SyncCommand:
    """Every version of a report becomes a command: make sure the bill exists (approved) or does not."""
    report = report_of(event)
    code = event.key
    record = {"businessCode": code, "status": report.get("status"), "rejectType": report.get("rejectType"),
              "approved": rules.approved(report), "report": report}
    return SyncCommand(flow=FLOW, key=code, number=rules.bill_no(code), version=event.version, record=record,
                       fingerprint=intent_fingerprint(rules, report), captured_at_ms=event.commit_ms,
                       position=event.position)


class ExpenseBillPartition(LedgerSinkPartition):
    target_system = "kingdee"

    def __init__(self, kingdee: KingdeeWebApiClient, hly: HuilianyiClient, ledger: SyncLedger, dlq: object,
                 dlq_topic_name: str, rules: ExpenseRules, policy: RetryPolicy) -> None:
        super().__init__(ledger, dlq, FLOW, dlq_topic_name)  # type: ignore[arg-type]
        self.kingdee = kingdee
        self.hly = hly
        self.rules = rules
        self.policy = policy
        self.forms = FormRequirements(kingdee)

    def _find(self, code: str) -> tuple[str, str, str] | None:
        """The bill made from this expense report (its 来源单号 is the report's business code, which we wrote):
        Kingdee id, status and number — the number is the coding rule's, not necessarily the one asked for."""
        source = code.replace("'", "''")
        rows = self.kingdee.execute_bill_query(self.rules.form, "FID,FBillNo,FDocumentStatus",
                                               filter_string=f"FSourceBillNo = '{source}'")
        return (str(rows[0][0]), str(rows[0][2] or "").strip(), str(rows[0][1] or "").strip()) if rows else None

    def _ensure_bill(self, cmd: SyncCommand) -> tuple[str, str]:
        report = cmd.record["report"]
        code = cmd.key
        bill_no = self.rules.bill_no(code)
        model = self.rules.bill_model(report)  # an unmapped type fails before anything is written
        found = self._find(code)
        if found is not None:
            fid, action, bill_no = found[0], "found", found[2] or bill_no
        else:
            try:
                saved = self.kingdee.save(self.rules.form, self.forms.complete(self.rules.form, model))
                fid, action = str(saved.ids[0]), "insert"
                bill_no = str(saved.numbers[0]) if saved.numbers else bill_no
            except KingdeeApiError as exc:
                if exc.msg_code in self.rules.refusal_msg_codes:
                    message = "; ".join(str(e.get("Message")) for e in exc.errors) or str(exc)
                    raise KingdeeRefused(f"Kingdee refused the bill {bill_no} of expense report {code}: {message}",
                                         code=f"MsgCode {exc.msg_code}") from exc
                raise
        self._write_journal_no(report, bill_no)
        return fid, action

    def _write_journal_no(self, report: dict[str, Any], bill_no: str) -> None:
        code = str(report["businessCode"])
        if report.get("journalNo") == bill_no:
            return  # the report already shows it
        try:
            self.hly.update_journal_no(code, bill_no, company_code=report.get("companyCode") or None)
        except PermanentError as exc:
            if exc.code != WRONG_STATUS:
                raise
            # rejected after this version was read: the newer version follows and takes the bill back
            log.info("expense report %s is no longer approved; journal number %s not written", code, bill_no)

    def _remove_bill(self, cmd: SyncCommand) -> tuple[None, str]:
        found = self._find(cmd.key)
        if found is None:
            return None, "absent"
        fid, status, bill_no = found
        if status not in self.rules.deletable_statuses:
            raise BillLocked(
                f"expense report {cmd.key} is no longer approved (status {cmd.record.get('status')}, rejectType "
                f"{cmd.record.get('rejectType')}) but its Kingdee bill {bill_no} has status {status} in Kingdee: "
                f"not deleted; finance must un-audit and delete (or void) it", code="KINGDEE_BILL_LOCKED")
        self.kingdee.delete(self.rules.form, ids=[fid])
        return None, "delete"

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        done: list[tuple[Planned, str | None, str, int]] = []
        for p in planned:
            cmd = p.command
            entry = entries.get(cmd.key)
            if not cmd.record["approved"] and (entry is None or not entry.target_id):
                done.append((p, None, "absent", 0))  # we never made a bill for it: nothing to take back
                continue
            step = self._ensure_bill if cmd.record["approved"] else self._remove_bill
            try:
                (fid, action), attempts = self.try_call(partial(step, cmd), f"Kingdee bill of expense report "
                                                        f"{cmd.key}")
            except (GaveUp, PermanentError) as exc:
                self.dead_letter(cmd, exc, getattr(exc, "attempts", 1), stage="save")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(cmd, exc)
                continue
            log.info("expense report %s (status %s) → Kingdee bill %s (%s)", cmd.key, cmd.record.get("status"),
                     cmd.number, action)
            done.append((p, fid, action, attempts))
        self.applied(done)

    def close(self) -> None:
        super().close()
        self.kingdee.close()
        self.hly.close()


class ExpenseBillSink(DynamicSink[SyncCommand]):
    """Effectively-once Kingdee bills and journal numbers under at-least-once input (see module doc)."""

    def __init__(self, settings: Settings, rules: ExpenseRules, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> ExpenseBillPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return ExpenseBillPartition(
            kingdee_client(self.settings), HuilianyiClient(self.settings.huilianyi),
            SyncLedger(engine, FLOW, "kingdee"), producer(self.settings.kafka),
            self.settings.kafka.topic(dlq_topic(FLOW)), self.rules, self.policy,
        )


def build_flow(settings: Settings | None = None, rules: ExpenseRules | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    rules = rules or load_rules()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, TOPIC, SCHEMA)
    commands: Stream[SyncCommand] = op.map("intent", events, partial(to_command, rules))
    deliver("kingdee_expense_bills", commands, ExpenseBillSink(settings, rules))
    write_dead_letters(FLOW, settings, read_dead)
    return flow
