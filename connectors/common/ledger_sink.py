"""What every idempotent sink shares: the ledger check before writing, the ledger record after, dead letters.

Delivery guarantee: effectively-once in the target under at-least-once input.  Within a batch only the newest
version per key is written; a version at or below the one the ledger holds (applied or dead-lettered) is skipped,
and so is a newer version whose content equals what was last written (recorded, no call).  Failures that retrying
cannot fix go to the flow's dead-letter topic with the reason and are recorded in the ledger; the rest proceeds.
With a two-way guard, each remaining command is narrowed to the fields that must be written (``two_way.py``); a
conditional write the target refused because the record changed meanwhile is decided again (:meth:`redecide`).

In replay mode (``replay_mode.py``) the ledger is not trusted: the newest command per key is kept until the end of
input, then compared with the target record and only the differing fields are written (none in a dry run).

Retries: in the runtime the partition is the writer of a delivery step (``delivery.py``): ``blocking`` is off, each
call is tried once (:meth:`LedgerSinkPartition.try_call`) and what fails transiently is handed back
(:meth:`LedgerSinkPartition.defer`) to be retried from the step's state — nothing sleeps.  A sink that can keep
several calls in flight (``pipelined``; the ZOHO upsert) is given a thread pool by the delivery step
(:meth:`LedgerSinkPartition.pipeline`): its calls go through :meth:`LedgerSinkPartition.dispatch`, return at once,
and their answers are handled on the worker thread when the step asks (:meth:`LedgerSinkPartition.settle`,
``flights.py``).  Used directly as a Bytewax
sink (a replay; tests), it retries in place with :func:`~connectors.common.retry.call_with_retry`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bytewax.outputs import StatelessSinkPartition
from confluent_kafka import Producer

from connectors.common import replay_mode
from connectors.common.dead_letters import DeadLetter
from connectors.common.drift import differing_fields
from connectors.common.flights import Flights
from connectors.common.retry import GaveUp, RetryPolicy, call_with_retry
from connectors.common.sync import SyncCommand
from connectors.common.two_way import HumanChange, Planned, TwoWayGuard
from core.errors import PermanentError, TransientError
from core.field_clock import FieldClock
from core.ledger import LedgerEntry, SyncLedger, transaction

log = logging.getLogger(__name__)
T = TypeVar("T")


def newest_per_key(commands: list[SyncCommand]) -> list[SyncCommand]:
    newest: dict[str, SyncCommand] = {}
    for cmd in commands:
        if cmd.key not in newest or cmd.version >= newest[cmd.key].version:
            newest[cmd.key] = cmd
    return list(newest.values())


class LedgerSinkPartition(StatelessSinkPartition[SyncCommand]):
    target_system = "?"
    #: Retry transient failures in place (a plain sink), or hand them back to the delivery step (the runtime).
    blocking = True
    policy = RetryPolicy()
    #: Whether the sink's calls can be kept in flight (``dispatch``) when the delivery step gives it a pool.
    pipelined = False

    def __init__(self, ledger: SyncLedger, dlq: Producer, flow: str, dlq_topic: str,
                 guard: TwoWayGuard | None = None) -> None:
        self.ledger = ledger
        self.dlq = dlq
        self.flow = flow
        self.dlq_topic = dlq_topic
        self.guard = guard
        self._planned: dict[str, Planned] = {}
        self._replayed: dict[str, SyncCommand] = {}
        self._deferred: dict[str, BaseException] = {}
        #: Dead letters produced and not yet known to be in Kafka.
        self._letters = 0
        #: The commands the last :meth:`deliver` applied in the target (not those the ledger skipped).
        self.last_applied: list[SyncCommand] = []
        #: Pipelined: the calls in flight, and the keys whose call came back (None: done; else why to retry).
        self.flights: Flights | None = None
        self.settled: dict[str, BaseException | None] = {}

    # --- what a target implements ---------------------------------------------------------------------------
    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        """Write the planned fields; call :meth:`applied` / :meth:`dead_letter` per command."""
        raise NotImplementedError

    def human_change(self, cmd: SyncCommand, entry: LedgerEntry | None) -> HumanChange | None:
        """A person's last change of the target record (for the two-way guard); None if nobody changed it or the
        last change was ours.  Raises when the target cannot be read: the guard then holds the write back."""
        return None

    def _look_before_writing(self, cmd: SyncCommand, entry: LedgerEntry | None) -> HumanChange | None:
        return self.try_call(lambda: self.human_change(cmd, entry),
                             f"{self.flow}: reading {self.target_name} of {cmd.key} before writing")[0]

    #: The target's name for what this sink writes (a CRM module, a Kingdee form), for replay reports.
    target_name = "?"
    #: Fields that name the record rather than being written to it (compared by nobody, always sent).
    identity_fields: frozenset[str] = frozenset()

    def prefetch(self, commands: list[SyncCommand]) -> None:
        """Replay: read the target records of many commands at once before :meth:`current_record` is asked."""

    def current_record(self, cmd: SyncCommand, entry: LedgerEntry | None) -> tuple[str | None, dict[str, Any] | None]:
        """Replay: the target record this command writes to, as the target shows it now — (target id, record), or
        (None, None) if there is none.  Sinks that cannot read their target back raise NotImplementedError."""
        raise NotImplementedError

    def desired(self, cmd: SyncCommand, current: dict[str, Any] | None) -> dict[str, Any]:
        """Replay: the target record as this command would leave it, in the target's fields (by default the
        command's record; a sink whose commands are not target records derives it from ``current``)."""
        return cmd.record

    def target_exists(self, cmd: SyncCommand, entry: LedgerEntry | None) -> bool:
        """Whether the command edits a record that exists in the target (then the guard looks at it first).  By
        default: this flow wrote it before."""
        return entry is not None and entry.target_id is not None

    # --- calling the target --------------------------------------------------------------------------------
    def try_call(self, fn: Callable[[], T], what: str) -> tuple[T, int]:
        """``fn()`` and how many attempts it took: retried in place while blocking (``GaveUp`` when it kept
        failing), tried once otherwise (a transient error propagates; the caller :meth:`defer` s its commands)."""
        if self.blocking:
            return call_with_retry(fn, what, self.policy)
        return fn(), 1

    def pipeline(self, concurrency: int) -> None:
        """Keep up to ``concurrency`` calls in flight from now on (the delivery step's choice)."""
        if self.flights is None:
            self.flights = Flights(concurrency)

    def dispatch(self, fn: Callable[[], T], what: str, keys: Sequence[str], done: Callable[[T, int], None],
                 failed: Callable[[BaseException], None]) -> None:
        """Call ``fn`` and hand its answer (and attempts) to ``done``, or its exception to ``failed``: at once, or —
        pipelined — on the worker thread once it came back (:meth:`settle`), the keys being in flight meanwhile."""
        if self.flights is None:
            try:
                result, attempts = self.try_call(fn, what)
            except Exception as exc:  # noqa: BLE001 - the handler tells transient from permanent
                failed(exc)
                return
            done(result, attempts)
            return
        self.flights.start(fn, frozenset(keys), done, failed)

    def in_flight(self) -> set[str]:
        return self.flights.keys() if self.flights is not None else set()

    def free_calls(self) -> int:
        """How many more calls could be in flight now (pipelined), 1 otherwise."""
        return self.flights.free() if self.flights is not None else 1

    def settle(self) -> None:
        """Handle the answers that came back: their commands' outcomes go to :attr:`settled` (None applied, skipped
        or dead-lettered; else the transient error to retry), unless a handler sent them again."""
        if self.flights is None:
            return
        landed = self.flights.landed()
        if not landed:
            return
        self._deferred = {}
        for flight in landed:
            try:
                result = flight.future.result()
            except Exception as exc:  # noqa: BLE001 - the handler tells transient from permanent
                flight.failed(exc)
            else:
                flight.done(result, 1)
        again = self.flights.keys()
        for flight in landed:
            for key in flight.keys - again:
                self.settled[key] = self._deferred.get(key)
                self._planned.pop(key, None)
        self._deferred = {}
        self.flush_dead_letters()

    def record_superseded(self, coalesced: Sequence[tuple[SyncCommand, Sequence[SyncCommand]]]) -> None:
        """History rows for versions never written because a newer one took their place while pending: each pair is
        (the newer command, now settled; the versions it replaced).  They show the newer version's outcome."""
        if not coalesced:
            return
        entries = self.ledger.entries(newer.key for newer, _ in coalesced)
        rows = []
        for newer, older in coalesced:
            entry = entries.get(newer.key)
            for cmd in older:
                rows.append(dict(
                    source_key=cmd.key, source_version=cmd.version, source_number=cmd.number,
                    target_id=entry.target_id if entry else None, status=entry.status if entry else "failed",
                    error=f"superseded by version {newer.version}", kafka_topic=cmd.position.topic,
                    kafka_partition=cmd.position.partition, kafka_offset=cmd.position.offset,
                    captured_at_ms=cmd.captured_at_ms))
        self.ledger.record_superseded(rows)

    def defer(self, cmd: SyncCommand, exc: BaseException) -> None:
        """A transient failure of ``cmd`` in the runtime: its claim on the field clock is released, and the delivery
        step retries it later."""
        planned = self._planned.get(cmd.key)
        if self.guard is not None and planned is not None:
            self.guard.release(planned)
        self._deferred[cmd.key] = exc

    def deliver(self, commands: list[SyncCommand]) -> dict[str, BaseException]:
        """The delivery step's attempt: write once, return what failed transiently (by key)."""
        self._deferred = {}
        self.last_applied = []
        self.write_batch(commands)
        deferred, self._deferred = self._deferred, {}
        return deferred

    def give_up(self, cmd: SyncCommand, error: BaseException, attempts: int, failing_s: float) -> None:
        self.dead_letter(cmd, GaveUp(f"{self.flow} {cmd.key}: still failing after {attempts} attempts over "
                                     f"{failing_s:.0f}s: {error}", attempts), attempts, stage="deliver")
        self.flush_dead_letters()

    # --- the shared part --------------------------------------------------------------------------------------
    def write_batch(self, items: list[SyncCommand]) -> None:
        session = replay_mode.active()
        if session is not None:
            for cmd in items:
                if not session.in_window(cmd.position):
                    session.count("outside")
                elif session.sampled(cmd.key):
                    held = self._replayed.get(cmd.key)
                    if held is None or cmd.version >= held.version:
                        self._replayed[cmd.key] = cmd
            return
        commands = newest_per_key(items)
        entries = self.ledger.entries(c.key for c in commands)
        todo: list[SyncCommand] = []
        unchanged: list[dict[str, Any]] = []
        for cmd in commands:
            entry = entries.get(cmd.key)
            if entry is not None and (entry.source_version > cmd.version or (
                    entry.source_version == cmd.version and entry.fingerprint == cmd.fingerprint)):
                # A replay or duplicate: applied (or dead-lettered) at this version or newer.  An equal version with
                # other content is a second change within one tick of a coarse source clock (ZOHO shows seconds).
                continue
            if entry is not None and entry.status == "synced" and entry.fingerprint == cmd.fingerprint:
                unchanged.append(self.ledger_row(cmd, entry.target_id, "unchanged", 0))
                continue
            todo.append(cmd)
        if self.guard is None:
            planned = [Planned(c, dict(c.record), {}) for c in todo]
        else:
            planned, nothing = self._decide(todo, entries)
            unchanged += nothing
        self.ledger.record_applied_many(unchanged)
        if planned:
            if self.guard is not None:
                self.guard.claim(planned)
            if self.flights is None:  # (pipelined, earlier batches may still be in flight)
                self._planned = {}
            self._planned.update({p.command.key: p for p in planned})
            self.write(planned, entries)
        self.flush_dead_letters()

    def flush_dead_letters(self) -> None:
        """The dead letters produced since the last flush are in Kafka before the step goes on.  Without any there
        is nothing to wait for: an empty flush still gave up the worker's GIL and woke the producer's broker
        threads, at every call and every answer (~4 % of the flow's samples at a steady 1,000 changes/s)."""
        if self._letters:
            self._letters = int(self.dlq.flush(30) or 0)  # (what is still queued after the wait)

    def _decide(self, commands: list[SyncCommand],
                entries: dict[str, LedgerEntry]) -> tuple[list[Planned], list[dict[str, Any]]]:
        """The guard's plan: what to write, and ledger rows of the commands that need no write.  Commands whose
        target could not be read are held back (:meth:`_unread`)."""
        assert self.guard is not None
        planned = self.guard.plan(
            commands, peek=lambda c: self._look_before_writing(c, entries.get(c.key)),
            exists=lambda c: self.target_exists(c, entries.get(c.key)),
        )
        for p in planned:
            if p.unread is not None:
                self._unread(p.command, p.unread)
        planned = [p for p in planned if p.unread is None]
        unchanged = []
        for p in [p for p in planned if not p.write]:
            log.debug("%s %s: nothing to write (%s)", self.flow, p.command.key, p.dropped)
            entry = entries.get(p.command.key)
            unchanged.append(self.ledger_row(p.command, entry.target_id if entry else None, "unchanged", 0))
        return [p for p in planned if p.write], unchanged

    def redecide(self, stale: list[Planned], entries: dict[str, LedgerEntry]) -> list[Planned]:
        """Conditional writes the target refused because the record changed after the guard's look: their claims
        are released, the guard looks again and decides again (``two_way.py``).  Returns what to write now (claimed);
        commands that need no write any more are recorded as unchanged."""
        assert self.guard is not None
        for p in stale:
            self.guard.release(p)
        planned, unchanged = self._decide([p.command for p in stale], entries)
        self.ledger.record_applied_many(unchanged)
        if planned:
            self.guard.claim(planned)
            self._planned.update({p.command.key: p for p in planned})
        return planned

    def still_changing(self, planned: Planned, tries: int) -> None:
        """A conditional write refused :data:`~connectors.common.two_way.MAX_REDECISIONS` times in a row: the
        record keeps changing in the target.  Handled like a target that cannot be read: retried later in the
        runtime, dead-lettered by a plain sink."""
        exc = TransientError(f"{self.target_name} record of {planned.command.key} changed again between the look "
                             f"and the write, {tries} times in a row")
        if self.blocking:
            self.dead_letter(planned.command, GaveUp(str(exc), tries), tries, stage="conditional-write")
        else:
            self.defer(planned.command, exc)

    def _unread(self, cmd: SyncCommand, exc: BaseException) -> None:
        """The target record could not be read before writing a shared field: never write blind.  In the runtime
        the command waits in the delivery step's state and is tried again; a plain sink (which already retried in
        place) or an error retrying cannot fix dead-letters it."""
        log.warning("%s %s: not written, %s could not be read first: %s", self.flow, cmd.key, self.target_name, exc)
        if self.blocking or isinstance(exc, PermanentError):  # (GaveUp is one)
            self.dead_letter(cmd, exc if isinstance(exc, PermanentError) else PermanentError(
                f"could not read the {self.target_name} record before writing: {exc}"), getattr(exc, "attempts", 1),
                stage="read-before-write")
        else:
            self._deferred[cmd.key] = exc

    def ledger_row(self, cmd: SyncCommand, target_id: str | None, action: str, attempts: int) -> dict[str, Any]:
        return dict(source_key=cmd.key, source_version=cmd.version, source_number=cmd.number, target_id=target_id,
                    fingerprint=cmd.fingerprint, action=action, attempts=attempts, position=cmd.position,
                    captured_at_ms=cmd.captured_at_ms)

    def applied(self, done: Sequence[tuple[Planned, str | None, str, int]]) -> None:
        """Record successful writes: (planned, target id, action, attempts); with a guard whose clock lives in the
        ledger's database, the ledger rows and the clock's confirmation go in one transaction."""
        rows = [self.ledger_row(p.command, tid, act, n) for p, tid, act, n in done]
        self.last_applied.extend(p.command for p, *_ in done)
        if not rows:
            return
        with transaction(self.ledger.engine) as conn:
            self.ledger.record_applied_many(rows, conn)
            if self.guard is not None:
                shared = self.guard.clock.engine is self.ledger.engine
                self.guard.confirm([p for p, *_ in done], conn if shared else None)

    def _replay(self, session: replay_mode.ReplaySession) -> None:
        """End of a replay's input: compare each held command with its target record; write what differs."""
        commands = list(self._replayed.values())
        self._replayed = {}
        entries = self.ledger.entries(c.key for c in commands)
        known = self.guard.clock.known(c.entity or c.key for c in commands) if self.guard is not None else {}
        self.prefetch(commands)
        planned: list[Planned] = []
        for cmd in commands:
            entry = entries.get(cmd.key)
            if entry is not None and entry.source_version > cmd.version:
                session.count("superseded")  # the running flow already applied a newer change
                continue
            try:
                target_id, current = self.current_record(cmd, entry)
            except NotImplementedError:
                session.unsupported(f"{self.flow} → {self.target_system} {self.target_name}", 1)
                continue
            session.count("compared")
            if cmd.deleted and current is None:
                session.count("same")  # deleted at the source and absent in the target: nothing to mark
                continue
            external_key = getattr(self, "external_key", None)
            if external_key and cmd.record.get(external_key) is not None:
                session.target_key(self.target_system, self.target_name, external_key, cmd.record[external_key])
            desired = self.desired(cmd, current)
            differ = differing_fields(desired, current or {}, set(self.identity_fields))
            kept: dict[str, str] = {}
            if self.guard is not None and differ:
                decision = FieldClock.decide(known.get(cmd.entity or cmd.key, {}), self.guard.side,
                                             cmd.changed_at_ms, {f: cmd.record[f] for f in differ},
                                             self.guard.shared)
                kept = {f: why for f, why in decision.dropped.items() if why.startswith("newer in")}
                differ = {f: v for f, v in differ.items() if f not in kept}
            if not differ and current is not None:
                session.count("same")
                continue
            session.record(replay_mode.Drift(
                self.flow, cmd.key, cmd.number, self.target_system, self.target_name, target_id,
                "update" if current is not None else "create", differ, kept, written=not session.dry_run))
            write = {f: desired[f] for f in (differ if current is not None else desired)}
            write.update({f: desired[f] for f in self.identity_fields if f in desired})
            planned.append(Planned(cmd, write, {}))
        if planned and not session.dry_run:
            if self.guard is not None:
                self.guard.claim(planned)
            self._planned.update({p.command.key: p for p in planned})
            self.write(planned, entries)

    def dead_letter(self, cmd: SyncCommand, exc: BaseException, attempts: int, stage: str) -> None:
        session = replay_mode.active()
        if session is not None:  # a replay reports, it does not produce dead letters or touch the ledger's failures
            session.dead_letter({"flow": self.flow, "key": cmd.key, "number": cmd.number, "stage": stage,
                                 "error_class": type(exc).__name__, "error": str(exc)})
            return
        planned = self._planned.get(cmd.key)
        if self.guard is not None and planned is not None:
            self.guard.release(planned)
        letter = DeadLetter.of(
            self.flow, stage, exc, record=cmd.record, key=cmd.key, topic=cmd.position.topic,
            partition=cmd.position.partition, offset=cmd.position.offset, attempts=attempts,
        )
        letter.log()
        self.dlq.produce(self.dlq_topic, key=cmd.key.encode(), value=letter.to_json())
        self._letters += 1
        self.ledger.record_failed(cmd.key, cmd.version, error=str(exc), attempts=attempts, position=cmd.position,
                                  captured_at_ms=cmd.captured_at_ms, fingerprint=cmd.fingerprint, number=cmd.number)

    def close(self) -> None:
        session = replay_mode.active()
        if session is not None and self._replayed:
            self._replay(session)
        if self.flights is not None:
            self.flights.close()
        self.dlq.flush(30)
