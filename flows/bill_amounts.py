"""What each bill gives each sales order (invoices, receipts; the campaign costs' expense reports too): state per
bill, the amount it last gave each order.  A bill that is live (``[amounts] live_when``: audited, not voided)
contributes its rows' amounts to the orders they name; an un-audited, voided or deleted bill contributes nothing.
Each change is sent to the orders it touches as "bill B now gives order O amount a (or nothing)", so a bill moving
from one order to another, or going away, rolls the old order back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bytewax.operators import StatefulLogic

from core.ledger import Position
from flows.bill_spec import BillSpec, DocumentKind, bill_key
from flows.kingdee_documents import DocumentEvent


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


@dataclass(frozen=True)
class BillChange:
    """A bill's amounts per order as of one version (empty: the bill gives nothing: not live, or deleted)."""

    bill: str
    number: str | None
    amounts: tuple[tuple[str, Decimal], ...]
    version: int
    commit_ms: int
    position: Position


@dataclass(frozen=True)
class Contribution:
    """What one bill now gives one order: ``amount``, or nothing (``None``)."""

    order: str
    bill: str
    amount: Decimal | None
    version: int
    commit_ms: int
    position: Position


def bill_change(spec: BillSpec, kind: DocumentKind, event: DocumentEvent) -> BillChange:
    env = event.envelope
    doc = env.get("after") if env["op"] != "d" else None
    per_order: dict[str, Decimal] = {}
    if doc is not None and spec.amounts.live(doc):
        for number, row in spec.link.rows_of(doc):
            per_order[number] = per_order.get(number, Decimal(0)) + _dec(row.get(spec.amounts.amount))
    return BillChange(bill_key(kind, event.key), env["source"].get("number"), tuple(sorted(per_order.items())),
                      event.version, event.commit_ms, event.position)


@dataclass
class BillState:
    given: dict[str, Decimal] = field(default_factory=dict)
    version: int = 0


def apply_bill(state: BillState, change: BillChange) -> list[Contribution]:
    """The contributions a bill's new version changes (in place); none for an older version than the state's."""
    if change.version < state.version:
        return []
    new = dict(change.amounts)
    out = [Contribution(order, change.bill, new.get(order), change.version, change.commit_ms, change.position)
           for order in sorted(set(state.given) | set(new)) if state.given.get(order) != new.get(order)]
    state.given, state.version = new, change.version
    return out


class BillAmounts(StatefulLogic[BillChange, Contribution, BillState]):
    """Per bill: what it gave each order last, so a change sends exactly the differences (see module doc)."""

    def __init__(self, state: BillState | None) -> None:
        self.state = state or BillState()

    def on_item(self, value: BillChange) -> tuple[Iterable[Contribution], bool]:
        # A bill that gives nothing (deleted, un-audited, voided) keeps no state here: the order sums keep its
        # tombstone, which is what stops a late older image of it.
        return apply_bill(self.state, value), not self.state.given

    def snapshot(self) -> BillState:
        return BillState(dict(self.state.given), self.state.version)
