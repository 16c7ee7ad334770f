"""The two-way rules applied at a sink, just before it writes: echo suppression and conflict resolution per field,
using the field clock (``core/field_clock.py``) and a look at the target record.

For each command the sink asks ``plan``: which of its fields to write. Fields whose value the target already has (as
far as the clock knows) are dropped — that is what stops echoes. ``shared`` fields whose value is older than the
other side's last change are dropped. And because the other side's change may not have been captured yet, a command
that still writes shared fields to an existing record first looks at the target: if a person changed it after this
change's source time, the shared fields the person may have changed are left alone (their newer value is on its way
back through the other direction) — those whose value in the target is not the one the clock last recorded; a field
still showing that value was not touched and is written. The guard never guesses: when that look fails (the target
is down, slow, refusing), the command is not written at all — :attr:`Planned.unread` holds why, and the sink retries
it later (from the delivery step's state in the runtime) or dead-letters it once retrying gave up. Writing blind
could put an older value over a person's newer edit. The sink ``claim``s the planned values in the clock *before* it
writes — the write comes back through the other side's change capture within milliseconds, and must find its own
values already there — ``confirm``s them after the write, and ``release``s them (restoring what the clock knew) if
the write fails. A claim not yet confirmed does not count for the side that made it: after a crash it writes again.

The look and the write are two calls: a person may save the record in between. Where the target can refuse a write
to a record changed since a given time (ZOHO: ``If-Unmodified-Since`` → ``ALREADY_MODIFIED``), the look's stamp of
the record (:attr:`HumanChange.stamp`, kept in :attr:`Planned.stamp`) makes the write conditional; a refused write
is decided again from a new look (``LedgerSinkPartition.redecide``) — at most :data:`MAX_REDECISIONS` times in a
row, then it waits like an unreadable target (retried later in the runtime, dead-lettered by a plain sink).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from connectors.common.drift import same
from connectors.common.sync import SyncCommand
from core.field_clock import ClockEntry, FieldClock, newer

#: How often in a row a conditional write refused because the target changed since the look is decided again.
MAX_REDECISIONS = 3


@dataclass(frozen=True)
class HumanChange:
    """A person's last change of the target record: when (epoch ms), and the record's values as read (by the
    command's field names; None when the target cannot say), so only the fields the person actually changed are
    held back.  A target that can make writes conditional also gives its ``stamp`` of the record as read (ZOHO:
    ``Modified_Time``); it then answers for a record whose last change was ours too, with ``by_person`` False."""

    at_ms: int
    values: dict[str, Any] | None = None
    stamp: str | None = None
    by_person: bool = True


#: Given a command, the last change of its target record (a person's, or with ``by_person`` False our own when the
#: target gives a stamp), or None (the last change was ours, or the record does not exist).  Raises when the target
#: cannot be read.
PeekHumanChange = Callable[[SyncCommand], HumanChange | None]


@dataclass(frozen=True)
class Planned:
    command: SyncCommand
    write: dict[str, Any]
    dropped: dict[str, str]
    #: What the clock knew of each written field before (None: nothing), to restore if the write fails.
    previous: dict[str, ClockEntry | None] = field(default_factory=dict)
    #: Why the target could not be read before writing shared fields (then nothing is written); None if it was read
    #: or did not need to be.
    unread: BaseException | None = None
    #: The target's stamp of the record as the guard read it: the write is made only if the record is unchanged
    #: since (None: unconditional).
    stamp: str | None = None


def _changed_there(field_name: str, change: HumanChange, known: dict[str, ClockEntry]) -> bool:
    """Whether the person's later change may include this field: yes unless the target shows exactly the value the
    clock last recorded for it."""
    entry = known.get(field_name)
    if change.values is None or field_name not in change.values or entry is None:
        return True
    return not same(change.values[field_name], entry.value)


class TwoWayGuard:
    def __init__(self, clock: FieldClock, side: str, shared: frozenset[str], key_field: str) -> None:
        self.clock = clock
        self.side = side
        self.shared = shared
        self.key_field = key_field

    def plan(self, commands: list[SyncCommand], peek: PeekHumanChange,
             exists: Callable[[SyncCommand], bool]) -> list[Planned]:
        known = self.clock.known(c.entity or c.key for c in commands)
        planned = []
        for cmd in commands:
            values = {k: v for k, v in cmd.record.items() if k != self.key_field}
            decision = FieldClock.decide(known[cmd.entity or cmd.key], self.side, cmd.changed_at_ms, values,
                                         self.shared)
            write, dropped = dict(decision.write), dict(decision.dropped)
            shared_now = [f for f in write if f in self.shared]
            stamp = None
            if shared_now and exists(cmd):
                try:
                    change = peek(cmd)
                except Exception as exc:  # noqa: BLE001 - any failure to look means: do not write yet
                    planned.append(Planned(cmd, {}, dict(decision.dropped), unread=exc))
                    continue
                stamp = change.stamp if change is not None else None
                if change is not None and change.by_person and newer(change.at_ms, cmd.changed_at_ms):
                    for f in shared_now:
                        if not _changed_there(f, change, known[cmd.entity or cmd.key]):
                            continue  # the person changed other fields; this one is as both sides last had it
                        write.pop(f)
                        dropped[f] = "changed later in the target"
            entity_known = known[cmd.entity or cmd.key]
            planned.append(Planned(cmd, write, dropped, {f: entity_known.get(f) for f in write}, stamp=stamp))
        return planned

    def claim(self, planned: list[Planned]) -> None:
        self.clock.record_many(
            ((p.command.entity or p.command.key, self.side, p.command.changed_at_ms, p.write)
             for p in planned if p.write), pending=True,
        )

    def confirm(self, planned: list[Planned], conn: Connection | None = None) -> None:
        self.clock.confirm(((p.command.entity or p.command.key, self.side, p.command.changed_at_ms)
                            for p in planned if p.write), conn)

    def release(self, planned: Planned) -> None:
        self.clock.restore(planned.command.entity or planned.command.key, planned.previous)
