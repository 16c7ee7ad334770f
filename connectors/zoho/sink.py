"""ZohoUpsertSink: idempotent upserts of target records into one ZOHO CRM module.

Delivery guarantee and ledger rules: see ``connectors/common/ledger_sink.py``.  Upserts match on the mapping's
external key (a unique custom field), so a repeated write updates the same record.  At most 100 records per call
(ZOHO's limit).  Transient failures (429, 5xx, timeouts) are retried with backoff (``connectors.common.retry``);
per-record errors and retries exhausted are dead-lettered with ZOHO's code and message.
For two-way master data a guard narrows each write to the fields that must change (no echoes; conflicts by field
ownership, else last writer wins), looking at the CRM record when a person may have changed it meanwhile.  A write
that follows such a look is an update by id with ``If-Unmodified-Since`` = the ``Modified_Time`` looked at: a
person's save in between makes ZOHO refuse it (``ALREADY_MODIFIED``) instead of it being overwritten, and the guard
looks and decides again (``connectors/common/two_way.py``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import dlq_topic
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import MAX_REDECISIONS, HumanChange, Planned, TwoWayGuard
from connectors.settings import Settings
from connectors.zoho.client import MAX_RECORDS_PER_WRITE, ZohoClient
from connectors.zoho.listed import ListedRecords, list_for
from connectors.zoho.lookup import find_by_key
from core.errors import PermanentError
from core.field_clock import FieldClock
from core.ledger import LedgerEntry, SyncLedger, open_engine

log = logging.getLogger(__name__)


class ZohoUpsertPartition(LedgerSinkPartition):
    target_system = "zoho"
    pipelined = True

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

    @property
    def concurrency(self) -> int:
        """Calls in flight this partition may have (the org's limit; ``SharedSlots`` holds it across processes)."""
        return self.client.settings.max_concurrency

    def prefetch(self, commands: list[SyncCommand]) -> None:
        self._listed = list_for(self.client, self.module, commands, self.external_key)

    def current_record(self, cmd: SyncCommand, entry: LedgerEntry | None) -> tuple[str | None, dict[str, Any] | None]:
        """The CRM record of this command: the one the ledger names, else the one carrying its external key."""
        target_id = entry.target_id if entry is not None else None
        if self._listed is not None:
            record = self._listed.find(target_id, cmd.record.get(self.external_key))
            return (str(record["id"]), record) if record else (None, None)
        record = self.client.get(self.module, target_id) if target_id else None
        if record is None:  # not by search alone: its index trails our own creates (lookup.py)
            record = find_by_key(self.client, self.module, self.external_key, cmd.record[self.external_key])
        return (str(record["id"]), record) if record else (None, None)

    def human_change(self, cmd: SyncCommand, entry: LedgerEntry | None) -> HumanChange | None:
        if entry is None or not entry.target_id:
            return None
        record = self.client.get(self.module, entry.target_id)  # a failure holds the write back (two_way.py)
        if not record:
            return None
        by = str((record.get("Modified_By") or {}).get("id"))
        stamp = str(record["Modified_Time"])
        return HumanChange(int(datetime.fromisoformat(stamp).timestamp() * 1000), record, stamp=stamp,
                           by_person=by != self.client.current_user_id())

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        self._write_planned(planned, entries, 0)

    def _write_planned(self, planned: list[Planned], entries: dict[str, LedgerEntry], refused: int) -> None:
        """Looked-at records by conditional updates (grouped by the stamp looked at), the others by upsert; what
        ZOHO refused as modified since the look is decided again, ``refused`` counting the rounds."""
        guarded: dict[str, list[Planned]] = {}
        plain = []
        for p in planned:
            entry = entries.get(p.command.key)
            if p.stamp and entry is not None and entry.target_id:
                guarded.setdefault(p.stamp, []).append(p)
            else:
                plain.append(p)
        for i in range(0, len(plain), MAX_RECORDS_PER_WRITE):
            self._write_chunk(plain[i : i + MAX_RECORDS_PER_WRITE])
        stale: list[Planned] = []
        for stamp, group in guarded.items():
            for i in range(0, len(group), MAX_RECORDS_PER_WRITE):
                stale += self._update_unless_modified(group[i : i + MAX_RECORDS_PER_WRITE], stamp, entries)
        if not stale:
            return
        if refused + 1 >= MAX_REDECISIONS:
            for p in stale:
                self.still_changing(p, refused + 1)
            return
        log.info("%s: %d %s changed in the CRM since they were read; deciding again", self.flow, len(stale),
                 self.module)
        again = self.redecide(stale, entries)
        if again:
            self._write_planned(again, entries, refused + 1)

    def _update_unless_modified(self, chunk: list[Planned], stamp: str,
                                entries: dict[str, LedgerEntry]) -> list[Planned]:
        """One conditional update; returns the records ZOHO refused as modified after ``stamp``."""
        ids = [str(entries[p.command.key].target_id) for p in chunk]
        records = [{"id": i, **p.write} for i, p in zip(ids, chunk, strict=True)]
        try:
            results, attempts = self.try_call(
                lambda: self.client.update_unless_modified(self.module, records, stamp),
                f"ZOHO update of {len(records)} {self.module} unless modified since {stamp}",
            )
        except PermanentError as exc:  # GaveUp too
            if exc.code == "ALREADY_MODIFIED":  # a 412 without per-record answers: all of them
                return list(chunk)
            for p in chunk:
                self.dead_letter(p.command, exc, getattr(exc, "attempts", 1), stage="update")
            return []
        except Exception as exc:  # transient, in the runtime: the delivery step retries these later
            for p in chunk:
                self.defer(p.command, exc)
            return []
        done: list[tuple[Planned, str | None, str, int]] = []
        stale, gone = [], []
        for p, record_id, result in zip(chunk, ids, results, strict=True):
            details = result.get("details") or {}
            if result.get("status") == "success":
                done.append((p, record_id, "update", attempts))
            elif result.get("code") == "ALREADY_MODIFIED":
                stale.append(p)
            elif result.get("code") == "INVALID_DATA" and details.get("api_name") == "id":
                gone.append(p)  # deleted in the CRM since the look: the upsert path creates it again
            else:
                err = PermanentError(f"ZOHO {result.get('code')}: {result.get('message')} {details}".strip(),
                                     code=result.get("code"))
                self.dead_letter(p.command, err, attempts, stage="update")
        self.applied(done)
        if gone:
            self._write_chunk(gone)
        return stale

    def _write_chunk(self, chunk: list[Planned], *, full_retry: bool = True) -> None:
        """One upsert of ≤ 100 records — in flight while the flow goes on when pipelined (``flights.py``)."""
        records = [{self.external_key: p.command.record[self.external_key], **p.write} for p in chunk]
        self.dispatch(
            lambda: self.client.upsert(self.module, records, self.duplicate_check_fields),
            f"ZOHO upsert of {len(records)} {self.module}", [p.command.key for p in chunk],
            lambda results, attempts: self._upserted(chunk, results, attempts, full_retry),
            lambda exc: self._upsert_failed(chunk, exc),
        )

    def _upsert_failed(self, chunk: list[Planned], exc: BaseException) -> None:
        if isinstance(exc, (GaveUp, PermanentError)):
            attempts = getattr(exc, "attempts", 1)
            for p in chunk:
                self.dead_letter(p.command, exc, attempts, stage="upsert")
            return
        for p in chunk:  # transient, in the runtime: the delivery step retries these later
            self.defer(p.command, exc)

    def _upserted(self, chunk: list[Planned], results: list[dict[str, Any]], attempts: int, full_retry: bool) -> None:
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
        #: Read by the delivery step (``connectors/common/delivery.py``).
        self.batch_linger_s = settings.zoho.batch_linger_ms / 1000

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
