"""Sales orders: Kingdee 销售订单 (audited) → ZOHO CRM Sales_Orders, declared in ``flows/mappings/sales_orders.toml``.

    kingdee.sales_order ─► decode ─► map ─► await references (keyed state) ─► SalesOrderSink (upsert on
          │                            │        │ (account, products:             Kingdee_Order_ID, line ids kept)
          └────────────────────────────┴────────┴─► cdchub.dlq.sales_orders      id map)

The order's account and products are CRM lookups; their CRM ids come from the id map (the ledgers of the
``customers`` and ``materials`` flows).  A reference not synced yet is transient: the order waits in keyed Bytewax
state (so it survives a crash) and is tried again with capped exponential backoff; only the newest version of an
order waits.  After ``CDCHUB_REFERENCE_WAIT_S`` (default 5 minutes) it is dead-lettered naming what is missing
(customer / material number).  A version the ledger already holds (a replay) does not wait: it is dropped at once.

Status letters (document, close, cancel) become one ``Kingdee_Status`` through a code table in the mapping; an
unknown letter is dead-lettered naming it.  A deleted order is marked (``Deleted_In_Kingdee``), never removed.
CRM line item ids are kept across updates (rows matched by ``Kingdee_Entry_ID``) so deliveries can point at them.
An order placed in the CRM (created in Kingdee by ``crm_orders_to_kingdee``, whose ledger links the two) is the same
CRM record: Kingdee's audit updates it in place, and fields declared ``on_create`` (the subject) stay the rep's.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.operators import StatefulBatchLogic

from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.delivery import deliver
from connectors.common.kafka import producer
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.settings import Settings, get_settings
from connectors.zoho.client import ZohoClient
from connectors.zoho.sink import ZohoUpsertPartition, ZohoUpsertSink
from core.errors import PermanentError
from core.id_map import IdMap
from core.ledger import LedgerEntry, SyncLedger, open_engine
from core.mapping import Mapping, MappingError, Ref, fingerprint, refs_in, resolve_refs
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.specs import load_mapping
from flows.waiting import ReferenceWait

FLOW = "sales_orders"
#: The flow that creates Kingdee orders from orders placed in the CRM (``flows/crm_orders_to_kingdee.py``).
PLACED_FROM = "crm_orders_to_kingdee"
log = logging.getLogger(__name__)


def to_draft(flow_name: str, mapping: Mapping, event: DocumentEvent) -> SyncCommand | DeadLetter | None:
    """The CRM write an order change asks for, with references still unresolved (:class:`Ref` values); a dead
    letter naming what is wrong; or None (an order never audited)."""
    env = event.envelope
    if env["op"] == "d":
        record = mapping.deleted_target(event.key)
    else:
        doc = env["after"]
        try:
            if mapping.status is not None:
                mapping.status.value(doc)  # an unknown status letter is named even if it keeps the order out
            if not mapping.applies_to(doc):
                return None
            record = mapping.to_target(doc)
        except MappingError as exc:
            return DeadLetter.of(flow_name, "map", exc, record=doc, key=event.key, topic=event.position.topic,
                                 partition=event.position.partition, offset=event.position.offset)
    return SyncCommand(
        flow=flow_name, key=event.key, number=env["source"].get("number"), version=event.version, record=record,
        fingerprint="", captured_at_ms=event.commit_ms, position=event.position, deleted=env["op"] == "d",
    )


@dataclass(frozen=True)
class Unresolved:
    """An order whose references did not reach the CRM in time: the sink dead-letters it (and records it)."""

    command: SyncCommand
    missing: tuple[Ref, ...]
    waited_s: float
    attempts: int

    @property
    def key(self) -> str:
        return self.command.key

    @property
    def version(self) -> int:
        return self.command.version

    @property
    def flow(self) -> str:
        return self.command.flow

    def error(self) -> PermanentError:
        names = "; ".join(r.describe() for r in self.missing)
        return PermanentError(f"order {self.command.number or self.command.key}: not in the CRM after "
                              f"{self.waited_s:.0f} s: {names}", code="REFERENCE_MISSING")


class Resolver:
    """Looks references up in the id map and the order's own ledger; opened lazily in the worker."""

    def __init__(self, settings: Settings, flow_name: str) -> None:
        self.settings = settings
        self.flow_name = flow_name
        self._id_map: IdMap | None = None
        self._ledger: SyncLedger | None = None

    def _open(self) -> tuple[IdMap, SyncLedger]:
        if self._id_map is None or self._ledger is None:
            engine = open_engine(self.settings.ledger_database_url())
            self._id_map, self._ledger = IdMap(engine), SyncLedger(engine, self.flow_name, "zoho")
        return self._id_map, self._ledger

    def already_done(self, cmd: SyncCommand) -> bool:
        """The ledger holds this version or a newer one (applied or dead-lettered): a replay, nothing to do."""
        _, ledger = self._open()
        entry: LedgerEntry | None = ledger.entries([cmd.key]).get(cmd.key)
        return entry is not None and entry.source_version >= cmd.version

    def resolve(self, cmd: SyncCommand) -> tuple[SyncCommand | None, list[Ref]]:
        """The command with lookups filled in and its fingerprint, or None and the references still missing."""
        refs = refs_in(cmd.record)
        target_ids: dict[tuple[str, str], str] = {}
        if refs:
            id_map, _ = self._open()
            by_flow: dict[str, list[str]] = {}
            for ref in refs:
                by_flow.setdefault(ref.flow, []).append(ref.key)
            for flow, keys in by_flow.items():
                target_ids.update({(flow, k): v for k, v in id_map.targets(flow, keys).items()})
        record, missing = resolve_refs(cmd.record, target_ids)
        if missing:
            return None, missing
        return dataclasses.replace(cmd, record=record, fingerprint=fingerprint(record)), []


class AwaitReferences(StatefulBatchLogic[SyncCommand, "SyncCommand | Unresolved", dict[str, Any]]):
    """Per order: the newest version waiting for its references, since when, and when to look again."""

    def __init__(self, resolver: Resolver, wait_s: float, resume: dict[str, Any] | None,
                 clock: Any = time.time) -> None:
        self.resolver = resolver
        self.wait_s = wait_s
        self.clock = clock
        state = resume or {}
        self.pending: SyncCommand | None = state.get("pending")
        self.wait: ReferenceWait = state.get("wait") or ReferenceWait()
        self.next_at: float = state.get("next_at", 0.0)

    def on_batch(self, values: list[SyncCommand]) -> tuple[list[SyncCommand | Unresolved], bool]:
        newest = max(values, key=lambda c: c.version)
        if self.pending is None:
            self.wait.clear()
        elif newest.version < self.pending.version:
            newest = self.pending  # an older version arriving late never replaces a newer one
        self.pending = newest
        return self._try()

    def on_notify(self) -> tuple[list[SyncCommand | Unresolved], bool]:
        return self._try()

    def on_eof(self) -> tuple[list[SyncCommand | Unresolved], bool]:
        return [], self.pending is None

    def notify_at(self) -> datetime | None:
        return datetime.fromtimestamp(self.next_at, UTC) if self.pending is not None else None

    def snapshot(self) -> dict[str, Any]:
        return {"pending": self.pending, "wait": ReferenceWait(self.wait.since, self.wait.attempts),
                "next_at": self.next_at}

    def _try(self) -> tuple[list[SyncCommand | Unresolved], bool]:
        cmd = self.pending
        if cmd is None:
            return [], StatefulBatchLogic.DISCARD
        if self.resolver.already_done(cmd):
            return [], StatefulBatchLogic.DISCARD
        resolved, missing = self.resolver.resolve(cmd)
        if resolved is not None:
            return [resolved], StatefulBatchLogic.DISCARD
        now = self.clock()
        look_again = self.wait.miss(now, self.wait_s)
        if look_again is None:
            return [Unresolved(cmd, tuple(missing), self.wait.waited(now), self.wait.attempts)], \
                StatefulBatchLogic.DISCARD
        if self.wait.attempts == 1:
            log.info("order %s waits for %s", cmd.number or cmd.key, "; ".join(r.describe() for r in missing))
        self.next_at = look_again
        return [], StatefulBatchLogic.RETAIN


class SalesOrderPartition(ZohoUpsertPartition):
    """Upserts orders; dead-letters orders whose references never arrived; keeps CRM line item ids stable."""

    def __init__(self, *args: Any, lines_field: str | None, line_key: str,
                 create_only: frozenset[str] = frozenset(), placed_from: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines_field = lines_field
        self.line_key = line_key
        self.create_only = create_only
        #: The flow that creates Kingdee documents from CRM records (its ledger links the two), if any.
        self.placed_from = placed_from

    def write_batch(self, items: list[SyncCommand]) -> None:
        unresolved = [i for i in items if isinstance(i, Unresolved)]
        commands = [i for i in items if not isinstance(i, Unresolved)]
        if unresolved:
            entries = self.ledger.entries(u.command.key for u in unresolved)
            for u in unresolved:
                entry = entries.get(u.command.key)
                if entry is not None and entry.source_version >= u.command.version:
                    continue
                self.dead_letter(u.command, self.unresolved_error(u), u.attempts, stage="resolve")
        if commands:
            super().write_batch(commands)
        else:
            self.flush_dead_letters()

    def unresolved_error(self, u: Unresolved) -> Exception:
        """Why a command whose references never reached the CRM is dead-lettered."""
        return u.error()

    def crm_records(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> dict[str, str]:
        """The CRM record each command's document already has: the one this flow wrote, else the CRM record the
        document was placed from (an order a sales rep entered in the CRM, created in Kingdee by ``placed_from``)."""
        known = {k: e.target_id for k, e in entries.items() if e.target_id}
        unknown = [p.command.key for p in planned if p.command.key not in known]
        if unknown and self.placed_from is not None:
            known.update(IdMap(self.ledger.engine, "kingdee").sources(self.placed_from, unknown))
        return known

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        ready: list[Planned] = []
        existing = self.crm_records(planned, entries)
        for p in planned:
            target_id = existing.get(p.command.key)
            if target_id:  # the record exists: fields its users own from then on are left to them
                for name in self.create_only:
                    p.write.pop(name, None)
            if (self.lines_field is not None and target_id
                    and isinstance(p.write.get(self.lines_field), list)):
                try:
                    self._keep_line_ids(p, target_id)
                except Exception as exc:  # transient, in the runtime: written later, with the ids
                    self.defer(p.command, exc)
                    continue
            ready.append(p)
        super().write(ready, entries)

    def _keep_line_ids(self, p: Planned, target_id: str) -> None:
        """Rows of an order already in the CRM are sent with their CRM row ids (matched on the Kingdee entry id),
        so an update edits them instead of replacing them; rows not sent are removed, rows without an id added.
        A transient failure to read them propagates (the runtime writes the order later)."""
        assert self.lines_field is not None
        try:
            current, _ = self.try_call(lambda: self.client.get(self.module, target_id),
                                       f"ZOHO get {self.module} {target_id}")
        except PermanentError as exc:  # without the ids the rows are replaced: still correct, only new row ids
            log.warning("could not read %s %s for its line ids: %s", self.module, target_id, exc)
            return
        rows = (current or {}).get(self.lines_field) or []
        ids = {str(r.get(self.line_key)): str(r["id"]) for r in rows if r.get(self.line_key) and r.get("id")}
        p.write[self.lines_field] = [
            {"id": ids[str(row.get(self.line_key))], **row} if str(row.get(self.line_key)) in ids else row
            for row in p.write[self.lines_field]
        ]


class SalesOrderSink(ZohoUpsertSink):
    def __init__(self, settings: Settings, flow: str, mapping: Mapping) -> None:
        super().__init__(settings, flow, mapping.module, mapping.external_key, match_also=mapping.match_also)
        self.lines_field = mapping.lines.target if mapping.lines else None
        self.create_only = mapping.create_only_fields

    def build(self, step_id: str, worker_index: int, worker_count: int) -> SalesOrderPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return SalesOrderPartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, self.flow, "zoho"),
            producer(self.settings.kafka), self.flow, self.module, self.external_key, self.policy,
            self.settings.kafka.topic(dlq_topic(self.flow)), None, self.match_also,
            lines_field=self.lines_field, line_key="Kingdee_Entry_ID", create_only=self.create_only,
            placed_from=PLACED_FROM,
        )


def build_flow(settings: Settings | None = None, mapping: Mapping | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    mapping = mapping or load_mapping(FLOW)
    assert mapping.source_topic is not None
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, mapping.source_topic)
    mapped = op.filter_map("map", events, lambda e: to_draft(FLOW, mapping, e))
    split = op.branch("mapped_ok", mapped, lambda x: isinstance(x, SyncCommand))
    drafts: Stream[SyncCommand] = split.trues  # type: ignore[assignment]
    keyed = op.key_on("by_order", drafts, lambda c: c.key)
    resolver = Resolver(settings, FLOW)
    awaited = op.stateful_batch("await_references", keyed,
                                lambda resume: AwaitReferences(resolver, settings.reference_wait_s, resume))
    out: Stream[Any] = op.map("unkey", awaited, lambda kv: kv[1])
    deliver("zoho_sales_orders", out, SalesOrderSink(settings, FLOW, mapping))
    write_dead_letters(FLOW, settings, op.merge("all_dead_letters", read_dead, split.falses))
    return flow
