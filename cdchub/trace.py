"""``cdchub trace <number or id>``: a document's journey across systems, from the ledger and the topics.

Given a business number (material code, bill number, CRM display name), a source id or a target id, it finds the
ledger rows that name it, then for each: every captured version of the document on its topic (source system,
position, commit time, operation), each write the flows made (target system and id, action, attempts, error,
latency from the source commit), and any dead letters for it — as a timeline, or as JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine

from cdchub.dead_letter_admin import dlq_topics, letters, read_topic
from cdchub.ledger import history, sync_ledger
from cdchub.related import RELATIONS, RelatedDocument, related_documents
from cdchub.settings import Settings
from connectors.common.avro import AvroDecoder, registry_client

RELATION_KINDS = frozenset(r.kind for r in RELATIONS)


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

    def to_json(self) -> str:
        return json.dumps({"term": self.term, "documents": self.documents, "hops": [asdict(h) for h in self.hops],
                           "related": self.related}, ensure_ascii=False, indent=2, default=str)

    def timeline(self) -> str:
        if not self.documents and not self.hops:
            return f"nothing found for {self.term!r}"
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


def _captured_versions(settings: Settings, topic: str, key: str) -> tuple[list[Hop], dict[str, Any] | None]:
    """Every captured version of one document on its topic, and the newest (None if the last was a tombstone)."""
    decoder = AvroDecoder(registry_client(settings.registry.url))
    hops = []
    newest: dict[str, Any] | None = None
    for partition, offset, msg_key, value in read_topic(settings, topic):
        if msg_key is None or msg_key.decode("utf-8", "replace") != key:
            continue
        if value is None:
            hops.append(Hop(0, "tombstone", "kafka", {"topic": topic, "offset": offset}))
            continue
        env = newest = decoder.decode(value)
        src = env["source"]
        commit = src.get("commit_time")
        at = int(commit.timestamp() * 1000) if hasattr(commit, "timestamp") else int(commit or 0)
        hops.append(Hop(at, f"captured ({env['op']})", src.get("system", "?"), {
            "table": src.get("table") or src.get("module"), "lsn": src.get("lsn"), "version": src.get("version"),
            "tx": src.get("tx_id"), "snapshot": src.get("snapshot"), "topic": f"{topic}[{partition}]@{offset}",
            "by": env.get("modified_by_name"), "name": _display_name(env)}))
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
        hops += _all_writes(engine, list(rows), via=True)
    return hops


def trace(settings: Settings, engine: Engine, term: str) -> Trace:
    t = sync_ledger.c
    with engine.connect() as conn:
        rows = conn.execute(select(sync_ledger).where(
            or_(t.source_key == term, t.source_number == term, t.target_id == term))).all()
    documents = [{k: v for k, v in r._mapping.items()} for r in rows]
    hops: list[Hop] = []
    related: list[dict[str, Any]] = []
    links: set[str] = set()
    seen_topics: set[tuple[str, str]] = set()
    for r in rows:
        topic = r.kafka_topic
        if topic and (topic, r.source_key) not in seen_topics:
            seen_topics.add((topic, r.source_key))
            versions, newest = _captured_versions(settings, topic, r.source_key)
            hops += versions
            bare = topic.removeprefix(settings.kafka.topic_prefix)
            found, linked = related_documents(settings, bare, r.source_key, r.source_number, newest)
            hops += _related_writes(settings, engine, found)
            related += [asdict(d) for d in found]
            links.update(linked)
    hops += _all_writes(engine, list(rows))
    # one step further through the ledger: what a write created is the source of other flows' writes (a campaign's
    # OA request and that request's write-backs), and ledger links (an expense report's campaign cost)
    links |= {r.target_id for r in rows if r.target_id}
    links -= {r.source_key for r in rows}
    if links:
        with engine.connect() as conn:
            linked_rows = conn.execute(select(sync_ledger).where(t.source_key.in_(sorted(links)))).all()
        for r in linked_rows:
            related.append({"kind": f"{r.flow} record", "topic": r.kafka_topic, "key": r.source_key,
                            "number": r.source_number, "op": r.status,
                            "detail": {"target_system": r.target_system, "target_id": r.target_id}})
        hops += _all_writes(engine, list(linked_rows), via=True)
    keys = {r.source_key for r in rows} | {term}
    related_keys = {(settings.kafka.topic(d["topic"]), d["key"]) for d in related if d["kind"] in RELATION_KINDS}
    if dlq_topics(settings):
        for letter in letters(settings):
            source = letter.source
            if str(source.get("key")) in keys or (source.get("topic"), str(source.get("key"))) in related_keys:
                hops.append(Hop(int(letter.body.get("time_ms") or 0), f"dead letter ({letter.flow})", "cdchub", {
                    "stage": letter.body.get("stage"), "error": str(letter.body.get("error"))[:200]}))
    hops.sort(key=lambda h: h.at_ms)
    return Trace(term, documents, hops, related)
