"""Materials: Kingdee 物料 (audited) → ZOHO CRM Products.

    kingdee.material ─► decode ─► map (flows/mappings/materials.toml) ─► ZohoUpsertSink (upsert on Kingdee_ID)
                          └──────────────┴─► cdchub.dlq.materials

A deleted or disabled material is marked in the CRM (inactive, ``Kingdee_Deleted``), never removed.  Materials not
audited are not sent.  The sink is idempotent through the sync ledger, so Bytewax recovery (which replays input from
the last snapshot) and topic replays cause no duplicate writes.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from cdchub.settings import Settings, get_settings
from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from connectors.zoho.sink import ZohoUpsertSink
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.mapping import Mapping, MappingError, fingerprint, load_mapping

FLOW = "materials"
TOPIC = "kingdee.material"


def to_command(mapping: Mapping, event: DocumentEvent) -> SyncCommand | DeadLetter | None:
    """The CRM write a material change asks for, a dead letter naming what is wrong, or None (nothing to do)."""
    env = event.envelope
    number = env["source"].get("number")
    if env["op"] == "d":
        record = mapping.deleted_target(event.key)
        deleted = True
    else:
        doc = env["after"]
        if not mapping.applies_to(doc):
            return None
        try:
            record = mapping.to_target(doc)
        except MappingError as exc:
            return DeadLetter.of(FLOW, "map", exc, record=doc, key=event.key,
                                 topic=event.position.topic, partition=event.position.partition,
                                 offset=event.position.offset)
        deleted = False
    return SyncCommand(
        flow=FLOW, key=event.key, number=number, version=event.version, record=record,
        fingerprint=fingerprint(record), captured_at_ms=event.commit_ms, position=event.position, deleted=deleted,
    )


def build_flow(settings: Settings | None = None, mapping: Mapping | None = None) -> Dataflow:
    settings = settings or get_settings()
    mapping = mapping or load_mapping(FLOW)
    flow = Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, TOPIC)
    mapped = op.filter_map("map", events, lambda e: to_command(mapping, e))
    split = op.branch("mapped_ok", mapped, lambda x: isinstance(x, SyncCommand))
    commands: Stream[SyncCommand] = split.trues  # type: ignore[assignment]
    op.output("zoho_products", commands, ZohoUpsertSink(settings, FLOW, mapping.module, mapping.external_key))
    write_dead_letters(FLOW, settings, op.merge("all_dead_letters", read_dead, split.falses))
    return flow

