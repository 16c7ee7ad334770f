"""The shape of every "CRM edits → Kingdee" flow, driven by the same mapping file as the forward direction.

    zoho.<module> ─► decode ─► drop our own writes ─► CRM-owned and shared fields ─► KingdeeSaveSink
                       └─────────────────┴───────────────┴─► cdchub.dlq.<flow>

Only records that carry the mapping's external key (they came from Kingdee) are edited in Kingdee; a record
created in the CRM has none and is not propagated by this flow.  A CRM deletion is not propagated either (master
data lives in Kingdee; retire it there): it is reported on the dead-letter topic so someone sees it, and the next
change in Kingdee brings the record back to the CRM.
"""

from __future__ import annotations

import json

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from cdchub.settings import Settings
from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from connectors.kingdee.sink import KingdeeSaveSink
from connectors.zoho.source import zoho_topic
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.mapping import Mapping, MappingError, fingerprint


class NotPropagated(Exception):
    """A change this flow deliberately does not carry to Kingdee (reported, not an error of the data)."""


def to_kingdee_command(flow_name: str, mapping: Mapping, event: DocumentEvent) -> SyncCommand | DeadLetter | None:
    env = event.envelope
    if env.get("by_integration"):
        return None  # our own write to the CRM, coming back: never a new change
    where = dict(key=event.key, topic=event.position.topic, partition=event.position.partition,
                 offset=event.position.offset)
    if env["op"] == "d":
        return DeadLetter.of(flow_name, "policy", NotPropagated(
            f"{mapping.module} {event.key} was deleted in the CRM by {env.get('modified_by_name')}; master data is "
            f"not deleted in Kingdee — disable it there, or the next Kingdee change re-creates it"), **where)
    record = json.loads(env["record"])
    kingdee_id = record.get(mapping.external_key)
    if not kingdee_id:
        return None  # created in the CRM: not a Kingdee record to edit
    try:
        fields = mapping.crm_fields(record)
    except MappingError as exc:
        return DeadLetter.of(flow_name, "map", exc, record=record, **where)
    if not fields:
        return None
    return SyncCommand(
        flow=flow_name, key=event.key, number=env["source"].get("number"), version=event.version,
        record={mapping.external_key: kingdee_id, **fields}, fingerprint=fingerprint(fields),
        captured_at_ms=event.version, position=event.position, entity=f"{mapping.name}:{kingdee_id}",
    )


def build_crm_to_kingdee(flow_name: str, settings: Settings, mapping: Mapping) -> Dataflow:
    flow = Dataflow(flow_name)
    events, read_dead = read_documents(flow, flow_name, settings, zoho_topic(mapping.module), "zoho.record")
    mapped = op.filter_map("map", events, lambda e: to_kingdee_command(flow_name, mapping, e))
    split = op.branch("mapped_ok", mapped, lambda x: isinstance(x, SyncCommand))
    commands: Stream[SyncCommand] = split.trues  # type: ignore[assignment]
    op.output(f"kingdee_{(mapping.kingdee_form or '').lower()}", commands, KingdeeSaveSink(settings, flow_name,
                                                                                          mapping))
    write_dead_letters(flow_name, settings, op.merge("all_dead_letters", read_dead, split.falses))
    return flow
