"""``cdchub trace <number or id>``: a document's journey across systems, from the ledger and the topics.

Given a business number (material code, bill number, CRM display name), a source id or a target id, it finds the
ledger rows that name it, then for each: the captured versions of the document, each write the flows made (target
system and id, action, attempts, error, latency from the source commit), and any dead letters for it — as a
timeline, or as JSON.

**By position.**  The ledger and its history record the Kafka position (topic, partition, offset) of every version
a flow wrote, failed on or coalesced; the trace reads exactly those messages (``cdchub/topic_reads.py``) instead of
scanning the document's topic, so a trace costs the same on a topic of a hundred messages or of ten million.
Versions that changed nothing in the target are not in the history; the ledger row keeps the newest of them.
What can only be found by scanning — dead letters, related documents that name this one — is scanned within the
trace's deadline and message budget.  When anything stops early, :attr:`Trace.notes` says what was not read, and
the timeline, the JSON (``incomplete``) and the console show it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from cdchub.dead_letter_admin import dlq_topics
from cdchub.related import RELATIONS, RelatedDocument, related_documents
from cdchub.topic_reads import Message, Position, Reads, fetch, scan
from connectors.common.avro import AvroDecoder, registry_client
from connectors.settings import Settings
from core.ledger import history, sync_ledger

RELATION_KINDS = frozenset(r.kind for r in RELATIONS)
#: How long a trace may read Kafka, and how many messages at most (positions, dead letters, related topics).
TRACE_DEADLINE_S = 20.0
TRACE_MAX_MESSAGES = 200_000


@dataclass
class Hop:
    at_ms: int
    what: str
    system: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    term: str
    documents: list[dict[str, Any]]
    hops: list[Hop]
    related: list[dict[str, Any]] = field(default_factory=list)
    #: What the trace did not read (a deadline or budget reached, a position no longer on its topic); empty when
    #: the trace is whole.
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"term": self.term, "documents": self.documents, "hops": [asdict(h) for h in self.hops],
                           "related": self.related, "incomplete": self.notes},
                          ensure_ascii=False, indent=2, default=str)

    def timeline(self) -> str:
        if not self.documents and not self.hops:
            return f"nothing found for {self.term!r}" + "".join(f"\nincomplete: {n}" for n in self.notes)
        lines = [f"trace of {self.term!r}: " + (", ".join(
            f"{d['flow']} {d['source_key']} ({d.get('source_number') or '-'}) → {d['target_system']} "
            f"{d.get('target_id') or '-'} [{d['status']}]" for d in self.documents) or "no target write")]
        for hop in self.hops:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(hop.at_ms / 1000)) + f".{hop.at_ms % 1000:03d}"
            extra = "  ".join(f"{k}={v}" for k, v in hop.detail.items() if v not in (None, ""))
            lines.append(f"{when}  {hop.system:<8} {hop.what:<28} {extra}")
        if self.related:
            lines.append("related:")
            lines += [f"  {d['kind']:<24} {d.get('number') or '-':<20} key {d['key']}  ({d['op']})"
                      + "".join(f"\n      {s}" for s in (d.get("detail") or {}).get("sync") or [])
                      for d in self.related]
        lines += [f"incomplete: {n}" for n in self.notes]
        return "\n".join(lines)


def _display_name(env: dict[str, Any]) -> str | None:
    """The document's name as captured: a Kingdee row's FNAME (or its first language row's), a CRM record's name."""
    row = env.get("after") or env.get("before")
    if isinstance(row, dict):
        texts = row.get("texts") or [{}]
        name = row.get("FNAME") or (texts[0].get("FNAME") if isinstance(texts[0], dict) else None)
        if name:
            return str(name)
    number = (env.get("source") or {}).get("number")
    return str(number) if number else None


def _captured(decoder: AvroDecoder, msg: Message, key: str) -> tuple[Hop, dict[str, Any] | None]:
    """The hop of one captured version (read at its recorded position), and its envelope (None: a tombstone)."""
    where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
    other = msg.key.decode("utf-8", "replace") if msg.key is not None else None
    shown_key = other if other != key else None  # a write made from another document's message says whose
    if msg.value is None:
        return Hop(0, "tombstone", "kafka", {"topic": where, "key": shown_key}), None
    env = decoder.decode(msg.value)
    src = env["source"]
    commit = src.get("commit_time")
    at = int(commit.timestamp() * 1000) if hasattr(commit, "timestamp") else int(commit or 0)
    return Hop(at, f"captured ({env['op']})", src.get("system", "?"), {
        "table": src.get("table") or src.get("module"), "lsn": src.get("lsn"), "version": src.get("version"),
        "tx": src.get("tx_id"), "snapshot": src.get("snapshot"), "topic": where, "key": shown_key,
        "by": env.get("modified_by_name"), "name": _display_name(env)}), env


def _captured_versions(settings: Settings, wanted: dict[Position, str],
                       reads: Reads) -> tuple[list[Hop], dict[tuple[str, str], dict[str, Any]]]:
    """The versions at the recorded positions (position → the source key whose write recorded it), and the newest
    envelope per (topic, key)."""
    fetched = fetch(settings, wanted, reads)
    gone = sorted(p for p, m in fetched.items() if m is None)
    if gone:
        reads.notes.append(f"{len(gone)} recorded version(s) no longer on their topic (compacted or past retention): "
                           + ", ".join(f"{t}[{p}]@{o}" for t, p, o in gone[:5]) + (" …" if len(gone) > 5 else ""))
    decoder = AvroDecoder(registry_client(settings.registry))
    hops: list[Hop] = []
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for position in sorted(p for p, m in fetched.items() if m is not None):
        msg = fetched[position]
        assert msg is not None
        hop, env = _captured(decoder, msg, wanted[position])
        hops.append(hop)
        if env is not None:
            newest[(msg.topic, wanted[position])] = env
    return hops, newest


def _writes(r: Any, via: str | None = None) -> list[Hop]:
    """The target write (or failure) one ledger row records (its latest; ledgers older than the history)."""
    label = f"{r.flow}: {r.status} ({r.action})" if r.applied_at_ms else f"{r.flow}: failed"
    detail = {"target_id": r.target_id, "attempts": r.attempts, "error": (r.last_error or "")[:200], "via": via}
    if r.applied_at_ms:
        detail["latency_ms"] = r.applied_at_ms - r.captured_at_ms if r.captured_at_ms else None
        return [Hop(r.applied_at_ms, label, r.target_system, detail)]
    return [Hop(r.updated_at_ms, label, r.target_system, detail)] if r.status == "failed" else []


def _written(h: Any, via: str | None = None) -> Hop:
    """One write or failure from the history."""
    label = f"{h.flow}: {h.status} ({h.action})" if h.status == "synced" else f"{h.flow}: failed"
    detail = {"target_id": h.target_id, "version": h.source_version, "attempts": h.attempts,
              "error": (h.error or "")[:200], "via": via,
              "latency_ms": h.at_ms - h.captured_at_ms if h.captured_at_ms and h.status == "synced" else None}
    return Hop(h.at_ms, label, h.target_system, detail)


def _all_writes(engine: Engine, rows: list[Any], via: bool = False) -> list[Hop]:
    """Every write of these ledger rows' documents from the history; a row with no history shows its latest."""
    past = history(engine, [r.source_key for r in rows])
    hops: list[Hop] = []
    for r in rows:
        mine = [h for h in past if (h.flow, h.source_key, h.target_system) == (r.flow, r.source_key, r.target_system)]
        hops += [_written(h, r.source_key if via else None) for h in mine] or _writes(r, r.source_key if via else None)
    return hops


def _related_writes(settings: Settings, engine: Engine, found: list[RelatedDocument]) -> list[Hop]:
    """What the flows did with each related document (an outbound's Deliveries record, a receipt's Payment): its
    ``sync`` in the related list (written, dead-lettered, or not written) and its writes in the timeline."""
    t = sync_ledger.c
    hops: list[Hop] = []
    for doc in found:
        with engine.connect() as conn:
            rows = conn.execute(select(sync_ledger).where(
                t.source_key == doc.key, t.kafka_topic == settings.kafka.topic(doc.topic))).all()
        doc.detail["sync"] = [f"{r.flow} → {r.target_system} {r.target_id or '-'}: "
                              + ("written" if r.status == "synced" else f"dead-lettered ({(r.last_error or '')[:120]})")
                              for r in rows] or ["not written"]
        doc.detail["writes"] = [{"flow": r.flow, "target_system": r.target_system, "target_id": r.target_id,
                                 "status": r.status} for r in rows]
        hops += _all_writes(engine, list(rows), via=True)
    return hops


def _dead_letters(settings: Settings, reads: Reads, keys: set[str],
                  related_keys: set[tuple[str, str]]) -> tuple[list[Hop], dict[Position, str]]:
    """The dead letters naming these keys (scanned: a letter may name a record no ledger row knows), and the
    positions of the messages they were made of."""
    hops: list[Hop] = []
    positions: dict[Position, str] = {}
    for msg in scan(settings, dlq_topics(settings), reads, "dead letters"):
        try:
            body = json.loads(msg.value or b"")
        except ValueError:
            continue
        source = body.get("source") or {}
        key = str(source.get("key"))
        if key not in keys and (source.get("topic"), key) not in related_keys:
            continue
        flow = str(body.get("flow"))
        hops.append(Hop(int(body.get("time_ms") or 0), f"dead letter ({flow})", "cdchub", {
            "stage": body.get("stage"), "error": str(body.get("error"))[:200], "flow": flow, "key": key}))
        if key in keys and source.get("topic") and source.get("offset") is not None:
            positions[(str(source["topic"]), int(source.get("partition") or 0), int(source["offset"]))] = key
    return hops, positions


def trace(settings: Settings, engine: Engine, term: str, *, deadline_s: float = TRACE_DEADLINE_S,
          max_messages: int = TRACE_MAX_MESSAGES) -> Trace:
    t = sync_ledger.c
    reads = Reads.within(deadline_s, max_messages)
    with engine.connect() as conn:
        rows = conn.execute(select(sync_ledger).where(
            or_(t.source_key == term, t.source_number == term, t.target_id == term))).all()
    documents = [{k: v for k, v in r._mapping.items()} for r in rows]
    keys = {r.source_key for r in rows}
    # the position of every version the ledger knows: the rows' newest and each write, failure and coalesced
    # version of the history
    wanted: dict[Position, str] = {}
    for h in [*rows, *history(engine, keys)]:
        if h.kafka_topic and h.kafka_offset is not None:
            wanted[(h.kafka_topic, int(h.kafka_partition or 0), int(h.kafka_offset))] = h.source_key
    hops, newest = _captured_versions(settings, wanted, reads)
    related: list[dict[str, Any]] = []
    links: set[str] = set()
    for (topic, key), env in sorted(newest.items(), key=lambda item: item[0]):
        number = next((r.source_number for r in rows if (r.kafka_topic, r.source_key) == (topic, key)), None)
        bare = topic.removeprefix(settings.kafka.topic_prefix)
        found, linked = related_documents(settings, bare, key, number, env, reads)
        hops += _related_writes(settings, engine, found)
        related += [asdict(d) for d in found]
        links.update(linked)
    hops += _all_writes(engine, list(rows))
    # one step further through the ledger: what a write created is the source of other flows' writes (a campaign's
    # OA request and that request's write-backs), and ledger links (an expense report's campaign cost)
    links |= {r.target_id for r in rows if r.target_id}
    links -= keys
    if links:
        with engine.connect() as conn:
            linked_rows = conn.execute(select(sync_ledger).where(t.source_key.in_(sorted(links)))).all()
        for r in linked_rows:
            related.append({"kind": f"{r.flow} record", "topic": r.kafka_topic, "key": r.source_key,
                            "number": r.source_number, "op": r.status,
                            "detail": {"target_system": r.target_system, "target_id": r.target_id}})
        hops += _all_writes(engine, list(linked_rows), via=True)
    related_keys = {(settings.kafka.topic(d["topic"]), d["key"]) for d in related if d["kind"] in RELATION_KINDS}
    letters, letter_positions = _dead_letters(settings, reads, keys | {term}, related_keys)
    hops += letters
    unseen = {p: k for p, k in letter_positions.items() if p not in wanted}
    if unseen:  # the versions that were dead-lettered before any write recorded them
        more, _ = _captured_versions(settings, unseen, reads)
        hops += more
    hops.sort(key=lambda h: h.at_ms)
    return Trace(term, documents, hops, related, reads.notes)
