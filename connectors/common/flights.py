"""Calls to a target system kept in flight while the dataflow goes on: the sink's side of pipelined delivery.

A pipelined sink (``LedgerSinkPartition`` with an executor) hands each target call to a thread pool sized to the
target's concurrency (``ZohoClient``'s shared slots still bound it across every process of the org) and returns at
once; the delivery step (``delivery.py``) asks it, on its next wake-up, which calls came back.  Everything but the
HTTP exchange stays on the dataflow's worker thread: the ledger check and the two-way guard before the call, and
the answer's handling after it (ledger rows, dead letters, the guard's confirmation, what to retry) — so the ledger
and the guard see one writer, as before, and no step ever waits for an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class Flight:
    """One call in flight and what to do with its answer (on the worker thread)."""

    future: Future[Any]
    keys: frozenset[str]
    done: Callable[[Any, int], None]
    failed: Callable[[BaseException], None]


class Flights:
    """The calls in flight of one sink partition."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sink-call")
        self.flying: list[Flight] = []

    def start(self, fn: Callable[[], Any], keys: frozenset[str], done: Callable[[Any, int], None],
              failed: Callable[[BaseException], None]) -> None:
        self.flying.append(Flight(self.executor.submit(fn), keys, done, failed))

    def free(self) -> int:
        """Calls that could start now without waiting for a slot of this partition's."""
        return max(0, self.concurrency - len(self.flying))

    def keys(self) -> set[str]:
        return {k for f in self.flying for k in f.keys}

    def landed(self) -> list[Flight]:
        """The calls that came back since the last look (taken out of the flying ones)."""
        landed = [f for f in self.flying if f.future.done()]
        if landed:
            self.flying = [f for f in self.flying if f not in landed]
        return landed

    def close(self) -> None:
        self.executor.shutdown(wait=True)
