"""Campaign costs (flows/campaign_costs.py): what each report version gives its campaign, the sum per campaign over
live reports (rejections take amounts back, replays and duplicates change nothing, coalescing, crash recovery), and
the whole pipeline in a Bytewax run."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from connectors.huilianyi.source import to_event
from core.ledger import Position
from flows.bill_amounts import BillAmounts, Contribution
from flows.campaign_costs import CampaignCost, cost_command, report_change
from flows.expense_rules import RULES_PATH, load_rules
from flows.kingdee_documents import DocumentEvent
from flows.order_sums import OrderTotal

RULES = load_rules(RULES_PATH)
POS = Position("huilianyi.expense_reports", 0, 0)
A, B = "4876876000000300001", "4876876000000300002"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def version(code: str, v: int, status: int, amount: float, campaign: str | None = A) -> DocumentEvent:
    forms = [{"fieldCode": "crm_campaign_id", "value": campaign}] if campaign else []
    doc = {"businessCode": code, "status": status, "rejectType": 1003 if status == 1001 else 1000,
           "baseCurrencyAmount": amount, "totalAmount": amount, "customFormValueVOList": forms, "invoiceVOList": [],
           "createdDate": "2026-11-30T01:00:00Z", "lastModifiedDate": f"2026-11-30T01:00:{v:02d}Z"}
    return DocumentEvent(code, to_event(doc, 0), POS)


def test_what_a_report_gives_its_campaign() -> None:
    approved = report_change(RULES, version("ER1", 1, 1003, 800.5))
    assert approved.bill == "ER1" and approved.amounts == ((A, Decimal("800.5")),)
    assert report_change(RULES, version("ER1", 2, 1001, 800.5)).amounts == ()  # rejected
    assert report_change(RULES, version("ER1", 3, 1002, 800.5)).amounts == ()  # in approval
    assert report_change(RULES, version("ER1", 4, 1005, 800.5, campaign=None)).amounts == ()  # not linked


def contribution(report: str, v: int, amount: str | None, campaign: str = A) -> Contribution:
    return Contribution(campaign, report, Decimal(amount) if amount is not None else None, v, v, POS)


def run(logic: CampaignCost, clock: Clock, items: list[Contribution]) -> list[OrderTotal]:
    out: list[OrderTotal] = []
    for item in items:
        logic.on_item(item)
    clock.now += 1
    out.extend(logic.on_notify()[0])
    return out


def test_the_cost_is_the_sum_over_live_reports_and_a_rejection_takes_its_amount_back() -> None:
    clock = Clock()
    logic = CampaignCost(None, coalesce_s=0.3, clock=clock)
    (total,) = run(logic, clock, [contribution("ER1", 1, "1000"), contribution("ER2", 2, "300.50")])
    assert total.amount == Decimal("1300.50") and total.version == 2 and total.bills == 2
    (total,) = run(logic, clock, [contribution("ER2", 3, None)])
    assert total.amount == Decimal("1000") and total.version == 3


def test_duplicates_and_stale_versions_change_nothing() -> None:
    clock = Clock()
    logic = CampaignCost(None, coalesce_s=0.3, clock=clock)
    run(logic, clock, [contribution("ER1", 1, "1000"), contribution("ER1", 3, None)])
    assert run(logic, clock, [contribution("ER1", 1, "1000"), contribution("ER1", 3, None)]) == []
    assert run(logic, clock, [contribution("ER1", 2, "1000")]) == [], "an older image cannot revive a rejection"


def test_changes_within_the_window_become_one_write_and_nothing_is_written_before_it() -> None:
    clock = Clock()
    logic = CampaignCost(None, coalesce_s=0.3, clock=clock)
    for n in range(50):
        logic.on_item(contribution(f"ER{n}", n + 1, "10"))
    assert logic.on_notify()[0] == [], "not before the window ends"
    clock.now += 0.3
    (total,) = logic.on_notify()[0]
    assert total.amount == Decimal(500) and total.version == 50


def test_every_arrival_order_of_the_versions_ends_at_the_same_cost() -> None:
    items = [contribution("ER1", 1, "100"), contribution("ER1", 4, None), contribution("ER1", 6, "120"),
             contribution("ER2", 2, "50"), contribution("ER3", 3, "70"), contribution("ER3", 5, None)]
    for seed in range(20):
        shuffled = items[:]
        random.Random(seed).shuffle(shuffled)
        clock = Clock()
        logic = CampaignCost(None, coalesce_s=0.3, clock=clock)
        totals = run(logic, clock, shuffled)
        assert totals[-1].amount == Decimal(170) and totals[-1].version == 6, seed


def test_the_state_survives_a_crash_including_a_pending_write() -> None:
    clock = Clock()
    logic = CampaignCost(None, coalesce_s=0.3, clock=clock)
    logic.on_item(contribution("ER1", 1, "100"))
    snapshot = logic.snapshot()
    resumed = CampaignCost(snapshot, coalesce_s=0.3, clock=clock)
    assert resumed.notify_at() is not None
    clock.now += 1
    (total,) = resumed.on_notify()[0]
    assert total.amount == Decimal(100)
    resumed.on_item(contribution("ER1", 2, None))
    clock.now += 1
    (total,) = resumed.on_notify()[0]
    assert total.amount == Decimal(0), "the last report rejected: the cost goes back to zero"


def test_the_cost_command_is_versioned_and_keyed_by_campaign() -> None:
    cmd = cost_command(RULES, OrderTotal(A, Decimal("1300.50"), 7, 7, POS, 2))
    assert cmd.key == f"campaign:{A}" and cmd.version == 7 and cmd.record == {"id": A, "Actual_Cost": 1300.5}
    again = cost_command(RULES, OrderTotal(A, Decimal("1300.50"), 7, 7, POS, 2))
    assert again.fingerprint == cmd.fingerprint


def test_the_pipeline_in_a_bytewax_run_moves_amounts_between_campaigns() -> None:
    events = [version("ER1", 1, 1003, 100.0), version("ER2", 2, 1004, 40.0),
              version("ER1", 3, 1003, 100.0, campaign=B),  # moved to another campaign
              version("ER2", 4, 1001, 40.0)]  # rejected by finance
    out: list[Any] = []
    flow = Dataflow("campaign_costs_test")
    changes = op.map("gives", op.input("in", flow, TestingSource(events)), lambda e: report_change(RULES, e))
    contributions = op.stateful("per_report", op.key_on("by_report", changes, lambda c: c.bill), BillAmounts)
    by_campaign = op.key_on("by_campaign", op.map("v", contributions, lambda kv: kv[1]), lambda c: c.order)
    totals = op.stateful("sum", by_campaign, lambda s: CampaignCost(s, coalesce_s=0.0))
    op.output("out", op.map("cmd", totals, lambda kv: cost_command(RULES, kv[1])), TestingSink(out))
    run_main(flow)
    final = {}
    for cmd in out:
        final[cmd.record["id"]] = cmd.record["Actual_Cost"]
    assert final == {A: 0.0, B: 100.0}
