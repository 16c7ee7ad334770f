"""The shape every one-way "Kingdee document → CRM module" flow shares, driven by its mapping file.

    kingdee.<document> ─► decode ─► map (flows/mappings/<flow>.toml) ─► ZohoUpsertSink (upsert on the external key)
                            └──────────────┴─► cdchub.dlq.<flow>

Documents not matching the mapping's ``only_when`` are not sent; a deleted document is marked in the CRM with the
mapping's ``on_delete`` fields, never removed.  The sink is idempotent through the sync ledger, so Bytewax recovery
(which replays input after the last snapshot) and topic replays cause no duplicate writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from connectors.common.dead_letters import DeadLetter
from connectors.common.delivery import deliver
from connectors.common.sync import SyncCommand
from connectors.settings import Settings
from connectors.zoho.sink import ZohoUpsertSink
from core.china_time import CHINA_TIME
from core.mapping import Mapping, MappingError, fingerprint
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters


def to_command(flow_name: str, mapping: Mapping, event: DocumentEvent) -> SyncCommand | DeadLetter | None:
    """The CRM write a document change asks for, a dead letter naming what is wrong, or None (nothing to do)."""
    env = event.envelope
    if env["op"] == "d":
        record = mapping.deleted_target(event.key)
    else:
        doc = env["after"]
        if not mapping.applies_to(doc):
            return None
        try:
            record = mapping.to_target(doc)
        except MappingError as exc:
            return DeadLetter.of(flow_name, "map", exc, record=doc, key=event.key, topic=event.position.topic,
                                 partition=event.position.partition, offset=event.position.offset)
    return SyncCommand(
        flow=flow_name, key=event.key, number=env["source"].get("number"), version=event.version, record=record,
        fingerprint=fingerprint(record), captured_at_ms=event.commit_ms, position=event.position,
        deleted=env["op"] == "d", entity=f"{mapping.name}:{event.key}" if mapping.two_way else None,
        source_time_ms=_changed_at(env, event),
    )


def _changed_at(env: dict[str, Any], event: DocumentEvent) -> int:
    """When the document changed: the commit time of a streamed change; for a snapshot row (read long after it
    was written) its ``FMODIFYDATE``, China wall-clock time."""
    doc = env.get("after") or {}
    modified = doc.get("FMODIFYDATE")
    if env["source"].get("snapshot") and isinstance(modified, datetime):
        return int(modified.replace(tzinfo=CHINA_TIME).timestamp() * 1000)
    return event.commit_ms


def build_kingdee_to_crm(flow_name: str, settings: Settings, mapping: Mapping,
                         *, into: Dataflow | None = None) -> Dataflow:
    if mapping.source_topic is None:
        raise ValueError(f"mapping {mapping.name} declares no [source] document")
    flow = into or Dataflow(flow_name)
    events, read_dead = read_documents(flow, flow_name, settings, mapping.source_topic)
    mapped = op.filter_map("map", events, lambda e: to_command(flow_name, mapping, e))
    split = op.branch("mapped_ok", mapped, lambda x: isinstance(x, SyncCommand))
    commands: Stream[SyncCommand] = split.trues  # type: ignore[assignment]
    shared = mapping.shared_fields if mapping.two_way else None
    deliver(f"zoho_{mapping.module.lower()}", commands,
            ZohoUpsertSink(settings, flow_name, mapping.module, mapping.external_key, shared_fields=shared,
                           match_also=mapping.match_also))
    write_dead_letters(flow_name, settings, op.merge("all_dead_letters", read_dead, split.falses))
    return flow
