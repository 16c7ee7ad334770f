"""Delivering sync commands to a target system without ever sleeping in the dataflow: retries live in state.

    commands ─► key by shard ─► Delivery (state per shard: pending commands, next attempt) ─► the sink's writer

A sink of ``connectors/`` (a :class:`~connectors.common.ledger_sink.LedgerSinkPartition`) is used as the writer:
each attempt is one try (``blocking = False``); what fails transiently (429, 5xx, timeouts, lost sessions, no
access token yet) comes back and stays in the shard's state with the time of its next attempt (capped exponential
backoff, or the server's ``Retry-After``), and Bytewax wakes the step then (``notify_at``).  Meanwhile the worker
serves every other key and flow.  A command gives up — a dead letter naming the last error — once it has been
failing for ``policy.give_up_after_s``; waiting for an access token does not count.  A newer version of a pending
command replaces it (the ledger would skip the older one anyway).

Delivery guarantee: the pending commands are in Bytewax's recovery snapshots, so a crash loses none; together with
the idempotent writers (the sync ledger) a command is applied effectively once.

Commands are spread over ``shards`` keys (a stable hash of the command key), so workers share the load while one
key's versions stay in order on one worker; each shard writes its due commands together (batches of up to 100).
A dataflow of one worker has one shard: its commands share calls, and it wakes once per collection, not once per
shard (at 1,000 changes/s, four shards on one worker cost 15 % more CPU per record and doubled the latency,
``docs/sink-pace.md``).  The number is fixed for the life of a recovery store, like Bytewax's worker count
(:func:`shards_for`, :func:`store_shards`; ``cdchub/runtime.py`` makes stores): a key must never move to another
shard while a version of it waits in the old one.

Pipelined writers (the ZOHO upsert, ``docs/sink-pace.md``): the step does not wait for the target's answer.  It
sends what ``batching.batch_take`` allows given the writer's free calls (calls of 100, as many in flight as the
org's concurrency allows), marks those commands in flight, and is woken every few milliseconds while any are, to
collect the answers (``LedgerSinkPartition.settle``: ledger rows, dead letters, retries — on the worker thread).
A key is never in flight twice: a newer version arriving meanwhile waits as the key's ``queued`` command and goes
once the older write came back.  Versions replaced while pending (coalesced: only the newest is written) are
kept as ``superseded`` and get their own history rows once the newest version is settled.  A snapshot holds
commands in flight as pending (the newest of each key): after a crash they are written again, idempotently.

Sums over documents of several partitions (an order's receipts, a material's stock) are delivered with
``hold_until_caught_up``: while the flow's input is catching up (``kafka_input.catching_up``: after a restart, or a
replay from scratch) the step keeps each key's newest total and writes nothing; once caught up it writes each key's
last total, once — a settle after the input caught up (``CATCH_UP_SETTLE_S`` plus twice the flow's
``upstream_interval_s``), since the last messages read are still on their way, and a step before it may keep a total
back for a while (the inventory writes a material at most once a second: a first measurement released the held
partial totals of 48 materials at the catch-up and their complete totals a second later).  Without the hold a replay
wrote partial totals: an order's newest receipt replayed before an older one gave a total at the newest version
without the older receipt, which the ledger takes for a second change at that version (``docs/runtime.md``).  While
it holds, a total replacing one of the same version is not kept as superseded (it is that version, less complete),
and the step does not hold the input back (``kafka_input.backlog``): it needs the input to catch up.

``cdchub replay`` and tests that read a bounded input use the writer as a plain Bytewax sink instead (blocking
retries, and the replay's compare-at-the-end), see :func:`deliver`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import wait as wait_for_any
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulLogic
from bytewax.outputs import DynamicSink

from connectors.common import replay_mode
from connectors.common.batching import CREDIT_UNIT, PER_CALL, batch_take
from connectors.common.health import HEALTH
from connectors.common.kafka_input import backlog, catching_up, wake_by
from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.token_cache import TokenUnavailable
from core.errors import TransientError

log = logging.getLogger(__name__)

#: Shards of a dataflow of several workers (at least two per worker, so Bytewax's hashing of the shard keys
#: spreads them), and of every recovery store made before the number was chosen per store.
SHARDS = 4
#: In a recovery store: the number of delivery shards its dataflow runs with.
SHARDS_FILE = "delivery-shards"
#: The shards of the dataflows this process builds (:func:`use_shards`).
_process_shards = SHARDS


def store_shards(recovery: Path | None) -> int:
    """The delivery shards a recovery store was made with (``cdchub run`` writes them when it makes one); a store
    that does not say — made before the number was chosen per store, or by ``python -m bytewax.recovery`` — and no
    store at all have :data:`SHARDS`."""
    if recovery is None:
        return SHARDS
    try:
        return int((recovery / SHARDS_FILE).read_text().strip())
    except FileNotFoundError:
        return SHARDS


#: Shards of a new dataflow of one worker: one, so its commands share calls (docs/sink-pace.md).
ONE_WORKER_SHARDS = 1


def shards_for(workers: int) -> int:
    """Delivery shards of a new dataflow of ``workers`` workers in all."""
    return ONE_WORKER_SHARDS if workers <= 1 else max(SHARDS, 2 * workers)


def use_shards(shards: int) -> None:
    """The delivery shards of the dataflows built from now on in this process (the dataflow factories set their
    recovery store's number, ``flows/dataflows.py``)."""
    global _process_shards
    if shards < 1:
        raise ValueError(f"delivery shards must be at least 1, not {shards}")
    _process_shards = shards


Clock = Callable[[], float]
#: While commands are in flight the step looks for answers this often (s); the call itself takes longer.
COLLECT_EVERY_S = 0.005
#: While a step holds until its flow caught up, it looks again this often (s).
HOLD_RECHECK_S = 0.1
#: How long a holding step goes on holding once its flow caught up (s), by default: the last messages read are
#: still on their way through the steps before it.  Steps that keep totals back longer add their time.
CATCH_UP_SETTLE_S = 0.5
#: A shard that sent a call this recently (s) is busy: only then do its small calls linger for more commands.  A
#: lone change (a clerk's save) goes at once, latency first.
BUSY_S = 0.1


class Writer(Protocol):
    """What the delivery step needs of a sink partition (``LedgerSinkPartition``)."""

    blocking: bool

    def deliver(self, commands: list[SyncCommand]) -> dict[str, BaseException]:
        """Write once; return the commands (by key) that failed transiently.  Everything else is applied, skipped
        or dead-lettered by the writer itself."""
        ...

    def give_up(self, command: SyncCommand, error: BaseException, attempts: int, failing_s: float) -> None:
        """Dead-letter a command that kept failing."""
        ...


@dataclass
class Pending:
    command: SyncCommand
    attempts: int = 0
    #: When the current run of failures began (epoch s; token waits pushed out), None before any failure.
    failing_since: float | None = None
    due_at: float = 0.0
    last_error: str | None = None
    #: Pipelined: the command's write is in flight; a newer version that arrived meanwhile waits here.
    flying: bool = False
    queued: SyncCommand | None = None
    #: Older versions this command replaced before any of them was written (coalesced).
    superseded: list[SyncCommand] = field(default_factory=list)


@dataclass
class DeliveryState:
    pending: dict[str, Pending] = field(default_factory=dict)


class Delivery(StatefulLogic[SyncCommand, SyncCommand, DeliveryState]):
    """One shard's pending commands (see the module doc)."""

    def __init__(self, state: DeliveryState | None, writer: Callable[[], Writer], policy: RetryPolicy,
                 clock: Clock = time.time, flow: str = "?", linger_s: float = 0.0,
                 hold: Callable[[], bool] | None = None) -> None:
        self.state = state or DeliveryState()
        self.writer = writer
        self.policy = policy
        self.clock = clock
        self.flow = flow
        #: A pipelined call of fewer than ``CREDIT_UNIT`` commands waits this long for more while the shard is busy
        #: (``batching.py``).
        self.linger_s = linger_s
        #: True while the step is to write nothing (its flow catching up, see the module doc).
        self.hold = hold
        self._last_sent_at = 0.0
        #: Keys of this shard whose write is in flight (pipelined writers; none after a resume).
        self._flying: set[str] = set()

    def on_item(self, value: SyncCommand) -> tuple[Iterable[SyncCommand], bool]:
        now = self.clock()
        held = self.state.pending.get(value.key)
        if held is None:
            self.state.pending[value.key] = Pending(value, due_at=now)
        elif held.flying:  # never two writes of one key at once: the newest waits for the one in flight
            if held.queued is None or value.version >= held.queued.version:
                if held.queued is not None:
                    held.superseded.append(held.queued)
                held.queued = value
        elif value.version >= held.command.version:
            # the newer version takes the older one's place (and its retry schedule); the older is never written
            if value.version > held.command.version or not self._holding():
                held.superseded.append(held.command)
            held.command = value
        return [], False

    def on_notify(self) -> tuple[Iterable[SyncCommand], bool]:
        now = self.clock()
        pipelined = self._pipelined()
        if pipelined:
            self._collect(now)
        if self._holding():
            backlog(self.flow, id(self), 0)
            return [], not self.state.pending
        limit = self.writer().free_calls() * PER_CALL if pipelined else None  # type: ignore[attr-defined]
        self._attempt(self._due(now, limit), now)
        backlog(self.flow, id(self), len(self.state.pending))  # (0 when Bytewax discards this logic now)
        return [], not self.state.pending

    def on_eof(self) -> tuple[Iterable[SyncCommand], bool]:
        # A bounded input ended (tests): one more try of everything still pending — a pipelined writer's calls
        # are waited for here, the only place the step waits (there is no more input to serve).
        if not self._pipelined():
            self._attempt(self._due(None, None), self.clock())
            backlog(self.flow, id(self), len(self.state.pending))
            return [], not self.state.pending
        flights = self.writer().flights  # type: ignore[attr-defined]
        while True:
            self._collect(self.clock())
            self._attempt(self._due(None, self.writer().free_calls() * PER_CALL), self.clock(),  # type: ignore
                          linger=False)
            if not self._flying:
                break
            wait_for_any([f.future for f in flights.flying], return_when=FIRST_COMPLETED)
        backlog(self.flow, id(self), len(self.state.pending))
        return [], not self.state.pending

    def notify_at(self) -> datetime | None:
        if not self.state.pending:
            backlog(self.flow, id(self), 0)
            return None
        now = self.clock()
        if self._flying:
            at = now + COLLECT_EVERY_S
        elif self._holding():
            backlog(self.flow, id(self), 0)
            return datetime.fromtimestamp(now + HOLD_RECHECK_S, UTC)
        elif due := self._due(now, CREDIT_UNIT):
            at = now if len(due) >= CREDIT_UNIT or not self._lingers(now) else max(now, due[0].due_at + self.linger_s)
        else:
            at = min(p.due_at for p in self.state.pending.values())
        wake_by(at)  # the worker's input does not hold the worker past it (kafka_input.py)
        backlog(self.flow, id(self), len(self.state.pending))  # nor read far ahead of the sink
        return datetime.fromtimestamp(at, UTC)

    def snapshot(self) -> DeliveryState:
        # In flight: the write may or may not have happened; the newest version is pending again (idempotent).
        return DeliveryState({k: Pending(p.queued or p.command, p.attempts, p.failing_since, p.due_at, p.last_error,
                                         superseded=list(p.superseded) + ([p.command] if p.queued else []))
                              for k, p in self.state.pending.items()})

    def _holding(self) -> bool:
        return self.hold is not None and self.hold()

    def _due(self, now: float | None, limit: int | None) -> list[Pending]:
        """Pending commands not in flight and due by ``now`` (None: all), oldest first, at most ``limit``.  The
        backlog may hold thousands: the scan stops at the limit."""
        due: list[Pending] = []
        if limit is not None and limit <= 0:
            return due
        for p in self.state.pending.values():
            # (a millisecond of slack: the wake-up time went through a datetime and may be a hair early)
            if p.flying or (now is not None and p.due_at > now + 0.001):
                continue
            due.append(p)
            if limit is not None and len(due) >= limit:
                break
        return due

    def _pipelined(self) -> bool:
        writer = self.writer()
        return getattr(writer, "flights", None) is not None

    def _collect(self, now: float) -> None:
        """The answers of this shard's commands in flight (``LedgerSinkPartition.settle``)."""
        if not self._flying:
            return
        writer = self.writer()
        writer.settle()  # type: ignore[attr-defined]
        settled: dict[str, BaseException | None] = writer.settled  # type: ignore[attr-defined]
        keys = [k for k in self._flying if k in settled]
        if keys:
            self._flying.difference_update(keys)
            self._outcomes([self.state.pending[k] for k in keys], {k: settled.pop(k) for k in keys}, now)

    def _attempt(self, due: list[Pending], now: float, linger: bool = True) -> None:
        if not due:
            return
        writer = self.writer()
        if self._pipelined():
            # (a millisecond of slack: the wake-up may be a hair early)
            lingered = not linger or not self._lingers(now) or now - due[0].due_at >= self.linger_s - 0.001
            due = due[:batch_take(len(due), writer.free_calls(), lingered=lingered)]  # type: ignore[attr-defined]
            if not due:
                return
            self._last_sent_at = now
        failed = writer.deliver([p.command for p in due])
        flying = writer.in_flight() if self._pipelined() else set()  # type: ignore[attr-defined]
        for p in due:
            if p.command.key in flying:
                p.flying = True
                self._flying.add(p.command.key)
        self._outcomes([p for p in due if not p.flying], failed, now)

    def _lingers(self, now: float) -> bool:
        return self.linger_s > 0 and now - self._last_sent_at < BUSY_S

    def _outcomes(self, due: list[Pending], failed: Mapping[str, BaseException | None], now: float) -> None:
        """Settle what came back: written (or skipped, or dead-lettered) leaves the state, a key's queued newer
        version becomes its pending command; a transient failure is scheduled again or given up."""
        writer = self.writer()
        applied = getattr(writer, "last_applied", None)
        if applied:  # counted once, whichever shard's settling applied them
            writer.last_applied = []  # type: ignore[attr-defined]
        latencies = [int(now * 1000) - c.captured_at_ms for c in applied or [] if c.captured_at_ms]
        written: list[str] = []
        given_up: list[str] = []
        coalesced: list[tuple[SyncCommand, list[SyncCommand]]] = []
        for p in due:
            p.flying = False
            error = failed.get(p.command.key)
            if p.queued is not None:  # a newer version waited for this write: it is the key's command now
                if error is None:
                    coalesced.append((p.command, p.superseded))
                    p.superseded = []
                else:
                    p.superseded.append(p.command)
                self.state.pending[p.command.key] = Pending(p.queued, due_at=now, superseded=p.superseded)
                continue
            if error is None:
                del self.state.pending[p.command.key]
                written.append(p.command.key)
                if p.superseded:
                    coalesced.append((p.command, p.superseded))
                continue
            p.attempts += 1
            p.last_error = f"{type(error).__name__}: {error}"
            if isinstance(error, TokenUnavailable):  # nobody's failure: wait for the token, budget untouched
                wait = max(self.policy.first_delay_s, error.retry_after or self.policy.max_delay_s)
                if p.failing_since is not None:
                    p.failing_since += wait
                p.due_at = now + wait
                continue
            if p.failing_since is None:
                p.failing_since = now
            if now - p.failing_since >= self.policy.give_up_after_s:
                self.writer().give_up(p.command, error, p.attempts, now - p.failing_since)
                del self.state.pending[p.command.key]
                given_up.append(p.command.key)
                if p.superseded:
                    coalesced.append((p.command, p.superseded))
                continue
            delay = min(self.policy.max_delay_s, self.policy.first_delay_s * 2 ** (p.attempts - 1))
            delay = random.uniform(delay / 2, delay)
            if isinstance(error, TransientError) and error.retry_after:
                delay = max(delay, error.retry_after)
            p.due_at = now + delay
            if p.attempts == 1:
                log.warning("%s: %s failed, retrying from state: %s", p.command.flow, p.command.key, p.last_error)
        if coalesced and hasattr(writer, "record_superseded"):
            writer.record_superseded(coalesced)
        failing = {k: (p.failing_since if p.failing_since is not None else now, p.last_error or "")
                   for k, p in self.state.pending.items() if p.attempts}
        HEALTH.delivered(self.flow, written, failing, given_up, latencies)


class _Writers:
    """One writer per sink step and worker thread, built on first use (the sink's partition: client, ledger,
    dead-letter producer)."""

    def __init__(self, step_id: str, sink: DynamicSink[SyncCommand]) -> None:
        self.step_id = step_id
        self.sink = sink
        self._by_thread: dict[int, Writer] = {}
        self._lock = threading.Lock()

    def __call__(self) -> Writer:
        ident = threading.get_ident()
        writer = self._by_thread.get(ident)
        if writer is None:
            with self._lock:
                index = len(self._by_thread)
                writer = self.sink.build(self.step_id, index, index + 1)  # type: ignore[assignment]
                assert writer is not None
                writer.blocking = False
                if getattr(writer, "pipelined", False):  # calls in flight, as many as the target allows
                    writer.pipeline(writer.concurrency)
                self._by_thread[ident] = writer
        return writer

    def __getstate__(self) -> dict[str, Any]:  # pickled with the flow: the sink, never its live writers
        return {"step_id": self.step_id, "sink": self.sink}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["step_id"], state["sink"])  # type: ignore[misc]


def shard_of(key: str, shards: int) -> str:
    return str(zlib.crc32(key.encode()) % shards)


def deliver(step_id: str, commands: Stream[SyncCommand], sink: DynamicSink[SyncCommand],
            policy: RetryPolicy | None = None, shards: int | None = None, clock: Clock = time.time,
            flow: str | None = None, hold_until_caught_up: bool = False,
            upstream_interval_s: float = 0.0) -> None:
    """Write ``commands`` with ``sink``'s writer, retrying from state (see the module doc).  With
    ``hold_until_caught_up`` (sums over several partitions) nothing is written while the flow's input catches up,
    nor for a settle after it: ``CATCH_UP_SETTLE_S`` plus twice ``upstream_interval_s``, the longest a step between
    the input and this one keeps a total back (a coalescing throttle's interval).
    In a replay session the sink is used as a plain Bytewax sink: the replay compares at the end and may block on
    retries."""
    if replay_mode.active() is not None:
        op.output(step_id, commands, sink)
        return
    retry = policy or getattr(sink, "policy", None) or RetryPolicy()
    writers = _Writers(step_id, sink)
    count = shards or _process_shards
    keyed = op.key_on(f"{step_id}_shard", commands, lambda c: shard_of(c.key, count))
    name = flow or str(getattr(sink, "flow", step_id))
    linger_s = float(getattr(sink, "batch_linger_s", 0.0))
    settle_s = CATCH_UP_SETTLE_S + 2 * upstream_interval_s
    hold = partial(catching_up, name, settle_s) if hold_until_caught_up else None
    done = op.stateful(step_id, keyed, lambda state: Delivery(state, writers, retry, clock, name, linger_s, hold))
    op.inspect(f"{step_id}_end", done, lambda _step, _item: None)  # the branch's end (emits nothing)
