"""The shape of every "CRM edits → Kingdee" flow, driven by the same mapping file as the forward direction.

    zoho.<module> ─► decode ─► CRM-owned and shared fields ─► KingdeeSaveSink (the guard drops our own echoes)
                       │              └─► Kingdee-owned fields a person edited ─► ZohoUpsertSink (put back)
                       └──────────────────┴─► cdchub.dlq.<flow>

Only records that carry the mapping's external key (they came from Kingdee) are edited in Kingdee; a record
created in the CRM has none and is not propagated by this flow.  A person's edit of a field Kingdee owns is put
back (the owner's value wins): the last value Kingdee sent, kept by the field clock, is written to the CRM again.
A CRM deletion is not propagated (master data lives in Kingdee; retire it there): it is reported on the
dead-letter topic so someone sees it, and the next change in Kingdee brings the record back to the CRM.

Our own writes coming back are not dropped by who modified the record last: a poll sees only the last modifier, so
a person's edit followed by one of ours before the next poll would be lost (found by ``make chaos``).  The field
clock tells them apart field by field: a value the clock already knows is an echo, any other is a person's.
"""

from __future__ import annotations

import json
import logging

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from connectors.common.dead_letters import DeadLetter
from connectors.common.delivery import deliver
from connectors.common.sync import SyncCommand
from connectors.kingdee.sink import KingdeeSaveSink
from connectors.settings import Settings
from connectors.zoho.sink import ZohoUpsertSink
from connectors.zoho.source import zoho_topic
from core.field_clock import FieldClock, value_fingerprint
from core.ledger import open_engine
from core.mapping import Mapping, MappingError, fingerprint
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters

log = logging.getLogger(__name__)


class NotPropagated(Exception):
    """A change this flow deliberately does not carry to Kingdee (reported, not an error of the data)."""


def to_kingdee_command(flow_name: str, mapping: Mapping, event: DocumentEvent) -> SyncCommand | DeadLetter | None:
    env = event.envelope
    # A record cdchub's CRM user wrote last still goes on: a person may have changed other fields of it between two
    # polls, and the poll sees only its last modifier.  The guard drops what the field clock knows the target
    # already has — our own write coming back — and keeps what a person changed.
    if env.get("by_integration") and env["op"] == "d":
        return None
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
    if any(record.get(name) == value for name, value in mapping.on_delete.items() if value is True):
        if env.get("by_integration"):
            return None  # our own mark of a Kingdee deletion, coming back
        return DeadLetter.of(flow_name, "policy", NotPropagated(
            f"{mapping.module} {event.key} was edited in the CRM by {env.get('modified_by_name')}, but its Kingdee "
            f"record {kingdee_id} was deleted: the edit is not saved anywhere"), **where)
    try:
        fields = mapping.crm_fields(record)
    except MappingError as exc:
        return DeadLetter.of(flow_name, "map", exc, record=record, **where)
    if env.get("by_integration"):
        # our own insert or update coming back carries the fields we never set as empty: not a person's change
        # (a person who *cleared* a field just before one of our writes is the one edit this cannot see)
        fields = {name: value for name, value in fields.items() if value not in (None, "")}
    if not fields:
        return None
    return SyncCommand(
        flow=flow_name, key=event.key, number=env["source"].get("number"), version=event.version,
        record={mapping.external_key: kingdee_id, **fields}, fingerprint=fingerprint(fields),
        captured_at_ms=event.version, position=event.position, entity=f"{mapping.name}:{kingdee_id}",
    )


class OwnerRestorer:
    """For a person's CRM edit: the Kingdee-owned fields whose CRM value differs from what Kingdee last sent."""

    def __init__(self, settings: Settings, flow_name: str, mapping: Mapping) -> None:
        self.settings = settings
        self.flow_name = flow_name
        self.mapping = mapping
        self._clock: FieldClock | None = None

    def __call__(self, event: DocumentEvent) -> SyncCommand | None:
        env = event.envelope
        if env["op"] == "d" or not env.get("record"):
            return None  # (a record cdchub wrote last is looked at too: a person may have edited it before that)
        record = json.loads(env["record"])
        kingdee_id = record.get(self.mapping.external_key)
        owned = self.mapping.kingdee_owned(record) if kingdee_id else {}
        if not owned:
            return None
        if self._clock is None:
            self._clock = FieldClock(open_engine(self.settings.ledger_database_url()))
        entity = f"{self.mapping.name}:{kingdee_id}"
        known = self._clock.known([entity])[entity]
        restore = {name: known[name].value for name, value in owned.items()
                   if name in known and known[name].side == "kingdee"
                   and known[name].fingerprint != value_fingerprint(value)}
        if not restore:
            return None
        log.warning("%s %s: %s owned by Kingdee were edited in the CRM; putting Kingdee's values back",
                    self.mapping.module, event.key, sorted(restore))
        body = {self.mapping.external_key: kingdee_id, **restore}
        return SyncCommand(flow=f"{self.flow_name}_owner", key=event.key, number=env["source"].get("number"),
                           version=event.version, record=body, fingerprint=fingerprint(body),
                           captured_at_ms=event.version, position=event.position)


def build_crm_to_kingdee(flow_name: str, settings: Settings, mapping: Mapping,
                         *, into: Dataflow | None = None) -> Dataflow:
    flow = into or Dataflow(flow_name)
    events, read_dead = read_documents(flow, flow_name, settings, zoho_topic(mapping.module), "zoho.record")
    mapped = op.filter_map("map", events, lambda e: to_kingdee_command(flow_name, mapping, e))
    split = op.branch("mapped_ok", mapped, lambda x: isinstance(x, SyncCommand))
    commands: Stream[SyncCommand] = split.trues  # type: ignore[assignment]
    deliver(f"kingdee_{(mapping.kingdee_form or '').lower()}", commands,
            KingdeeSaveSink(settings, flow_name, mapping))
    restores = op.filter_map("owned_fields_edited", events, OwnerRestorer(settings, flow_name, mapping))
    deliver("restore_owned_fields", restores,
            ZohoUpsertSink(settings, f"{flow_name}_owner", mapping.module, mapping.external_key), flow=flow_name)
    write_dead_letters(flow_name, settings, op.merge("all_dead_letters", read_dead, split.falses))
    return flow
