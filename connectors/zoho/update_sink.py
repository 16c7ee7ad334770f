"""ZohoUpdateSink: idempotent updates of existing CRM records by their CRM id (``PUT /{module}``).

For flows that change a field of a record another flow created (a product's stock from the inventory flow): the
command's record carries the CRM ``id`` (found through the id map) and the fields to set.  Ledger rules as in
``connectors/common/ledger_sink.py`` (a version at or below the applied one is skipped, unchanged content is recorded
without a call).  At most 100 records per call; transient failures are retried with backoff; a refused record (the CRM
record was deleted, invalid data) is isolated by retrying its batch one record at a time and then dead-lettered.
"""

from __future__ import annotations

import logging
from typing import Any

from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import dlq_topic
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.settings import Settings
from connectors.zoho.client import MAX_RECORDS_PER_WRITE, ZohoClient
from connectors.zoho.listed import ListedRecords, list_for
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine

log = logging.getLogger(__name__)


class ZohoUpdatePartition(LedgerSinkPartition):
    target_system = "zoho"

    def __init__(self, client: ZohoClient, ledger: SyncLedger, dlq: object, flow: str, module: str,
                 policy: RetryPolicy, dlq_topic_name: str | None = None) -> None:
        super().__init__(ledger, dlq, flow, dlq_topic_name or dlq_topic(flow))  # type: ignore[arg-type]
        self.client = client
        self.module = module
        self.policy = policy
        #: API calls made (for tests and figures).
        self.calls = 0
        self.target_name = module
        self.identity_fields = frozenset({"id"})
        self._listed: ListedRecords | None = None

    def prefetch(self, commands: list[SyncCommand]) -> None:
        self._listed = list_for(self.client, self.module, commands, None)

    def current_record(self, cmd: SyncCommand, entry: LedgerEntry | None) -> tuple[str | None, dict[str, Any] | None]:
        if self._listed is not None:
            record = self._listed.find(str(cmd.record["id"]))
            return (str(record["id"]), record) if record else (None, None)
        record = self.client.get(self.module, str(cmd.record["id"]))
        return (str(record["id"]), record) if record else (None, None)

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        for i in range(0, len(planned), MAX_RECORDS_PER_WRITE):
            self._write_chunk(planned[i : i + MAX_RECORDS_PER_WRITE])

    def _update(self, records: list[dict[str, object]]) -> None:
        self.calls += 1
        self.client.update(self.module, records)

    def _write_chunk(self, chunk: list[Planned]) -> None:
        records = [dict(p.write) for p in chunk]
        try:
            _, attempts = self.try_call(lambda: self._update(records), f"ZOHO update of {len(records)} {self.module}")
        except GaveUp as exc:
            for p in chunk:
                self.dead_letter(p.command, exc, exc.attempts, stage="update")
            return
        except PermanentError as exc:
            if len(chunk) > 1:
                # ZOHO refused at least one record of the batch (the others are applied; updates are idempotent):
                # find which one by sending them one at a time.
                log.warning("ZOHO refused a record of a %d-record update (%s); retrying one by one", len(chunk), exc)
                for p in chunk:
                    self._write_chunk([p])
                return
            self.dead_letter(chunk[0].command, exc, 1, stage="update")
            return
        except Exception as exc:  # transient, in the runtime: the delivery step retries these later
            for p in chunk:
                self.defer(p.command, exc)
            return
        self.applied([(p, str(p.command.record["id"]), "update", attempts) for p in chunk])

    def close(self) -> None:
        super().close()
        self.client.close()


class ZohoUpdateSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, flow: str, module: str, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.flow = flow
        self.module = module
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> ZohoUpdatePartition:
        engine = open_engine(self.settings.ledger_database_url())
        return ZohoUpdatePartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, self.flow, "zoho"),
            producer(self.settings.kafka), self.flow, self.module, self.policy,
            self.settings.kafka.topic(dlq_topic(self.flow)),
        )
