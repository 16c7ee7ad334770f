"""ZohoUpsertSink: idempotent upserts of target records into one ZOHO CRM module.

Delivery guarantee and ledger rules: see ``connectors/common/ledger_sink.py``.  Upserts match on the mapping's
external key (a unique custom field), so a repeated write updates the same record.  At most 100 records per call
(ZOHO's limit).  Transient failures (429, 5xx, timeouts) are retried with backoff (``connectors.common.retry``);
per-record errors and retries exhausted are dead-lettered with ZOHO's code and message.
For two-way master data a guard narrows each write to the fields that must change (no echoes; conflicts by field
ownership, else last writer wins), looking at the CRM record when a person may have changed it meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bytewax.outputs import DynamicSink

from cdchub.field_clock import FieldClock
from cdchub.ledger import LedgerEntry, SyncLedger, open_engine
from cdchub.settings import Settings
from connectors.common.dead_letters import dlq_topic
from connectors.common.errors import PermanentError
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import HumanChange, Planned, TwoWayGuard
from connectors.zoho.client import MAX_RECORDS_PER_WRITE, ZohoClient
from connectors.zoho.listed import ListedRecords, list_for

log = logging.getLogger(__name__)


class ZohoUpsertPartition(LedgerSinkPartition):
    target_system = "zoho"

    def __init__(
        self, client: ZohoClient, ledger: SyncLedger, dlq: object, flow: str, module: str, external_key: str,
        policy: RetryPolicy, dlq_topic_name: str | None = None, guard: TwoWayGuard | None = None,
        match_also: tuple[str, ...] = (),
    ) -> None:
        super().__init__(ledger, dlq, flow, dlq_topic_name or dlq_topic(flow), guard)  # type: ignore[arg-type]
        self.client = client
        self.module = module
        self.external_key = external_key
        self.policy = policy
        self.duplicate_check_fields = [external_key, *match_also]
        self.target_name = module
        self.identity_fields = frozenset({external_key})
        self._listed: ListedRecords | None = None

    def prefetch(self, commands: list[SyncCommand]) -> None:
        self._listed = list_for(self.client, self.module, commands, self.external_key)

    def current_record(self, cmd: SyncCommand, entry: LedgerEntry | None) -> tuple[str | None, dict[str, Any] | None]:
        """The CRM record of this command: the one the ledger names, else the one carrying its external key."""
        target_id = entry.target_id if entry is not None else None
        if self._listed is not None:
            record = self._listed.find(target_id, cmd.record.get(self.external_key))
            return (str(record["id"]), record) if record else (None, None)
        record = self.client.get(self.module, target_id) if target_id else None
        if record is None:
            found = self.client.search(self.module, self.external_key, str(cmd.record[self.external_key]))
            record = found[0] if found else None
        return (str(record["id"]), record) if record else (None, None)

    def human_change(self, cmd: SyncCommand, entry: LedgerEntry | None) -> HumanChange | None:
        if entry is None or not entry.target_id:
            return None
        record = self.client.get(self.module, entry.target_id)  # a failure holds the write back (two_way.py)
        if not record:
            return None
        by = str((record.get("Modified_By") or {}).get("id"))
        if by == self.client.current_user_id():
            return None
        return HumanChange(int(datetime.fromisoformat(record["Modified_Time"]).timestamp() * 1000), record)

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        for i in range(0, len(planned), MAX_RECORDS_PER_WRITE):
            self._write_chunk(planned[i : i + MAX_RECORDS_PER_WRITE])

    def _write_chunk(self, chunk: list[Planned], *, full_retry: bool = True) -> None:
        records = [{self.external_key: p.command.record[self.external_key], **p.write} for p in chunk]
        try:
            results, attempts = self.try_call(
                lambda: self.client.upsert(self.module, records, self.duplicate_check_fields),
                f"ZOHO upsert of {len(records)} {self.module}",
            )
        except (GaveUp, PermanentError) as exc:
            attempts = getattr(exc, "attempts", 1)
            for p in chunk:
                self.dead_letter(p.command, exc, attempts, stage="upsert")
            return
        except Exception as exc:  # transient, in the runtime: the delivery step retries these later
            for p in chunk:
                self.defer(p.command, exc)
            return
        done: list[tuple[Planned, str | None, str, int]] = []
        resend: list[Planned] = []
        for p, result in zip(chunk, results, strict=True):
            if result.get("status") == "success":
                details = result.get("details") or {}
                done.append((p, str(details.get("id")), str(result.get("action")), attempts))
            elif p.command.deleted and result.get("code") == "MANDATORY_NOT_FOUND":
                # Marking a deletion met no record: the document never reached the CRM (or a replay from an
                # empty ledger replays its deletion): nothing to mark.
                done.append((p, None, "absent", attempts))
            elif (full_retry and result.get("code") == "MANDATORY_NOT_FOUND"
                  and len(p.write) < len(p.command.record) - 1):
                # A partial write (only the changed fields) met no record: someone deleted it in the CRM.
                # Send the whole record, which creates it again.
                resend.append(Planned(p.command, {k: v for k, v in p.command.record.items()
                                                  if k != self.external_key}, p.dropped))
            else:
                err = PermanentError(
                    f"ZOHO {result.get('code')}: {result.get('message')} {result.get('details') or ''}".strip(),
                    code=result.get("code"),
                )
                self.dead_letter(p.command, err, attempts, stage="upsert")
        self.applied(done)
        if resend:
            if self.guard is not None:
                self.guard.claim(resend)
            self._write_chunk(resend, full_retry=False)

    def close(self) -> None:
        super().close()
        self.client.close()


class ZohoUpsertSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, flow: str, module: str, external_key: str,
                 policy: RetryPolicy | None = None, shared_fields: frozenset[str] | None = None,
                 match_also: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.flow = flow
        self.module = module
        self.external_key = external_key
        self.policy = policy or RetryPolicy()
        #: Set for two-way master data: the guard is used, with these fields last-writer-wins.
        self.shared_fields = shared_fields
        self.match_also = match_also

    def build(self, step_id: str, worker_index: int, worker_count: int) -> ZohoUpsertPartition:
        engine = open_engine(self.settings.ledger_database_url())
        guard = None
        if self.shared_fields is not None:
            guard = TwoWayGuard(FieldClock(engine), "kingdee", self.shared_fields, self.external_key)
        return ZohoUpsertPartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, self.flow, "zoho"),
            producer(self.settings.kafka), self.flow, self.module, self.external_key, self.policy,
            self.settings.kafka.topic(dlq_topic(self.flow)), guard, self.match_also,
        )
