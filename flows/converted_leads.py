"""Leads pool → customers: a CRM lead converted to an Account that has no Kingdee customer becomes one.

    zoho.leads ─► converted, with an account ─► LeadConversionSink:
        1. the account gets its future Kingdee number (``Account_Number`` = ``CRM<account id>``), so the customers
           flow matches it by number before the id is written back (no second account);
        2. the Kingdee customer is found by that number, or created (Save, submitted and audited in one call);
        3. the Kingdee id and number are written back to the account.

Crash safety: each step is idempotent — the number is deterministic, step 2 looks the customer up by number
before creating it, so a crash between the Kingdee write and its acknowledgement creates no second customer; the
ledger (keyed by lead id) skips conversions already done.  An account that already has a Kingdee customer is left
alone.  Failures are dead-lettered naming the lead and the account.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import dlq_topic
from connectors.common.delivery import deliver
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.kingdee.client import KingdeeWebApiClient
from connectors.kingdee.form_requirements import FormRequirements
from connectors.kingdee.sink import kingdee_client
from connectors.settings import Settings, get_settings
from connectors.zoho.client import ZohoClient
from connectors.zoho.source import zoho_topic
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine
from core.mapping import fingerprint
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters

log = logging.getLogger(__name__)
FLOW = "converted_leads"
CUSTOMER_FORM = "BD_Customer"
#: The converted account's contact details the new customer starts with (CRM field → Kingdee Save key; both ways
#: afterwards through the customers mapping).
CONTACT_FIELDS = {"Phone": "FTEL", "Billing_Street": "FADDRESS"}


def customer_number(account_id: str) -> str:
    return f"CRM{account_id}"


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return None if value in (None, "") else str(value)


def to_conversion(event: DocumentEvent) -> SyncCommand | None:
    env = event.envelope
    if env["op"] == "d" or not env.get("record"):
        return None
    lead = json.loads(env["record"])
    detail = lead.get("$converted_detail") or {}
    account_id = _ref_id(detail.get("account"))
    if not lead.get("$converted") or account_id is None:
        return None
    record = {"lead_id": event.key, "account_id": account_id, "company": lead.get("Company")}
    return SyncCommand(flow=FLOW, key=event.key, number=lead.get("Company"), version=event.version,
                       record=record, fingerprint=fingerprint(record), captured_at_ms=event.version,
                       position=event.position)


class LeadConversionSink(LedgerSinkPartition):
    target_system = "kingdee"

    def __init__(self, crm: ZohoClient, kingdee: KingdeeWebApiClient, ledger: SyncLedger, dlq: object,
                 dlq_topic_name: str, policy: RetryPolicy) -> None:
        super().__init__(ledger, dlq, FLOW, dlq_topic_name)  # type: ignore[arg-type]
        self.crm = crm
        self.kingdee = kingdee
        self.policy = policy
        self.forms = FormRequirements(kingdee)

    def _find_customer(self, number: str) -> str | None:
        rows = self.kingdee.execute_bill_query(CUSTOMER_FORM, "FCUSTID,FNumber", filter_string=f"FNumber = '{number}'")
        return str(rows[0][0]) if rows else None

    def _convert(self, cmd: SyncCommand) -> tuple[str, str]:
        account_id = cmd.record["account_id"]
        account = self.crm.get("Accounts", account_id)
        if account is None:
            raise PermanentError(f"account {account_id} of lead {cmd.key} no longer exists in the CRM")
        if account.get("Kingdee_Customer_ID"):
            return str(account["Kingdee_Customer_ID"]), "already"
        number = customer_number(account_id)
        self.crm.update("Accounts", [{"id": account_id, "Account_Number": number}])
        customer_id = self._find_customer(number)
        action = "found"
        if customer_id is None:
            model = {"FCUSTID": 0, "FNumber": number, "FName": account["Account_Name"],
                     **{key: account[field] for field, key in CONTACT_FIELDS.items() if account.get(field)}}
            result = self.kingdee.save(CUSTOMER_FORM, self.forms.complete(CUSTOMER_FORM, model),
                                       IsAutoSubmitAndAudit=True)
            customer_id = str(result.ids[0])
            action = "insert"
        self.crm.update("Accounts", [{"id": account_id, "Kingdee_Customer_ID": customer_id,
                                      "Kingdee_Number": number}])
        return customer_id, action

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        done = []
        for p in planned:
            try:
                (customer_id, action), attempts = self.try_call(
                    partial(self._convert, p.command), f"customer for lead {p.command.key}")
            except (GaveUp, PermanentError) as exc:
                self.dead_letter(p.command, exc, getattr(exc, "attempts", 1), stage="convert")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(p.command, exc)
                continue
            log.info("lead %s → account %s → Kingdee customer %s (%s)", p.command.key,
                     p.command.record["account_id"], customer_id, action)
            done.append((p, customer_id, action, attempts))
        self.applied(done)

    def close(self) -> None:
        super().close()
        self.crm.close()
        self.kingdee.close()


class LeadConversionOutput(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> LeadConversionSink:
        engine = open_engine(self.settings.ledger_database_url())
        return LeadConversionSink(
            ZohoClient(self.settings.zoho), kingdee_client(self.settings), SyncLedger(engine, FLOW, "kingdee"),
            producer(self.settings.kafka), self.settings.kafka.topic(dlq_topic(FLOW)),
            self.policy,
        )


def build_flow(settings: Settings | None = None, *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, zoho_topic("Leads"), "zoho.record")
    conversions: Stream[SyncCommand] = op.filter_map("conversions", events, to_conversion)
    deliver("kingdee_customers", conversions, LeadConversionOutput(settings))
    write_dead_letters(FLOW, settings, read_dead)
    return flow
