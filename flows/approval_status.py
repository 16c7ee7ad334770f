"""Approval results, Weaver OA → CRM: each request's status and opinions on the CRM record it is about; for contract
workflows, its attachments too.

    weaver.requests ─► decode ─► route by workflow id (flows/mappings/approvals.toml) ─► ApprovalWriteBack:
        campaign (101) → Campaigns record named by form field crmid      one note per log entry (opinion as text)
        contract (102) → Deals record named by form field crmdealid      + each attachment once (contracts)
        unknown workflow, no CRM id in the form ─► cdchub.dlq.approval_status
                                                                          then Approval_Status / Approval_Node /
        CRM record missing ─► cdchub.dlq.approval_status                  Weaver_Request_ID on the record

Idempotency (docs/approvals.md): the request's version is recorded in the ledger after all its writes (a replayed
or older version is skipped); each note (request + log id) and attachment (request + file id) has its own ledger
key and is looked for in the CRM before being written when the ledger does not know it (``related_once.py``), so
neither replays nor a crash between a CRM write and its ledger record make a second one.  Status fields are
written only when they differ from the record's.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.delivery import deliver
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.settings import Settings, get_settings
from connectors.weaver.client import WeaverClient
from connectors.weaver.source import TOPIC, weaver_client
from connectors.zoho.client import ZohoClient
from connectors.zoho.related_once import FileToCopy, LocalFile, NoteToWrite, Origin, RelatedOnce
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine
from core.mapping import fingerprint
from flows.approval_rules import ApprovalRules, attachment_key, load_rules, note_for, note_key, note_marker, oa_state
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters

log = logging.getLogger(__name__)
FLOW = "approval_status"


class RecordMissing(PermanentError):
    """The CRM record a request names does not exist (never did, or was deleted)."""


def to_command(rules: ApprovalRules, event: DocumentEvent) -> SyncCommand | DeadLetter:
    """What to write for one request version, or a dead letter naming why it cannot go anywhere."""
    env = event.envelope
    rid, name = str(env["request_id"]), env.get("request_name") or ""
    kind = rules.kind_of(env["workflow_id"])
    problem = None
    if kind is None:
        problem = (f"unknown workflow {env['workflow_id']} ({env.get('workflow_name') or '?'}) of request {rid} "
                   f"「{name}」; known: {', '.join(sorted(rules.workflows))}", "UnknownWorkflow")
    elif not str((env.get("form") or {}).get(kind.crm_id_field) or "").strip():
        problem = (f"request {rid} 「{name}」 has no CRM id in form field {kind.crm_id_field}", "NoCrmId")
    if problem is not None or kind is None:
        message, error_class = problem or ("", "")
        return DeadLetter(flow=FLOW, stage="route", error_class=error_class, error=message, record=env, key=rid,
                          topic=event.position.topic, partition=event.position.partition,
                          offset=event.position.offset)
    record = {
        "request_id": rid, "request_name": name, "kind": kind.name,
        "crm_id": str(env["form"][kind.crm_id_field]).strip(),
        "state": oa_state(int(env["current_node_type"]), bool(env.get("rejected"))),
        "node": env.get("current_node_name") or "",
        "log": list(env.get("log") or []), "resources": list(env.get("resources") or []),
    }
    return SyncCommand(flow=FLOW, key=rid, number=name or None, version=event.version, record=record,
                       fingerprint=fingerprint(record), captured_at_ms=event.version, position=event.position)


class ApprovalWriteBack(LedgerSinkPartition):
    target_system = "zoho"

    def __init__(self, crm: ZohoClient, weaver: WeaverClient, ledger: SyncLedger, related: RelatedOnce, dlq: object,
                 dlq_topic_name: str, rules: ApprovalRules, policy: RetryPolicy) -> None:
        super().__init__(ledger, dlq, FLOW, dlq_topic_name)  # type: ignore[arg-type]
        self.crm = crm
        self.weaver = weaver
        self.related = related
        self.rules = rules
        self.policy = policy

    def _record(self, module: str, record_id: str, request: str) -> dict[str, Any]:
        try:
            record = self.crm.get(module, record_id)
        except PermanentError as exc:
            if exc.code != "INVALID_DATA":
                raise
            record = None
        if record is None:
            raise RecordMissing(f"CRM {module} record {record_id} not found (named by Weaver request {request})",
                                code="RECORD_MISSING")
        return record

    def _fetch(self, item: FileToCopy, folder: Path) -> LocalFile:
        downloaded = self.weaver.download(item.download_url, folder)
        return LocalFile(downloaded.path, downloaded.name, downloaded.content_type)

    def _apply(self, cmd: SyncCommand) -> tuple[str, str]:
        r = cmd.record
        kind = self.rules.kinds[r["kind"]]
        rid = r["request_id"]
        record = self._record(kind.module, r["crm_id"], f"{rid} 「{r['request_name']}」")
        origin = Origin(cmd.version, cmd.number, cmd.position, cmd.captured_at_ms)
        notes = []
        for entry in r["log"]:
            if str(entry.get("log_type")) in self.rules.note_log_types:
                title, content = note_for(self.rules, rid, r["request_name"], entry)
                log_id = str(entry["log_id"])
                notes.append(NoteToWrite(note_key(rid, log_id), note_marker(rid, log_id), title, content))
        self.related.notes(kind.module, r["crm_id"], notes, origin)
        if kind.attachments:
            files = [FileToCopy(attachment_key(rid, str(f["file_id"])), str(f["name"]), f.get("size"),
                                str(f["download_url"])) for f in r["resources"]]
            self.related.files(kind.module, r["crm_id"], files, self._fetch, origin)
        wanted = {self.rules.status_field: self.rules.status_values[r["state"]],
                  self.rules.node_field: r["node"], self.rules.request_id_field: rid}
        changes = {k: v for k, v in wanted.items() if str(record.get(k) or "") != v}
        if changes:
            self.crm.update(kind.module, [{"id": r["crm_id"], **changes}])
        return r["crm_id"], "update" if changes else "unchanged"

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        done = []
        for p in planned:
            cmd = p.command
            try:
                (target, action), attempts = self.try_call(
                    partial(self._apply, cmd), f"approval of Weaver request {cmd.key} to the CRM")
            except (GaveUp, PermanentError) as exc:
                self.dead_letter(cmd, exc, getattr(exc, "attempts", 1), stage="write_back")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(cmd, exc)
                continue
            log.info("Weaver request %s (%s) → CRM %s: %s", cmd.key, cmd.record["state"], target, action)
            done.append((p, target, action, attempts))
        self.applied(done)

    def close(self) -> None:
        super().close()
        self.crm.close()
        self.weaver.close()


class ApprovalWriteBackSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, rules: ApprovalRules, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> ApprovalWriteBack:
        engine = open_engine(self.settings.ledger_database_url())
        crm = ZohoClient(self.settings.zoho)
        related = RelatedOnce(crm, SyncLedger(engine, FLOW, "zoho_note"), SyncLedger(engine, FLOW, "zoho_attachment"),
                              self.settings.state_dir / "tmp" / FLOW)
        return ApprovalWriteBack(
            crm, weaver_client(self.settings, f"{FLOW}-{worker_index}"), SyncLedger(engine, FLOW, "zoho"), related,
            producer(self.settings.kafka), self.settings.kafka.topic(dlq_topic(FLOW)),
            self.rules, self.policy,
        )


def build_flow(settings: Settings | None = None, rules: ApprovalRules | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    rules = rules or load_rules()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, TOPIC)
    routed = op.map("route", events, partial(to_command, rules))
    split = op.branch("known_workflow", routed, lambda x: isinstance(x, SyncCommand))
    commands: Stream[SyncCommand] = split.trues  # type: ignore[assignment]
    deliver("crm_approvals", commands, ApprovalWriteBackSink(settings, rules))
    unroutable: Stream[DeadLetter] = split.falses  # type: ignore[assignment]
    write_dead_letters(FLOW, settings, op.merge("dead_letters_all", read_dead, unroutable))
    return flow
