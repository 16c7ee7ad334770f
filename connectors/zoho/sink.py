"""ZohoUpsertSink: idempotent upserts of target records into one ZOHO CRM module.

Delivery guarantee: effectively-once in the CRM under at-least-once input.  Upserts match on the mapping's external
key (a unique custom field), so a repeated write updates the same record; the sync ledger skips versions at or
below the applied one and content already there (same fingerprint), so replays and restarts make no API calls for
what is already synced and never move a record back to an older version.
Batching: at most 100 records per call (ZOHO's limit), the newest version per key within a batch.
Errors: transient failures (429, 5xx, timeouts) are retried with backoff (``connectors.common.retry``); per-record
errors and retries exhausted go to the flow's dead-letter topic with ZOHO's code and message, and are recorded in
the ledger; the rest of the batch proceeds.
"""

from __future__ import annotations

import logging
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Producer

from cdchub.ledger import SyncLedger, open_engine
from cdchub.settings import Settings
from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.errors import PermanentError
from connectors.common.kafka import producer
from connectors.common.retry import GaveUp, RetryPolicy, call_with_retry
from connectors.common.sync import SyncCommand
from connectors.zoho.client import MAX_RECORDS_PER_WRITE, ZohoClient

log = logging.getLogger(__name__)


def newest_per_key(commands: list[SyncCommand]) -> list[SyncCommand]:
    newest: dict[str, SyncCommand] = {}
    for cmd in commands:
        if cmd.key not in newest or cmd.version >= newest[cmd.key].version:
            newest[cmd.key] = cmd
    return list(newest.values())


class ZohoUpsertPartition(StatelessSinkPartition[SyncCommand]):
    def __init__(
        self, client: ZohoClient, ledger: SyncLedger, dlq: Producer, flow: str, module: str, external_key: str,
        policy: RetryPolicy,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.dlq = dlq
        self.flow = flow
        self.module = module
        self.external_key = external_key
        self.policy = policy
        self.dlq_topic = dlq_topic(flow)

    def write_batch(self, items: list[SyncCommand]) -> None:
        commands = newest_per_key(items)
        entries = self.ledger.entries(c.key for c in commands)
        todo: list[SyncCommand] = []
        unchanged: list[dict[str, Any]] = []
        for cmd in commands:
            entry = entries.get(cmd.key)
            if entry is not None and entry.source_version >= cmd.version:
                continue  # a replay or duplicate: already applied (or dead-lettered) at this version or newer
            if entry is not None and entry.status == "synced" and entry.fingerprint == cmd.fingerprint:
                unchanged.append(self._applied(cmd, entry.target_id, "unchanged", 0))
                continue
            todo.append(cmd)
        self.ledger.record_applied_many(unchanged)
        for i in range(0, len(todo), MAX_RECORDS_PER_WRITE):
            self._write_chunk(todo[i : i + MAX_RECORDS_PER_WRITE])
        self.dlq.flush(30)

    def _applied(self, cmd: SyncCommand, target_id: str | None, action: str, attempts: int) -> dict[str, Any]:
        return dict(source_key=cmd.key, source_version=cmd.version, target_id=target_id,
                    fingerprint=cmd.fingerprint, action=action, attempts=attempts, position=cmd.position,
                    captured_at_ms=cmd.captured_at_ms)

    def _write_chunk(self, chunk: list[SyncCommand]) -> None:
        records = [c.record for c in chunk]
        try:
            results, attempts = call_with_retry(
                lambda: self.client.upsert(self.module, records, [self.external_key]),
                f"ZOHO upsert of {len(records)} {self.module}", self.policy,
            )
        except (GaveUp, PermanentError) as exc:
            attempts = getattr(exc, "attempts", 1)
            for cmd in chunk:
                self._dead_letter(cmd, exc, attempts, stage="upsert")
            return
        applied = []
        for cmd, result in zip(chunk, results, strict=True):
            if result.get("status") == "success":
                details = result.get("details") or {}
                applied.append(self._applied(cmd, str(details.get("id")), str(result.get("action")), attempts))
            else:
                err = PermanentError(
                    f"ZOHO {result.get('code')}: {result.get('message')} {result.get('details') or ''}".strip(),
                    code=result.get("code"),
                )
                self._dead_letter(cmd, err, attempts, stage="upsert")
        self.ledger.record_applied_many(applied)

    def _dead_letter(self, cmd: SyncCommand, exc: BaseException, attempts: int, stage: str) -> None:
        letter = DeadLetter.of(
            self.flow, stage, exc, record=cmd.record, key=cmd.key, topic=cmd.position.topic,
            partition=cmd.position.partition, offset=cmd.position.offset, attempts=attempts,
        )
        letter.log()
        self.dlq.produce(self.dlq_topic, key=cmd.key.encode(), value=letter.to_json())
        self.ledger.record_failed(cmd.key, cmd.version, error=str(exc), attempts=attempts, position=cmd.position,
                                  captured_at_ms=cmd.captured_at_ms)

    def close(self) -> None:
        self.dlq.flush(30)
        self.client.close()


class ZohoUpsertSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, flow: str, module: str, external_key: str,
                 policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.flow = flow
        self.module = module
        self.external_key = external_key
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> ZohoUpsertPartition:
        engine = open_engine(self.settings.ledger_database_url())
        part = ZohoUpsertPartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, self.flow, "zoho"),
            producer(self.settings.kafka.bootstrap_servers), self.flow, self.module, self.external_key, self.policy,
        )
        part.dlq_topic = self.settings.kafka.topic(dlq_topic(self.flow))
        return part
