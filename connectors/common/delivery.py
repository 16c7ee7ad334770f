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

``cdchub replay`` and tests that read a bounded input use the writer as a plain Bytewax sink instead (blocking
retries, and the replay's compare-at-the-end), see :func:`deliver`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulLogic
from bytewax.outputs import DynamicSink

from connectors.common import replay_mode
from connectors.common.errors import TransientError
from connectors.common.health import HEALTH
from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.token_cache import TokenUnavailable

log = logging.getLogger(__name__)

SHARDS = 4
Clock = Callable[[], float]


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


@dataclass
class DeliveryState:
    pending: dict[str, Pending] = field(default_factory=dict)


class Delivery(StatefulLogic[SyncCommand, SyncCommand, DeliveryState]):
    """One shard's pending commands (see the module doc)."""

    def __init__(self, state: DeliveryState | None, writer: Callable[[], Writer], policy: RetryPolicy,
                 clock: Clock = time.time, flow: str = "?") -> None:
        self.state = state or DeliveryState()
        self.writer = writer
        self.policy = policy
        self.clock = clock
        self.flow = flow

    def on_item(self, value: SyncCommand) -> tuple[Iterable[SyncCommand], bool]:
        now = self.clock()
        held = self.state.pending.get(value.key)
        if held is None:
            self.state.pending[value.key] = Pending(value, due_at=now)
        elif value.version >= held.command.version:
            held.command = value  # the newer version takes the older one's place (and its retry schedule)
        return [], False

    def on_notify(self) -> tuple[Iterable[SyncCommand], bool]:
        now = self.clock()
        # (a millisecond of slack: the wake-up time went through a datetime and may be a hair early)
        self._attempt([p for p in self.state.pending.values() if p.due_at <= now + 0.001], now)
        return [], not self.state.pending

    def on_eof(self) -> tuple[Iterable[SyncCommand], bool]:
        # A bounded input ended (tests): one more try of everything still pending.
        self._attempt(list(self.state.pending.values()), self.clock())
        return [], not self.state.pending

    def notify_at(self) -> datetime | None:
        if not self.state.pending:
            return None
        return datetime.fromtimestamp(min(p.due_at for p in self.state.pending.values()), UTC)

    def snapshot(self) -> DeliveryState:
        return DeliveryState({k: Pending(p.command, p.attempts, p.failing_since, p.due_at, p.last_error)
                              for k, p in self.state.pending.items()})

    def _attempt(self, due: list[Pending], now: float) -> None:
        if not due:
            return
        writer = self.writer()
        failed = writer.deliver([p.command for p in due])
        applied = getattr(writer, "last_applied", None)
        latencies = [int(now * 1000) - c.captured_at_ms for c in applied or [] if c.captured_at_ms]
        written: list[str] = []
        given_up: list[str] = []
        for p in due:
            error = failed.get(p.command.key)
            if error is None:
                del self.state.pending[p.command.key]
                written.append(p.command.key)
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
                continue
            delay = min(self.policy.max_delay_s, self.policy.first_delay_s * 2 ** (p.attempts - 1))
            delay = random.uniform(delay / 2, delay)
            if isinstance(error, TransientError) and error.retry_after:
                delay = max(delay, error.retry_after)
            p.due_at = now + delay
            if p.attempts == 1:
                log.warning("%s: %s failed, retrying from state: %s", p.command.flow, p.command.key, p.last_error)
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
                self._by_thread[ident] = writer
        return writer

    def __getstate__(self) -> dict[str, Any]:  # pickled with the flow: the sink, never its live writers
        return {"step_id": self.step_id, "sink": self.sink}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["step_id"], state["sink"])  # type: ignore[misc]


def shard_of(key: str, shards: int = SHARDS) -> str:
    return str(zlib.crc32(key.encode()) % shards)


def deliver(step_id: str, commands: Stream[SyncCommand], sink: DynamicSink[SyncCommand],
            policy: RetryPolicy | None = None, shards: int = SHARDS, clock: Clock = time.time,
            flow: str | None = None) -> None:
    """Write ``commands`` with ``sink``'s writer, retrying from state (see the module doc).  In a replay session
    the sink is used as a plain Bytewax sink: the replay compares at the end and may block on retries."""
    if replay_mode.active() is not None:
        op.output(step_id, commands, sink)
        return
    retry = policy or getattr(sink, "policy", None) or RetryPolicy()
    writers = _Writers(step_id, sink)
    keyed = op.key_on(f"{step_id}_shard", commands, lambda c: shard_of(c.key, shards))
    name = flow or str(getattr(sink, "flow", step_id))
    done = op.stateful(step_id, keyed, lambda state: Delivery(state, writers, retry, clock, name))
    op.inspect(f"{step_id}_end", done, lambda _step, _item: None)  # the branch's end (emits nothing)
