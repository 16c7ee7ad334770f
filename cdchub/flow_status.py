"""Per-flow status for ``cdchub status``: what each flow applied, how far behind its topic it is, its errors.

Lag is the number of messages on the flow's source topic after the last one it applied or dead-lettered (from the
ledger's Kafka positions, the dead letters' source positions and the topic's end offsets). Messages it skipped as
duplicates or that are not its business (drafts, tombstones) count too, so a lag that stays put while nothing
changes is normal; one that grows is not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from cdchub.dead_letter_admin import letters
from cdchub.ledger import sync_ledger
from cdchub.settings import Settings


@dataclass
class FlowStatus:
    flow: str
    topic: str | None
    synced: int
    failed: int
    per_minute: int
    last_applied_ms: int | None
    lag: int | None
    dead_letters: int

    def line(self) -> str:
        last = "-" if not self.last_applied_ms else time.strftime("%H:%M:%S",
                                                                  time.localtime(self.last_applied_ms / 1000))
        lag = "-" if self.lag is None else str(self.lag)
        return (f"{self.flow:<24} synced {self.synced:>6}  failed {self.failed:>4}  last {last}  "
                f"{self.per_minute:>5}/min  lag {lag:>6}  dead letters {self.dead_letters}")


def capture_mode_line(stats: dict[str, Any]) -> str | None:
    """What a polled capture costs its source (``cdchub status``); nothing for the log capture."""
    mode = stats.get("mode") or "log"
    if mode == "log":
        return None
    unit = "statements" if mode == "query" else "API calls"
    up_s = max(1.0, time.time() - int(stats.get("started_ms") or 0) / 1000)
    return (f"capture mode {mode}: {stats.get('polls', 0)} polls, {stats.get('source_calls', 0)} {unit} "
            f"({stats.get('source_calls', 0) / up_s * 60:.0f}/min since the start), {stats.get('source_rows', 0)} "
            f"rows and {stats.get('documents_read', 0)} documents read")


def _clock(ms: int | None) -> str:
    return "-" if not ms else time.strftime("%H:%M:%S", time.localtime(ms / 1000))


def runtime_lines(settings: Settings, by_flow: dict[str, FlowStatus] | None = None) -> list[str]:
    """Every dataflow process (alive or not) and every flow it runs: read, written, retrying since, dead letters,
    last error; flows of no running process are listed as not running."""
    from connectors.common.health import read_reports
    from flows.dataflows import DATAFLOWS, FLOWS

    by_flow = by_flow or {}
    lines: list[str] = []
    seen: set[str] = set()
    for report in read_reports(settings.state_dir):
        up_s = max(0, int(time.time() - int(report.get("started_ms") or 0) / 1000))
        state = "alive" if report["alive"] else "NOT RESPONDING (stale report)"
        lines.append(f"{report.get('role')}: pid {report.get('pid')}, up {up_s // 60}m{up_s % 60:02d}s, {state}")
        for flow, h in (report.get("flows") or {}).items():
            seen.add(flow)
            retrying = (f"retrying {h['retrying']} since {_clock(h['retrying_since_ms'])}" if h.get("retrying")
                        else "retrying 0")
            workers = len(h.get("workers") or {})
            error = f"  last error {_clock(h.get('last_error_ms'))}: {str(h['last_error'])[:80]}" \
                if h.get("last_error") else ""
            ledger = by_flow.get(flow)
            lag = "" if ledger is None or ledger.lag is None else f"  lag {ledger.lag}"
            lines.append(f"  {flow:<22} read {h.get('read', 0):>6} ({workers} worker{'s' if workers != 1 else ''})"
                         f"  written {h.get('written', 0):>6}  {retrying}  dead letters {h.get('dead_letters', 0)}"
                         f"{lag}{error}")
    idle = [f for f in FLOWS if f not in seen]
    if idle:
        groups = ", ".join(d for d, members in DATAFLOWS.items() if any(f in members for f in idle))
        lines.append(f"not running: {', '.join(idle)} (dataflows {groups}; `cdchub run` starts them)")
    return lines


def token_line(settings: Settings) -> str | None:
    from connectors.common.token_cache import token_stats

    now = time.time()
    parts = []
    for name, stats in token_stats(settings.state_dir).items():
        mints = [t for t in stats.get("mints") or [] if now - t < 600]
        refused = int(stats.get("refusals") or 0)
        not_before = float(stats.get("not_before") or 0)
        waiting = f", no token for {not_before - now:.0f}s more" if not_before > now else ""
        parts.append(f"{name.split('-', 1)[0]}: {len(mints)} minted in the last 10 min, {refused} refused{waiting}")
    return "access tokens: " + "; ".join(parts) if parts else None


def _end_offsets(consumer: Consumer, topic: str) -> dict[int, int]:
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}


def flow_statuses(settings: Settings, engine: Engine) -> list[FlowStatus]:
    t = sync_ledger.c
    since = int(time.time() * 1000) - 60_000
    with engine.connect() as conn:
        flows = conn.execute(select(
            t.flow, func.sum((t.status == "synced").cast(sync_ledger.c.attempts.type)),
            func.sum((t.status == "failed").cast(sync_ledger.c.attempts.type)),
            func.sum((t.applied_at_ms >= since).cast(sync_ledger.c.attempts.type)), func.max(t.applied_at_ms),
            func.max(t.kafka_topic),
        ).group_by(t.flow)).all()
        positions = conn.execute(select(t.flow, t.kafka_topic, t.kafka_partition, func.max(t.kafka_offset))
                                 .group_by(t.flow, t.kafka_topic, t.kafka_partition)).all()
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "cdchub-status"})
    out = []
    try:
        for flow, synced, failed, recent, last, topic in flows:
            lag = None
            if topic:
                ends = _end_offsets(consumer, topic)
                done = {p: o for f, tp, p, o in positions if f == flow and tp == topic and p is not None}
                for letter in letters(settings, flow):  # dead-lettered messages were handled too
                    src = letter.source
                    if src.get("topic") == topic and src.get("offset") is not None:
                        part = int(src.get("partition") or 0)
                        done[part] = max(done.get(part, -1), int(src["offset"]))
                lag = sum(max(0, end - (done.get(p, -1) + 1)) for p, end in ends.items())
            dlq = _end_offsets(consumer, settings.kafka.topic(f"cdchub.dlq.{flow}"))
            out.append(FlowStatus(flow, topic, int(synced or 0), int(failed or 0), int(recent or 0), last, lag,
                                  sum(dlq.values())))
    finally:
        consumer.close()
    return sorted(out, key=lambda s: s.flow)
