"""The expense report's life, declared as data: statuses, reject types, report types and the allowed moves.

Rejection is **not** a status [H]: a rejected report goes back to 1001 (editing) with ``rejectType`` saying
who rejected it (1002 approval, 1003 finance). ``rejectType`` 1000 means "not rejected" [L]; it is set back to
1000 when the report is submitted again, so ``status == 1001 and rejectType != 1000`` reads "rejected, waiting
for the applicant". Payment (1004 → 1005) has no confirmed write-back endpoint [L]; only the driver pays.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Status(IntEnum):
    EDITING = 1001
    IN_APPROVAL = 1002
    APPROVED = 1003
    AUDITED = 1004  # finance audit passed
    PAID = 1005


class RejectType(IntEnum):
    NONE = 1000
    APPROVAL = 1002
    FINANCE = 1003


class ReportType(IntEnum):
    DAILY = 1001
    TRAVEL = 1002
    EXPENSE = 1003


STATUS_NAMES = {
    Status.EDITING: "编辑中",
    Status.IN_APPROVAL: "审批中",
    Status.APPROVED: "审批通过",
    Status.AUDITED: "审核通过",
    Status.PAID: "已付款",
}


@dataclass(frozen=True)
class Transition:
    action: str
    source: Status
    target: Status
    reject_type: RejectType | None = None  # None: leave rejectType as it is
    submits: bool = False  # sets lastSubmittedDate


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("submit", Status.EDITING, Status.IN_APPROVAL, RejectType.NONE, submits=True),
        Transition("approval_pass", Status.IN_APPROVAL, Status.APPROVED),
        Transition("approval_reject", Status.IN_APPROVAL, Status.EDITING, RejectType.APPROVAL),
        Transition("audit_pass", Status.APPROVED, Status.AUDITED),
        Transition("audit_reject", Status.APPROVED, Status.EDITING, RejectType.FINANCE),
        Transition("pay", Status.AUDITED, Status.PAID),
    )
}
#: The forward move out of each status, for walking a report along to a target status.
FORWARD: dict[Status, str] = {t.source: t.action for t in TRANSITIONS.values() if t.target > t.source}
#: ``/__sim/advance`` ``reject`` values → the rejecting move.
REJECTIONS = {"approval": "approval_reject", "finance": "audit_reject"}
#: Statuses in which an ERP bill number may be written back [L]: once approved.
JOURNAL_NO_STATUSES = frozenset({Status.APPROVED, Status.AUDITED, Status.PAID})


class WrongStatus(Exception):
    def __init__(self, action: str, current: int, required: Status) -> None:
        super().__init__(f"{action} needs status {int(required)}, the report is in {current}")
        self.action = action
        self.current = current
        self.required = required


def transition(action: str, current: int) -> Transition:
    """The move ``action`` from ``current``; ``KeyError``: unknown action, ``WrongStatus``: wrong status."""
    move = TRANSITIONS[action]
    if current != move.source:
        raise WrongStatus(action, current, move.source)
    return move


def path_to(current: int, target: Status) -> list[str]:
    """The forward moves from ``current`` to ``target`` (none if there already); ``ValueError`` going back."""
    if current > target:
        raise ValueError(f"cannot go back from {current} to {int(target)}")
    moves = []
    status = Status(current)
    while status != target:
        action = FORWARD[status]
        moves.append(action)
        status = TRANSITIONS[action].target
    return moves
