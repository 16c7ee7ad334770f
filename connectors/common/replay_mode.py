"""Replay mode: a flow re-run over retained topic data that compares with the target instead of trusting the ledger.

``cdchub replay`` and ``cdchub reconcile`` build the real flow and run it in their own process with a
:class:`ReplaySession` active.  While one is active:

- the flow's inputs read from the beginning of their topics to the end and stop (``flows/kingdee_documents.py``);
  stateful steps rebuild their state from the whole topic, and only commands whose source position lies inside the
  chosen window reach the target;
- every sink built on ``LedgerSinkPartition`` collects the newest command per key instead of writing, and at the
  end of input reads each target record, compares field by field (``connectors/common/drift.py``) and — unless the
  session is a dry run — writes exactly the fields that differ.  A shared field whose newer value came from the other
  system (the field clock says so) is kept, not called drift;
- dead letters are counted and reported, not produced; nothing is written to Kafka.

One session per process (the command runs the flow in-process, one worker), hence the module-level ``ACTIVE``.
"""

from __future__ import annotations

import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from core.ledger import Position


@dataclass
class Drift:
    """One target record that differs from what the flow would write."""

    flow: str
    key: str
    number: str | None
    target_system: str
    module: str
    target_id: str | None
    #: "update" (fields differ) or "create" (no target record)
    action: str
    #: field -> {"target": current value, "replay": value the flow writes}
    fields: dict[str, dict[str, Any]]
    #: fields left alone because the other system changed them later (field -> reason)
    kept: dict[str, str] = field(default_factory=dict)
    written: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"flow": self.flow, "key": self.key, "number": self.number, "target_system": self.target_system,
                "module": self.module, "target_id": self.target_id, "action": self.action, "fields": self.fields,
                "kept": self.kept, "written": self.written}


@dataclass
class ReplaySession:
    dry_run: bool
    #: (topic, partition) -> [start, end) offsets whose commands reach the target; filled once topics are known.
    window: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    #: Compare only keys whose crc32 % 100 is below this (reconcile --sample); 100: every key.
    sample_percent: int = 100
    topics: list[str] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)
    drifts: list[Drift] = field(default_factory=list)
    compared: int = 0
    same: int = 0
    superseded: int = 0
    outside: int = 0
    not_comparable: dict[str, int] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    #: (target system, module, external key field) -> the external keys the flow's records carry (reconcile counts)
    targets: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def input_topic(self, topic: str) -> None:
        if topic not in self.topics:
            self.topics.append(topic)

    def saw(self, topic: str) -> None:
        with self._lock:
            self.read[topic] = self.read.get(topic, 0) + 1

    def in_window(self, position: Position) -> bool:
        if position.topic is None or position.partition is None or position.offset is None:
            return True  # commands built from state (no single source position) are always compared
        bounds = self.window.get((position.topic, position.partition))
        return bounds is None or bounds[0] <= position.offset < bounds[1]

    def sampled(self, key: str) -> bool:
        return self.sample_percent >= 100 or zlib.crc32(key.encode()) % 100 < self.sample_percent

    def record(self, drift: Drift) -> None:
        with self._lock:
            self.drifts.append(drift)

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + n)

    def unsupported(self, sink: str, n: int) -> None:
        with self._lock:
            self.not_comparable[sink] = self.not_comparable.get(sink, 0) + n

    def target_key(self, system: str, module: str, key_field: str, value: Any) -> None:
        with self._lock:
            self.targets.setdefault((system, module, key_field), set()).add(str(value))

    def dead_letter(self, letter: dict[str, Any]) -> None:
        with self._lock:
            self.dead_letters.append(letter)


ACTIVE: ReplaySession | None = None


def active() -> ReplaySession | None:
    return ACTIVE


def activate(session: ReplaySession | None) -> None:
    global ACTIVE
    ACTIVE = session
