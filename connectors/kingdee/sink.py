"""KingdeeSaveSink: edits of master data saved into Kingdee through the WebAPI, idempotently.

A partial ``Save`` (``NeedUpDateFields``, entries kept) of the fields the CRM owns or shares, addressed by the
document's id.  Kingdee refuses to change an audited document, so an audited one is un-audited, saved, submitted
and audited again — the same steps a person takes.  The whole sequence is retried on transient errors (a lost
session logs in again inside the client); it starts from the document's current state, so a retry after a partial
failure finishes the job instead of repeating it.  Refusals (validation, not operable) are dead-lettered with
Kingdee's message naming the field.  Ledger and two-way rules: ``connectors/common/ledger_sink.py``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import dlq_topic
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import HumanChange, Planned, TwoWayGuard
from connectors.kingdee.client import KingdeeApiCredentials, KingdeeWebApiClient
from connectors.settings import Settings
from core.china_time import CHINA_TIME
from core.errors import PermanentError
from core.field_clock import FieldClock
from core.ledger import LedgerEntry, SyncLedger, open_engine
from core.mapping import Mapping

log = logging.getLogger(__name__)
AUDITED = "C"
IN_REVIEW = "B"   # submitted, waiting for the audit: Kingdee refuses to save it
REAUDIT = "D"     # un-audited: may be saved, then submitted and audited again


def kingdee_client(settings: Settings) -> KingdeeWebApiClient:
    api = settings.kingdee_api
    return KingdeeWebApiClient(
        KingdeeApiCredentials(api.base_url, api.acct_id, api.user, api.app_id, api.app_secret.get_secret_value()),
        timeout_s=api.timeout_s,
    )


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("Id")
    return None if value in (None, "", 0) else str(value)


class KingdeeSavePartition(LedgerSinkPartition):
    target_system = "kingdee"

    def __init__(self, client: KingdeeWebApiClient, ledger: SyncLedger, dlq: object, flow: str, mapping: Mapping,
                 policy: RetryPolicy, dlq_topic_name: str, guard: TwoWayGuard | None) -> None:
        super().__init__(ledger, dlq, flow, dlq_topic_name, guard)  # type: ignore[arg-type]
        assert mapping.kingdee_form and mapping.kingdee_id_field
        self.client = client
        self.mapping = mapping
        self.form = mapping.kingdee_form
        self.id_field = mapping.kingdee_id_field
        self.policy = policy

    def _kingdee_id(self, cmd: SyncCommand) -> str:
        return str(cmd.record[self.mapping.external_key])

    def target_exists(self, cmd: SyncCommand, entry: LedgerEntry | None) -> bool:
        """Always: the command names the Kingdee record by its id (the record came from Kingdee), whether or not
        this flow wrote to it before — its own writes never reach it, so its ledger cannot tell."""
        return True

    def human_change(self, cmd: SyncCommand, entry: LedgerEntry | None) -> HumanChange | None:
        """When a person last saved the Kingdee document (its values are not compared: every shared field the
        command carries is held back)."""
        doc = self.client.view(self.form, id=self._kingdee_id(cmd))  # a failure holds the write back (two_way.py)
        if _ref_id(doc.get("ModifierId")) == self.client.user_id or not doc.get("ModifyDate"):
            return None
        modified = datetime.fromisoformat(str(doc["ModifyDate"]))
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=CHINA_TIME)
        return HumanChange(int(modified.timestamp() * 1000))

    def _save(self, kingdee_id: str, model: dict[str, Any]) -> str:
        """Un-audit, save, submit, audit — resumed from wherever an earlier attempt stopped: a document this sink
        left submitted (in review) or un-audited (its last modifier is the integration user) is finished, so a
        failure between the steps never leaves it out of the audited state the flows send on."""
        doc = self.client.view(self.form, id=kingdee_id)
        status = doc.get("DocumentStatus")
        ours = _ref_id(doc.get("ModifierId")) == self.client.user_id
        if status == IN_REVIEW and ours:
            self.client.audit(self.form, ids=[kingdee_id])
            status = AUDITED
        reaudit = status == AUDITED or (status == REAUDIT and ours)
        if status == AUDITED:
            self.client.unaudit(self.form, ids=[kingdee_id])
        self.client.save(self.form, {self.id_field: int(kingdee_id), **model},
                         NeedUpDateFields=list(model), IsDeleteEntry=False)
        if reaudit:
            self.client.submit(self.form, ids=[kingdee_id])
            self.client.audit(self.form, ids=[kingdee_id])
        return "update"

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        done = []
        for p in planned:
            kingdee_id = self._kingdee_id(p.command)
            model = self.mapping.kingdee_model(p.write)
            try:
                action, attempts = self.try_call(partial(self._save, kingdee_id, model),
                                                 f"Kingdee Save {self.form} {kingdee_id}")
            except (GaveUp, PermanentError) as exc:
                self.dead_letter(p.command, exc, getattr(exc, "attempts", 1), stage="save")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(p.command, exc)
                continue
            done.append((p, kingdee_id, action, attempts))
        self.applied(done)

    def close(self) -> None:
        super().close()
        self.client.close()


class KingdeeSaveSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, flow: str, mapping: Mapping, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.flow = flow
        self.mapping = mapping
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> KingdeeSavePartition:
        engine = open_engine(self.settings.ledger_database_url())
        guard = TwoWayGuard(FieldClock(engine), "crm", self.mapping.shared_fields, self.mapping.external_key)
        return KingdeeSavePartition(
            kingdee_client(self.settings), SyncLedger(engine, self.flow, "kingdee"),
            producer(self.settings.kafka), self.flow, self.mapping, self.policy,
            self.settings.kafka.topic(dlq_topic(self.flow)), guard,
        )
