"""Campaign approval, CRM → Weaver OA: a campaign created (or set to Submit) in the CRM starts the OA's campaign
approval workflow; a rejected one is submitted again when the sales person sets Re-submit.

    zoho.campaigns ─► decode ─► drop our own writes, deletes, campaigns with nothing to start ─► CampaignRequestSink:
        no request yet  ─► found by its request name (…-CRM<id>, checked against the form's crmid), or doCreateRequest
                            with the campaign's fields (flows/mappings/approvals.toml [campaign.form])
                            ─► Weaver_Request_ID on the CRM campaign; the request id in the ledger
        Re-submit       ─► the request is back with its creator (rejected)? submitRequest with the current fields
        OA refuses (PARAM_ERROR: budget missing, NO_PERMISSION) ─► cdchub.dlq.campaign_approvals

What the approval then does (status, node, opinions) comes back through the Weaver poller and the
``approval_status`` flow.  An edit of a campaign in approval or approved starts nothing: one request per campaign
(docs/approvals.md).

Crash safety: ``doCreateRequest`` is not idempotent, so before creating, the sink looks for the campaign's request
(its name ends with ``CRM<id>``) in cdchub's own "my requests" list; a crash between the OA's write and the ledger
record finds it there.  A re-submit is only sent while the OA shows the request rejected, so a replay sends none.
Every decision is taken from the campaign as it is now (a ``GET``), not from the event.
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
from connectors.settings import Settings, get_settings
from connectors.weaver.client import WeaverClient
from connectors.weaver.source import weaver_client
from connectors.zoho.client import ZohoClient
from connectors.zoho.source import zoho_topic
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine
from core.mapping import fingerprint
from flows.approval_rules import (
    NODE_CREATE,
    ApprovalRules,
    campaign_form,
    campaign_request_name,
    crm_marker,
    load_rules,
    path_value,
)
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.oa_people import OaPeople

log = logging.getLogger(__name__)
FLOW = "campaign_approvals"
MODULE = "Campaigns"


def _status(rules: ApprovalRules, campaign: dict[str, Any]) -> str:
    return str(campaign.get(rules.status_field) or "")


def wants_request(rules: ApprovalRules, campaign: dict[str, Any]) -> bool:
    """No request yet and the status asks for one (a new campaign, or Submit)."""
    return not campaign.get(rules.request_id_field) and _status(rules, campaign) in rules.campaign.start_values


def wants_resubmit(rules: ApprovalRules, campaign: dict[str, Any]) -> bool:
    return _status(rules, campaign) in rules.campaign.resubmit_values


def to_command(rules: ApprovalRules, event: DocumentEvent) -> SyncCommand | None:
    """A campaign change that may start or re-submit a request, or None (deletes, anything else).

    Changes the integration made are not dropped: the poller sees only a record's latest state, and another flow's
    write (a campaign cost) may land between a person creating the campaign and the next poll.  The rules look at
    the state instead — our own write-backs carry the request id or an approval status, so they start nothing."""
    env = event.envelope
    if env["op"] == "d" or not env.get("record"):
        return None
    campaign = json.loads(env["record"])
    if not (wants_request(rules, campaign) or wants_resubmit(rules, campaign)):
        return None  # in approval, approved, or not to be approved: edits start nothing
    # The sales person's Re-submit is taken from the change itself: by the time the sink reads the campaign, a
    # status write-back of a later OA step may already have replaced it.
    record = {"campaign_id": event.key, "resubmit": wants_resubmit(rules, campaign)}
    return SyncCommand(flow=FLOW, key=event.key, number=campaign.get("Campaign_Name"), version=event.version,
                       record=record, fingerprint=fingerprint(campaign),
                       captured_at_ms=event.version, position=event.position)


class CampaignRequestPartition(LedgerSinkPartition):
    target_system = "weaver"

    def __init__(self, crm: ZohoClient, weaver: WeaverClient, ledger: SyncLedger, dlq: object, dlq_topic_name: str,
                 rules: ApprovalRules, policy: RetryPolicy) -> None:
        super().__init__(ledger, dlq, FLOW, dlq_topic_name)  # type: ignore[arg-type]
        self.crm = crm
        self.weaver = weaver
        self.rules = rules
        self.policy = policy
        kind = rules.kind_of(rules.campaign.workflow_id)
        assert kind is not None  # checked when the rules were loaded
        self._crm_id_field = kind.crm_id_field
        self.people = OaPeople(weaver.users, rules.campaign.creator_match)

    def _campaign(self, campaign_id: str) -> dict[str, Any] | None:
        try:
            return self.crm.get(MODULE, campaign_id)
        except PermanentError as exc:
            if exc.code == "INVALID_DATA":
                return None  # deleted meanwhile
            raise

    def creator_of(self, campaign: dict[str, Any]) -> int | None:
        """The OA person who owns the campaign (None: nobody matches; the fallback user creates the request)."""
        return self.people.user_for(path_value(campaign, self.rules.campaign.creator_field))

    def find_request(self, campaign_id: str, creators: list[int]) -> str | None:
        """The campaign's request in its possible creators' lists (newest first), confirmed by the form's CRM id."""
        workflow = str(self.rules.campaign.workflow_id)
        marker = crm_marker(campaign_id)
        for user in dict.fromkeys(creators):
            for row in self.weaver.my_requests(page_size=self.rules.list_page_size, user_id=user):
                if str(row.get("workflowId")) != workflow or not str(row.get("requestName") or "").endswith(marker):
                    continue
                rid = int(row["requestId"])
                form = self.weaver.workflow_request(rid).get("workflowMainTableInfo") or {}
                records = form.get("requestRecords") or [{}]
                fields = {f.get("fieldName"): f.get("fieldValue")
                          for f in records[0].get("workflowRequestTableFields", [])}
                if str(fields.get(self._crm_id_field)) == campaign_id:
                    return str(rid)
        return None

    def _create(self, campaign: dict[str, Any], creator: int | None) -> str:
        """Create the request as the campaign's owner; as the fallback user when the owner has no OA account or
        may not start this workflow (NO_PERMISSION), the owner then named in the remark."""
        rules = self.rules.campaign
        owner = campaign.get(rules.creator_field.split(".", 1)[0])
        named = (owner.get("name") if isinstance(owner, dict) else None) or path_value(campaign, rules.creator_field)
        ask = partial(self.weaver.create_request, rules.workflow_id, campaign_form(rules, campaign),
                      request_name=campaign_request_name(rules, campaign))
        if creator is not None and creator != rules.fallback_user:
            try:
                return str(ask(remark=rules.remark, user_id=creator))
            except PermanentError as exc:
                if exc.code != "NO_PERMISSION":
                    raise
                log.info("CRM campaign %s: OA user %s may not start the workflow (%s); created as user %s",
                         campaign.get("id"), creator, exc, rules.fallback_user)
        elif creator is None:
            log.info("CRM campaign %s: its owner %s has no OA account; created as user %s", campaign.get("id"),
                     named, rules.fallback_user)
        remark = f"{rules.remark}（CRM负责人：{named}）" if named and creator != rules.fallback_user else rules.remark
        return str(ask(remark=remark, user_id=rules.fallback_user))

    def _apply(self, cmd: SyncCommand, entry: LedgerEntry | None) -> tuple[str | None, str]:
        campaign_id = cmd.key
        campaign = self._campaign(campaign_id)
        if campaign is None:
            return None, "gone"
        rid = str(campaign.get(self.rules.request_id_field) or "") or (entry.target_id if entry else None)
        action = "linked"
        if not rid:
            creator = self.creator_of(campaign)
            rid = self.find_request(campaign_id, [u for u in (creator, self.rules.campaign.fallback_user) if u])
            action = "found"
        if not rid:
            if not wants_request(self.rules, campaign):
                return None, "nothing_to_start"
            rid = self._create(campaign, creator)
            action = "create"
        if str(campaign.get(self.rules.request_id_field) or "") != rid:
            self.crm.update(MODULE, [{"id": campaign_id, self.rules.request_id_field: rid}])
        if action == "linked" and (cmd.record.get("resubmit") or wants_resubmit(self.rules, campaign)):
            status = self.weaver.request_status(int(rid))
            node_type = int(status.get("currentNodeType", status.get("currentnodetype", -1)))
            if node_type == NODE_CREATE and str(status.get("isbereject")) == "1":
                # back with its creator: only they may submit it again
                creator_id = status.get("creatorId", status.get("creatorid"))
                self.weaver.submit_request(int(rid), remark=self.rules.campaign.remark,
                                           main_data=campaign_form(self.rules.campaign, campaign),
                                           user_id=int(creator_id) if creator_id else None)
                action = "resubmit"
            else:
                action = "not_rejected"
        return rid, action

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        done = []
        for p in planned:
            cmd = p.command
            try:
                (rid, action), attempts = self.try_call(partial(self._apply, cmd, entries.get(cmd.key)),
                                                        f"Weaver request for CRM campaign {cmd.key}")
            except (GaveUp, PermanentError) as exc:
                self.dead_letter(cmd, exc, getattr(exc, "attempts", 1), stage="request")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(cmd, exc)
                continue
            log.info("CRM campaign %s → Weaver request %s (%s)", cmd.key, rid, action)
            done.append((p, rid, action, attempts))
        self.applied(done)

    def close(self) -> None:
        super().close()
        self.crm.close()
        self.weaver.close()


class CampaignRequestSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, rules: ApprovalRules, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> CampaignRequestPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return CampaignRequestPartition(
            ZohoClient(self.settings.zoho), weaver_client(self.settings, f"{FLOW}-{worker_index}"),
            SyncLedger(engine, FLOW, "weaver"), producer(self.settings.kafka),
            self.settings.kafka.topic(dlq_topic(FLOW)), self.rules, self.policy,
        )


def build_flow(settings: Settings | None = None, rules: ApprovalRules | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    rules = rules or load_rules()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, zoho_topic(MODULE), "zoho.record")
    commands: Stream[SyncCommand] = op.filter_map("to_start_or_resubmit", events, partial(to_command, rules))
    deliver("weaver_requests", commands, CampaignRequestSink(settings, rules))
    write_dead_letters(FLOW, settings, read_dead)
    return flow
