"""The per-order sums of the invoices and receipts flows (flows/order_amounts.py): bill amounts per order, the
order sum (rollback, stale images, replays), the mappings, and the two steps in a Bytewax run."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from core.ledger import Position
from flows.bill_amounts import BillAmounts, BillChange, BillState, Contribution, apply_bill, bill_change
from flows.bill_records import OrderLink, to_bill_draft
from flows.bill_spec import load_spec
from flows.kingdee_documents import DocumentEvent
from flows.order_sums import OrderState, OrderSum, TotalWrite, apply_contribution, total_command

POS = Position("t", 0, 0)


def receipt(fid: int, lsn: int, sources: list[tuple[str, str]], status: str = "C", cancel: str = "A",
            op_: str = "u") -> DocumentEvent:
    doc = {"FID": fid, "FBILLNO": f"SKD{fid}", "FDOCUMENTSTATUS": status, "FCANCELSTATUS": cancel,
           "FCONTACTUNIT": 7, "payer_number": "CUST7", "FRECEIVEAMOUNTFOR": Decimal(0),
           "sources": [{"FORDERBILLNO": o, "FREALRECAMOUNT": Decimal(a)} for o, a in sources]}
    env = {"op": op_, "before": None, "after": None if op_ == "d" else doc,
           "source": {"lsn": lsn, "commit_time": 1000, "number": f"SKD{fid}"}}
    return DocumentEvent(str(fid), env, POS)


RECEIPTS = load_spec("receipts")
INVOICES = load_spec("invoices")
(RECEIPT,) = RECEIPTS.kinds


def change(fid: int, lsn: int, sources: list[tuple[str, str]], **kw: Any) -> BillChange:
    return bill_change(RECEIPTS, RECEIPT, receipt(fid, lsn, sources, **kw))


def test_a_live_bill_gives_its_rows_per_order_and_a_dead_one_nothing() -> None:
    c = change(1, 10, [("SO1", "100"), ("SO2", "50"), ("SO1", "25")])
    assert c.amounts == (("SO1", Decimal(125)), ("SO2", Decimal(50)))
    assert change(1, 11, [("SO1", "100")], status="D").amounts == ()
    assert change(1, 12, [("SO1", "100")], cancel="B").amounts == ()
    assert change(1, 13, [("SO1", "100")], op_="d").amounts == ()


def test_a_receipt_keyed_by_hand_links_its_orders_by_the_numbers_on_its_rows_and_never_counts_twice() -> None:
    keyed = receipt(2, 20, [])
    keyed.envelope["after"]["entries"] = [{"FSALEORDERNO": "SO1", "FREALRECAMOUNT": Decimal(80)},
                                          {"FSALEORDERNO": " ", "FREALRECAMOUNT": Decimal(5)},
                                          {"FSALEORDERNO": "SO2", "FREALRECAMOUNT": Decimal(20)}]
    assert bill_change(RECEIPTS, RECEIPT, keyed).amounts == (("SO1", Decimal(80)), ("SO2", Decimal(20)))
    assert RECEIPTS.link.numbers(keyed.envelope["after"]) == ["SO1", "SO2"]
    pushed = receipt(3, 21, [("SO1", "100")])  # pushed down: its rows carry the number too
    pushed.envelope["after"]["entries"] = [{"FSALEORDERNO": "SO1", "FREALRECAMOUNT": Decimal(100)}]
    assert bill_change(RECEIPTS, RECEIPT, pushed).amounts == (("SO1", Decimal(100)),)


def test_bill_amounts_send_only_differences_and_roll_back_orders_left() -> None:
    state = BillState()
    first = apply_bill(state, change(1, 10, [("SO1", "100"), ("SO2", "50")]))
    assert [(c.order, c.amount) for c in first] == [("SO1", Decimal(100)), ("SO2", Decimal(50))]
    moved = apply_bill(state, change(1, 20, [("SO1", "100"), ("SO3", "50")]))
    assert [(c.order, c.amount) for c in moved] == [("SO2", None), ("SO3", Decimal(50))]
    assert apply_bill(state, change(1, 15, [("SO9", "1")])) == [], "an older image is ignored"
    gone = apply_bill(state, change(1, 30, [], op_="d"))
    assert [(c.order, c.amount) for c in gone] == [("SO1", None), ("SO3", None)]


def contrib(bill: str, amount: str | None, version: int) -> Contribution:
    return Contribution("SO1", bill, Decimal(amount) if amount is not None else None, version, 0, POS)


def test_the_order_sum_rolls_back_ignores_stale_images_and_dedups() -> None:
    s = OrderState()
    totals = [apply_contribution(s, c, 0.0) for c in (
        contrib("r1", "300", 10), contrib("r2", "100", 11), contrib("r2", "100", 11),  # duplicate
        contrib("r2", None, 12),  # deleted: rolls back
        contrib("r2", "100", 11),  # a late older image of the deleted receipt: stays out
        contrib("r1", "250", 9),  # older than what is held
    )]
    assert [(t.amount, t.version) if t else None for t in totals] == [
        (Decimal(300), 10), (Decimal(400), 11), None, (Decimal(300), 12), None, None]


def test_any_arrival_order_of_versions_ends_at_the_same_total() -> None:
    events = [contrib("r1", "300", 10), contrib("r2", "100", 11), contrib("r1", "200", 12), contrib("r2", None, 13),
              contrib("r3", "5", 14)]
    rng = random.Random(5)
    for _ in range(50):
        shuffled = events[:]
        rng.shuffle(shuffled)
        s = OrderState()
        for c in shuffled:
            apply_contribution(s, c, 0.0)
        assert s.live.total() == Decimal(205) and s.live.version == 14


def test_a_total_waits_for_its_order_then_is_written_or_dead_lettered() -> None:
    now = [0.0]
    known: dict[str, str] = {}
    logic = OrderSum(None, known.get, "receipts", wait_s=10, clock=lambda: now[0])
    out, _ = logic.on_item(contrib("r1", "300", 10))
    assert list(out) == [] and logic.notify_at() is not None
    known["SO1"] = "crm-1"
    now[0] = 1.0
    out, _ = logic.on_notify()
    (write,) = list(out)
    assert isinstance(write, TotalWrite) and write.target_id == "crm-1" and write.total.amount == 300
    cmd = total_command("receipts", "Received_Amount", write)
    assert isinstance(cmd, SyncCommand) and cmd.key == "order:SO1" and cmd.version == 10
    assert cmd.record == {"id": "crm-1", "Received_Amount": 300.0}

    lost = OrderSum(None, {}.get, "receipts", wait_s=10, clock=lambda: now[0])
    lost.on_item(contrib("r1", "300", 10))
    now[0] = 12.0
    out, _ = lost.on_notify()
    (letter,) = list(out)
    assert isinstance(letter, DeadLetter) and "SO1" in letter.error


def test_invoice_drafts_are_keyed_per_kind_with_type_totals_tax_and_the_order_link() -> None:
    doc = {"FID": 7, "FBILLNO": "XSZYFP000007", "FDATE": None, "FDOCUMENTSTATUS": "C", "FCANCELSTATUS": "A",
           "FCUSTOMERID": 3, "customer_number": "CUST3", "FINVOICENO": "00000007",
           "FAFTERTOTALTAXFOR": Decimal(226),
           "entries": [{"FENTRYID": 70, "FMATERIALID": 5, "FPRICEQTY": Decimal(2), "FPRICE": Decimal(100),
                        "FTAXPRICE": Decimal(113), "FTAXRATE": Decimal(13), "FAMOUNTFOR": Decimal(200),
                        "FALLAMOUNTFOR": Decimal(226), "FSRCBILLTYPEID": "SAL_SaleOrder", "FSRCBILLNO": "SO1",
                        "source_order_no": "SO1"},
                       # pushed down from an outbound: the capture resolved the order that outbound line delivers
                       {"FENTRYID": 71, "FMATERIALID": 5, "FPRICEQTY": Decimal(1), "FPRICE": Decimal(100),
                        "FAMOUNTFOR": Decimal(100), "FALLAMOUNTFOR": Decimal(113),
                        "FSRCBILLTYPEID": "SAL_OUTSTOCK", "FSRCBILLNO": "XSCKD1", "source_order_no": "SO2"},
                       {"FENTRYID": 72, "FMATERIALID": 5, "FPRICEQTY": Decimal(1), "FPRICE": Decimal(0),
                        "FAMOUNTFOR": Decimal(0), "FALLAMOUNTFOR": Decimal(0),
                        "FSRCBILLTYPEID": "SAL_OUTSTOCK", "FSRCBILLNO": "XSCKD9", "source_order_no": None}]}
    special = next(k for k in INVOICES.kinds if k.document == "invoice_special")
    event = DocumentEvent("7", {"op": "c", "before": None, "after": doc,
                                "source": {"lsn": 5, "commit_time": 0, "number": "XSZYFP000007"}}, POS)
    draft = to_bill_draft("invoices", INVOICES, special, event)
    assert isinstance(draft, SyncCommand) and draft.key == "IC-7"
    rec = draft.record
    assert rec["Kingdee_Invoice_ID"] == "IC-7" and rec["Invoice_Type"] == "VAT Special"
    assert rec["Amount_Without_Tax"] == 300 and rec["Amount_With_Tax"] == 226
    assert rec["Invoiced_Items"][0]["Tax"] == 26
    assert rec["Sales_Order"] == OrderLink(("SO1", "SO2")), "rows whose order is known name it"
    amounts = bill_change(INVOICES, special, event)
    assert amounts.bill == "IC-7" and amounts.amounts == (("SO1", Decimal(226)), ("SO2", Decimal(113)))


def test_the_two_steps_in_a_bytewax_run_end_at_the_live_sum() -> None:
    changes = [change(1, 10, [("SO1", "300")]), change(2, 11, [("SO1", "100")]), change(2, 12, [], op_="d"),
               change(3, 13, [("SO1", "50")], status="D")]
    out: list[Any] = []
    flow = Dataflow("t")
    src = op.input("in", flow, TestingSource(changes))
    keyed = op.key_on("by_bill", src, lambda c: c.bill)
    contributions = op.stateful("bill_amounts", keyed, BillAmounts)
    by_order = op.key_on("by_order", op.map("drop", contributions, lambda kv: kv[1]), lambda c: c.order)
    sums = op.stateful("sum", by_order, lambda s: OrderSum(s, lambda n: f"crm-{n}", "receipts", 10))
    op.output("out", op.map("v", sums, lambda kv: kv[1]), TestingSink(out))
    run_main(flow)
    assert [(w.total.amount, w.total.version) for w in out] == [(Decimal(300), 10), (Decimal(400), 11),
                                                                 (Decimal(300), 12)]
