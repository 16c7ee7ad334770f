"""The sum per sales order of what its bills give it (state per order number: ``{bill: (amount, version)}``): like
the inventory sum (``flows/inventory.py``), the total is versioned by the highest commit LSN it includes; a bill's
older image is ignored; a removed bill leaves a tombstone for ``RETIRE_AFTER``.  A changed total waits (in state,
retried with backoff) until the order is in the CRM (sales_orders ledger by number), then is written once; after
``CDCHUB_REFERENCE_WAIT_S`` it is dead-lettered naming the order number (a newer change tries again).  The total is
written through the flow's ledger (key ``order:<number>``, versioned by LSN): a replay writes nothing.  While the
flow catches up with its topics, totals wait in the delivery step and only each order's last is written
(``hold_until_caught_up``): bills replayed out of order never show a partial total."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from bytewax.operators import StatefulLogic

from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from core.errors import PermanentError
from core.ledger import Position
from flows.bill_amounts import Contribution
from flows.live_sum import LiveSum
from flows.waiting import ReferenceWait

#: How long a removed bill's tombstone (and so an emptied order's state) is kept.
RETIRE_AFTER = timedelta(minutes=15)

Clock = Callable[[], float]


@dataclass(frozen=True)
class OrderTotal:
    order: str
    amount: Decimal
    version: int
    commit_ms: int
    position: Position
    bills: int


@dataclass
class OrderState:
    #: The sum over the key's live bills (``flows/live_sum.py``, documents = bills).
    live: LiveSum = field(default_factory=LiveSum)
    #: The total not written yet, since when it waits for its order, attempts, when to look again.
    pending: OrderTotal | None = None
    wait: ReferenceWait = field(default_factory=ReferenceWait)
    next_at: float = 0.0


def apply_contribution(state: OrderState, c: Contribution, now: float) -> OrderTotal | None:
    """Apply one bill's contribution in place; the order's new total, or None when stale or unchanged."""
    live = state.live
    if c.amount is None and c.bill not in live.amounts and not live.stale(c.bill, c.version):
        live.gone[c.bill] = (c.version, now)  # removes nothing; remembered so an older image stays out
        return None
    if not live.apply(c.bill, c.amount, c.version, now):
        return None
    return OrderTotal(c.order, live.total(), live.version, c.commit_ms, c.position, len(live.amounts))


@dataclass(frozen=True)
class TotalWrite:
    total: OrderTotal
    target_id: str


Resolve = Callable[[str], "str | None"]


_Out = TypeVar("_Out")


class SumOverBills(StatefulLogic[Contribution, _Out, OrderState]):
    """What every per-key sum over live bills shares: its state (bills, recently gone ones, the pending total),
    timers for the pending write and for forgetting gone bills, and when the key can be dropped."""

    def __init__(self, state: OrderState | None, clock: Clock, retire_after: timedelta) -> None:
        self.state = state or OrderState()
        self.clock = clock
        self.retire_after = retire_after.total_seconds()

    def on_eof(self) -> tuple[Iterable[_Out], bool]:
        return [], False

    def notify_at(self) -> datetime | None:
        s = self.state
        times = [s.next_at] if s.pending is not None else []
        expiry = s.live.next_expiry(self.retire_after)
        if expiry is not None:
            times.append(expiry)
        return datetime.fromtimestamp(min(times), UTC) if times else None

    def snapshot(self) -> OrderState:
        return dataclasses.replace(self.state, live=self.state.live.copy(), wait=dataclasses.replace(self.state.wait))

    def _prune(self, now: float) -> None:
        self.state.live.prune(now, self.retire_after)

    def _discard(self) -> bool:
        return self.state.live.empty() and self.state.pending is None


class OrderSum(SumOverBills["TotalWrite | DeadLetter"]):
    """Per order number: the sum of its bills, written once the order is in the CRM (see module doc)."""

    def __init__(self, state: OrderState | None, resolve: Resolve, flow: str, wait_s: float,
                 clock: Clock = time.time, retire_after: timedelta = RETIRE_AFTER) -> None:
        super().__init__(state, clock, retire_after)
        self.resolve = resolve
        self.flow = flow
        self.wait_s = wait_s

    def on_item(self, value: Contribution) -> tuple[Iterable[TotalWrite | DeadLetter], bool]:
        now = self.clock()
        self._prune(now)
        total = apply_contribution(self.state, value, now)
        if total is not None:
            s = self.state
            if s.pending is None:
                s.wait.clear()
            s.pending = total
            return self._flush(now), False
        return [], self._discard()

    def on_notify(self) -> tuple[Iterable[TotalWrite | DeadLetter], bool]:
        now = self.clock()
        self._prune(now)
        if self.state.pending is not None and now >= self.state.next_at:
            return self._flush(now), False
        return [], self._discard()

    def _flush(self, now: float) -> list[TotalWrite | DeadLetter]:
        s = self.state
        total = s.pending
        assert total is not None
        target = self.resolve(total.order)
        if target is not None:
            s.pending = None
            s.wait.clear()
            return [TotalWrite(total, target)]
        look_again = s.wait.miss(now, self.wait_s)
        if look_again is not None:
            s.next_at = look_again
            return []
        waited = s.wait.waited(now)
        exc = PermanentError(f"sales order {total.order} is not in the CRM after {waited:.0f} s; its amount "
                             f"{total.amount} was not written", code="ORDER_MISSING")
        letter = DeadLetter.of(self.flow, "resolve", exc, record={"order": total.order, "amount": str(total.amount),
                                                                  "version": total.version},
                               key=f"order:{total.order}", topic=total.position.topic,
                               partition=total.position.partition, offset=total.position.offset,
                               attempts=s.wait.attempts)
        s.pending = None
        s.wait.clear()
        return [letter]


def total_command(flow: str, amount_field: str, write: TotalWrite) -> SyncCommand:
    total = write.total
    record = {"id": write.target_id, amount_field: float(total.amount)}
    blob = json.dumps(record, sort_keys=True, default=str).encode()
    return SyncCommand(flow=flow, key=f"order:{total.order}", number=total.order, version=total.version,
                       record=record, fingerprint=hashlib.sha256(blob).hexdigest()[:32],
                       captured_at_ms=total.commit_ms, position=total.position)
