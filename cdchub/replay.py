"""``cdchub replay <flow>`` and ``cdchub reconcile <flow>``: a flow re-run over retained topic data, compared with
its target (``connectors/common/replay_mode.py`` says how the flow behaves meanwhile).

- ``replay --from beginning|<offset>|<time> [--to …] [--dry-run]``: the commands whose source position lies in the
  window are compared with the target; a dry run prints what would change (a diff per record), a real one writes
  exactly that.  The running flow is not disturbed (the replay keeps no recovery state and writes nothing to Kafka).
- ``reconcile [--sample N] [--fix]``: the whole topic, i.e. the newest version of every source record, against the
  target — counts and per-record differences (``--sample`` compares N % of the keys); ``--fix`` re-syncs the drift.

Flows whose every sink can read its target back are replayable (all the flows into the CRM); others are refused
with the reason rather than half-replayed.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

from bytewax.testing import run_main
from confluent_kafka import Consumer, TopicPartition

from connectors.common import replay_mode
from connectors.common.kafka import consumer as kafka_consumer
from connectors.common.replay_mode import ReplaySession
from connectors.settings import Settings
from core.china_time import CHINA_TIME

#: Flows whose sinks all compare with their target (ledger sinks into the CRM).
REPLAYABLE = ("materials", "customers", "sales_orders", "invoices", "receipts", "inventory", "deliveries")


class ReplayRefused(Exception):
    pass


@dataclass(frozen=True)
class Bound:
    """One end of the window: the beginning/end of the topic, an offset (on every partition) or a time."""

    offset: int | None = None
    time_ms: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> Bound:
        if text is None or text in ("beginning", "end", "now"):
            return cls()
        if text.isdigit():
            return cls(offset=int(text))
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ReplayRefused(f"{text!r} is not an offset, a time (2026-11-30T10:00:00+08:00) or 'beginning'") \
                from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=CHINA_TIME)  # business people say times in China time
        return cls(time_ms=int(moment.timestamp() * 1000))


def _offset(consumer: Consumer, tp: TopicPartition, bound: Bound, low: int, high: int, *, end: bool) -> int:
    """The offset a bound selects on one partition: a start is the first offset in, an end the first offset out
    (an offset given as ``--to`` is included)."""
    if bound.offset is not None:
        return min(max(bound.offset + (1 if end else 0), low), high)
    if bound.time_ms is not None:
        (found,) = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, bound.time_ms)], timeout=10)
        return high if found.offset < 0 else found.offset
    return high if end else low


def window(settings: Settings, topics: list[str], start: Bound,
           end: Bound) -> tuple[dict[tuple[str, int], tuple[int, int]], int]:
    """Per (topic, partition): the [first, last+1) offsets the bounds select within what the topic retains; and
    how many messages the topics retain (what the flow will read)."""
    consumer = kafka_consumer(settings.kafka, "cdchub-replay-window", **{"enable.auto.commit": False})
    try:
        out: dict[tuple[str, int], tuple[int, int]] = {}
        retained = 0
        for topic in topics:
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                tp = TopicPartition(topic, p)
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                first = _offset(consumer, tp, start, low, high, end=False)
                out[(topic, p)] = (first, max(first, _offset(consumer, tp, end, low, high, end=True)))
                retained += high - low
        return out, retained
    finally:
        consumer.close()


class ProgressBar:
    """Position, rate and time left of a replay's reading: a rich progress bar on a terminal, a plain line every
    ~5 s otherwise (a log file)."""

    def __init__(self, session: ReplaySession, total: int, out: TextIO = sys.stderr) -> None:
        self.session = session
        self.total = max(total, 1)
        self.out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._bar: Any = None  # rich's Progress, on a terminal

    def _rate(self) -> tuple[int, float]:
        done = sum(self.session.read.values())
        return done, done / max(time.monotonic() - self.session.started, 1e-6)

    def line(self) -> str:
        done, rate = self._rate()
        share = min(done / self.total, 1.0)
        left = (self.total - done) / rate if rate > 0 and done < self.total else 0.0
        return f"{share:4.0%}  {done:,}/{self.total:,} events  {rate:,.0f}/s  ~{left:,.0f}s left"

    def _update(self) -> None:
        done, rate = self._rate()
        self._bar.update(self._bar.task_ids[0], completed=min(done, self.total), rate=f"{rate:,.0f}/s")

    def _run(self) -> None:
        while not self._stop.wait(0.2 if self._bar is not None else 5.0):
            if self._bar is not None:
                self._update()
            else:
                self.out.write(self.line() + "\n")
                self.out.flush()

    def __enter__(self) -> ProgressBar:
        if self.out.isatty():
            from rich import progress as rp
            from rich.console import Console

            self._bar = rp.Progress(rp.TextColumn("reading"), rp.BarColumn(), rp.TaskProgressColumn(),
                                    rp.MofNCompleteColumn(), rp.TextColumn("events  {task.fields[rate]}"),
                                    rp.TimeRemainingColumn(), console=Console(file=self.out))
            self._bar.add_task("reading", total=self.total, rate="")
            self._bar.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._bar is not None:
            self._update()
            self._bar.stop()
        else:
            self.out.write(self.line() + "\n")
            self.out.flush()


def replay(settings: Settings, flow_name: str, session: ReplaySession, start: Bound = Bound(),
           end: Bound = Bound(), progress: TextIO | None = sys.stderr) -> ReplaySession:
    if flow_name not in REPLAYABLE:
        raise ReplayRefused(f"flow {flow_name!r} cannot be replayed: its sinks cannot read their target back to "
                            f"compare (replayable: {', '.join(REPLAYABLE)})")
    module = importlib.import_module(f"flows.{flow_name}")
    replay_mode.activate(session)
    try:
        flow = module.build_flow(settings)  # registers the flow's input topics with the session
        session.window, total = window(settings, session.topics, start, end)
        if progress is None:
            run_main(flow, epoch_interval=timedelta(seconds=2))  # type: ignore[no-untyped-call]
        else:
            with ProgressBar(session, total, progress):
                run_main(flow, epoch_interval=timedelta(seconds=2))  # type: ignore[no-untyped-call]
    finally:
        replay_mode.activate(None)
    return session


def report(session: ReplaySession, flow_name: str, *, as_json: bool = False) -> str:
    summary = {
        "flow": flow_name, "dry_run": session.dry_run, "read": sum(session.read.values()),
        "compared": session.compared, "same": session.same, "differ": len(session.drifts),
        "superseded": session.superseded, "outside_window": session.outside,
        "not_comparable": session.not_comparable, "dead_letters": session.dead_letters,
        "drift": [d.to_json() for d in session.drifts],
    }
    if as_json:
        return json.dumps(summary, ensure_ascii=False, indent=2, default=str)
    verb = "would change" if session.dry_run else "changed"
    lines = [f"{flow_name}: {summary['read']:,} events read, {session.compared} records compared, "
             f"{session.same} the same, {len(session.drifts)} {verb}"
             + (f", {session.superseded} superseded by newer changes" if session.superseded else "")]
    for d in session.drifts:
        lines.append(f"  {d.action:<6} {d.target_system} {d.module} {d.target_id or '(new)'}  "
                     f"{d.number or ''} (source key {d.key})")
        for name, change in d.fields.items():
            lines.append(f"      {name}: {_shown(change['target'])} → {_shown(change['replay'])}")
        for name, why in d.kept.items():
            lines.append(f"      {name}: kept ({why})")
    for sink, n in session.not_comparable.items():
        lines.append(f"  not compared: {n} records of {sink}")
    for letter in session.dead_letters:
        lines.append(f"  would dead-letter {letter.get('key')}: {letter.get('error_class')}: "
                     f"{str(letter.get('error'))[:160]}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, dict) and "id" in value:
        return f"→{value['id']}"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "…"


@dataclass
class TargetCount:
    system: str
    module: str
    key_field: str
    source: int
    target: int
    #: target records carrying a key the source does not have (created there by hand, or source rows gone)
    orphans: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"system": self.system, "module": self.module, "key_field": self.key_field, "source": self.source,
                "target": self.target, "orphans": self.orphans}


def crm_keys(settings: Settings, module: str, key_field: str) -> set[str]:
    """Every value of ``key_field`` on the CRM module's records."""
    from connectors.zoho.client import ZohoClient

    client = ZohoClient(settings.zoho)
    try:
        return {str(r[key_field]) for r in client.list_records(module, ["id", key_field])
                if r.get(key_field) not in (None, "")}
    finally:
        client.close()


def reconcile(settings: Settings, flow_name: str, *, sample_percent: int = 100, fix: bool = False,
              progress: TextIO | None = sys.stderr) -> tuple[ReplaySession, list[TargetCount]]:
    """The newest version of every source record of the flow against its target: per-record drift (re-synced with
    ``fix``) and, for a full comparison, counts per target module with the target's orphans."""
    session = replay(settings, flow_name, ReplaySession(dry_run=not fix, sample_percent=sample_percent),
                     progress=progress)
    counts = []
    for (system, module, key_field), source_keys in session.targets.items():
        if system != "zoho" or sample_percent < 100:
            continue
        target_keys = crm_keys(settings, module, key_field)
        counts.append(TargetCount(system, module, key_field, len(source_keys), len(target_keys),
                                  sorted(target_keys - source_keys)))
    return session, counts
