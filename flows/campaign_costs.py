"""Campaign costs, Huilianyi → CRM: the approved expense reports linked to a marketing campaign add up to that CRM
campaign's ``Actual_Cost``.

    huilianyi.expense_reports ─► decode ─► what each report gives its campaign (keyed by report)
        ─► sum per campaign (keyed by campaign id, coalesced) ─► CampaignCostSink (PUT Campaigns Actual_Cost)
                                                                  └─ campaign not in the CRM ─► dead letter naming it

* **Per report** (``BillAmounts`` of ``flows/bill_amounts.py``, state per report: what it gave last): an approved
  report (``[statuses] approved``) linked to a campaign (custom form value ``[campaign] field_code``) gives its amount
  (``[campaign] amount``); any other status gives nothing.  Each change is sent as "report R now gives campaign C
  amount a (or nothing)", so a rejection, a cancellation or a report moved to another campaign takes the amount back.
* **Per campaign** (:class:`CampaignCost`, state ``{report: (amount, version)}`` + tombstones, as the order sums):
  the cost is the **sum over the live reports**, never an increment, so a replay or a duplicate cannot count a report
  twice; it is versioned by the newest report version it includes.  Changes are coalesced for
  ``CDCHUB_FLOWS__CAMPAIGN_COSTS_COALESCE_MS`` (a burst or a replay becomes one write per campaign).  Both states
  are Bytewax recovery state: they survive crashes.
* **Writes** go through the flow's ledger (key ``campaign:<id>``): a total at a version already written is skipped,
  so replaying the topic from the start (even without recovery state) writes nothing; while the flow catches up
  with its topic, costs wait in the delivery step and only each campaign's last is written
  (``hold_until_caught_up``), so reports replayed out of order never show a partial cost.

``Actual_Cost`` is owned by this flow: a value typed into the CRM is replaced at the next change of the campaign's
reports.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import partial

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import dlq_topic
from connectors.common.delivery import deliver
from connectors.common.kafka import producer
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.huilianyi.source import SCHEMA, TOPIC
from connectors.settings import Settings, get_settings
from connectors.zoho.client import ZohoClient
from connectors.zoho.update_sink import ZohoUpdatePartition
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine
from flows.bill_amounts import BillAmounts, BillChange, Contribution
from flows.expense_rules import ExpenseRules, load_rules
from flows.expenses_to_kingdee import report_of
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.order_sums import RETIRE_AFTER, OrderState, OrderTotal, SumOverBills, apply_contribution

log = logging.getLogger(__name__)
FLOW = "campaign_costs"
#: Changes of one campaign's cost are gathered this long before the write, by default
#: (``Settings.flows.campaign_costs_coalesce_ms``).
COALESCE_S = 0.3

Clock = Callable[[], float]


def report_change(rules: ExpenseRules, event: DocumentEvent) -> BillChange:
    """What this version of a report gives its campaign (nothing: not approved, or not linked)."""
    report = report_of(event)
    campaign = rules.campaign_of(report)
    amounts = ((campaign, rules.amount_of(report)),) if campaign and rules.approved(report) else ()
    return BillChange(event.key, event.key, amounts, event.version, event.commit_ms, event.position)


class CampaignCost(SumOverBills[OrderTotal]):
    """Per campaign: the sum over its live reports, written once per coalescing window (see module doc)."""

    def __init__(self, state: OrderState | None, coalesce_s: float = COALESCE_S, clock: Clock = time.time,
                 retire_after: timedelta = RETIRE_AFTER) -> None:
        super().__init__(state, clock, retire_after)
        self.coalesce_s = coalesce_s

    def on_item(self, value: Contribution) -> tuple[Iterable[OrderTotal], bool]:
        now = self.clock()
        self._prune(now)
        total = apply_contribution(self.state, value, now)
        if total is not None:
            if self.state.pending is None:
                self.state.next_at = now + self.coalesce_s
            self.state.pending = total
        return [], self._discard()

    def on_notify(self) -> tuple[Iterable[OrderTotal], bool]:
        now = self.clock()
        self._prune(now)
        out: list[OrderTotal] = []
        if self.state.pending is not None and now >= self.state.next_at:
            out, self.state.pending = [self.state.pending], None
        return out, self._discard()


def cost_command(rules: ExpenseRules, total: OrderTotal) -> SyncCommand:
    record = {"id": total.order, rules.cost_field: float(total.amount)}
    blob = json.dumps(record, sort_keys=True, default=str).encode()
    return SyncCommand(flow=FLOW, key=f"campaign:{total.order}", number=total.order, version=total.version,
                       record=record, fingerprint=hashlib.sha256(blob).hexdigest()[:32],
                       captured_at_ms=total.commit_ms, position=total.position)


class CampaignCostPartition(ZohoUpdatePartition):
    """``PUT Campaigns`` by id, after making sure the campaign exists (a missing one is dead-lettered by id)."""

    def _exists(self, campaign_id: str) -> bool:
        try:
            return self.client.get(self.module, campaign_id) is not None
        except PermanentError:
            return False  # an id the CRM cannot even read (not numeric)

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        known: list[Planned] = []
        for p in planned:
            cid = str(p.command.record["id"])
            try:
                exists, _ = self.try_call(partial(self._exists, cid), f"CRM campaign {cid}")
            except GaveUp as exc:
                self.dead_letter(p.command, exc, exc.attempts, stage="update")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(p.command, exc)
                continue
            if exists:
                known.append(p)
                continue
            amount = next((v for k, v in p.command.record.items() if k != "id"), None)
            self.dead_letter(p.command, PermanentError(
                f"CRM campaign {cid} not found ({self.module}): the actual cost {amount} of its approved expense "
                f"reports was not written", code="CAMPAIGN_MISSING"), 1, stage="update")
        if known:
            super().write(known, entries)


class CampaignCostSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, rules: ExpenseRules, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> CampaignCostPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return CampaignCostPartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, FLOW, "zoho"),
            producer(self.settings.kafka), FLOW, self.rules.campaign_module, self.policy,
            self.settings.kafka.topic(dlq_topic(FLOW)),
        )


def build_flow(settings: Settings | None = None, rules: ExpenseRules | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    rules = rules or load_rules()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, TOPIC, SCHEMA)
    changes = op.map("report_gives", events, partial(report_change, rules))
    by_report = op.key_on("by_report", changes, lambda c: c.bill)
    contributions = op.stateful("per_report", by_report, BillAmounts)
    by_campaign = op.key_on("by_campaign", op.map("drop_report", contributions, lambda kv: kv[1]), lambda c: c.order)
    coalesce_s = settings.flows.campaign_costs_coalesce_ms / 1000
    totals = op.stateful("sum_per_campaign", by_campaign, lambda state: CampaignCost(state, coalesce_s))
    commands = op.map("to_command", totals, lambda kv: cost_command(rules, kv[1]))
    deliver("crm_campaign_costs", commands, CampaignCostSink(settings, rules), flow=FLOW,
            hold_until_caught_up=True, upstream_interval_s=coalesce_s)  # reports of several partitions
    write_dead_letters(FLOW, settings, read_dead)
    return flow

