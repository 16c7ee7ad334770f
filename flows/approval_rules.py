"""The rules of the approval flows, declared as data in ``flows/mappings/approvals.toml`` and validated at start.

Shared by ``campaign_approvals`` (CRM campaign → Weaver request) and ``approval_status`` (Weaver request → CRM):
which workflow is which kind of approval, the CRM module and form field of each kind, the OA state → CRM status
table, which log entries become notes and how a note reads, and the idempotency keys of notes and attachments in
the sync ledger.  Everything here is pure (no I/O), so it is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from connectors.weaver.source import DiscoverySpec
from core.toml_specs import Spec, load_toml_spec
from flows.opinions import opinion_text
from flows.specs import spec_path

RULES_PATH = spec_path("approvals")
NODE_CREATE, NODE_ARCHIVE = 0, 3
STATES = ("draft", "in_approval", "rejected", "approved")
NOTE_TITLE_MAX = 120


@dataclass(frozen=True)
class Kind:
    name: str
    module: str
    crm_id_field: str
    attachments: bool


@dataclass(frozen=True)
class CampaignRules:
    workflow_id: int
    start_values: frozenset[str]
    resubmit_values: frozenset[str]
    request_name: str
    remark: str
    form: Mapping[str, str]  # OA form field -> CRM field path
    #: Who creates the OA request: the campaign owner's OA account, matched on ``creator_match`` (``email``: the
    #: same email; ``loginid``: the login id is the email's part before the @) from ``creator_field``.
    creator_field: str = "Owner.email"
    creator_match: tuple[str, ...] = ("email", "loginid")
    #: When no OA person matches, or that person may not start the workflow: created as this OA user.
    fallback_user: int = 1


@dataclass(frozen=True)
class ApprovalRules:
    workflows: Mapping[str, str]  # OA workflow id -> kind name
    kinds: Mapping[str, Kind]
    status_field: str
    node_field: str
    request_id_field: str
    status_values: Mapping[str, str]  # OA state -> CRM picklist value
    note_log_types: frozenset[str]
    note_actions: Mapping[str, str]
    campaign: CampaignRules
    list_users: tuple[int, ...]
    list_page_size: int

    def kind_of(self, workflow_id: str | int) -> Kind | None:
        name = self.workflows.get(str(workflow_id).strip())
        return self.kinds[name] if name else None


# --- the file --------------------------------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1)]


class KindSpec(Spec):
    module: Text
    crm_id_field: Text
    attachments: bool = False


class StatusSpec(Spec):
    field: Text
    node_field: Text
    request_id_field: Text
    values: dict[str, str]

    @field_validator("values")
    @classmethod
    def _every_state(cls, values: dict[str, str]) -> dict[str, str]:
        if set(values) != set(STATES):
            raise ValueError(f"must map exactly {list(STATES)}, got {sorted(values)}")
        return values


class NotesSpec(Spec):
    log_types: frozenset[str]
    actions: dict[str, str]


class CreatorSpec(Spec):
    crm_field: Text = "Owner.email"
    match: tuple[Literal["email", "loginid"], ...] = ("email", "loginid")
    fallback_user: int = 1


class CampaignSpec(Spec):
    workflow_id: int
    start_values: frozenset[str]
    resubmit_values: frozenset[str]
    request_name: Text
    remark: str = ""
    creator: CreatorSpec = CreatorSpec()
    form: dict[str, str]


class ApprovalsSpec(Spec):
    """``flows/mappings/approvals.toml``."""

    discovery: DiscoverySpec
    workflows: dict[str, str]
    kinds: dict[str, KindSpec]
    status: StatusSpec
    notes: NotesSpec
    campaign: CampaignSpec

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalsSpec:
        unknown = sorted(set(self.workflows.values()) - set(self.kinds))
        if unknown:
            raise ValueError(f"[workflows] names kinds without a [kinds.*] section: {unknown}")
        if self.workflows.get(str(self.campaign.workflow_id)) != "campaign":
            raise ValueError(f"[campaign] workflow_id {self.campaign.workflow_id} is not a campaign workflow in "
                             f"[workflows]")
        return self


def load_rules(path: Path = RULES_PATH) -> ApprovalRules:
    """Read and check the rules; a wrong file fails at start naming the file and the field."""
    spec = load_toml_spec(path, ApprovalsSpec)
    c = spec.campaign
    return ApprovalRules(
        workflows={wf.strip(): kind for wf, kind in spec.workflows.items()},
        kinds={name: Kind(name, k.module, k.crm_id_field, k.attachments) for name, k in spec.kinds.items()},
        status_field=spec.status.field, node_field=spec.status.node_field,
        request_id_field=spec.status.request_id_field, status_values=dict(spec.status.values),
        note_log_types=spec.notes.log_types, note_actions=dict(spec.notes.actions),
        campaign=CampaignRules(
            workflow_id=c.workflow_id, start_values=c.start_values, resubmit_values=c.resubmit_values,
            request_name=c.request_name, remark=c.remark, form=dict(c.form), creator_field=c.creator.crm_field,
            creator_match=c.creator.match, fallback_user=c.creator.fallback_user,
        ),
        list_users=spec.discovery.list_users, list_page_size=spec.discovery.list_page_size,
    )


# --- the OA side ------------------------------------------------------------------------------------------------
def oa_state(current_node_type: int, rejected: bool) -> str:
    """One of ``STATES`` from where the request stands."""
    if current_node_type == NODE_ARCHIVE:
        return "approved"
    if current_node_type == NODE_CREATE:
        return "rejected" if rejected else "draft"
    return "in_approval"


# --- idempotency keys in the sync ledger --------------------------------------------------------------------------
def note_key(request_id: str, log_id: str) -> str:
    return f"{request_id}/log/{log_id}"


def attachment_key(request_id: str, file_id: str) -> str:
    return f"{request_id}/file/{file_id}"


def note_marker(request_id: str, log_id: str) -> str:
    """Written into every note, so a note made just before a crash is found in the CRM and not made again."""
    return f"[OA {request_id}#{log_id}]"


# --- notes --------------------------------------------------------------------------------------------------------
def note_for(rules: ApprovalRules, request_id: str, request_name: str, entry: Mapping[str, Any]) -> tuple[str, str]:
    """(title, content) of the note for one OA log entry: action, node, approver, time and the opinion as text."""
    action = rules.note_actions.get(str(entry.get("log_type")), str(entry.get("log_type")))
    operator = str(entry.get("operator_name") or entry.get("operator_id") or "")
    dept = str(entry.get("operator_dept") or "")
    node = str(entry.get("node_name") or "")
    when = f"{entry.get('operate_date') or ''} {entry.get('operate_time') or ''}".strip()
    title = f"OA审批 {action}：{node} · {operator}"[:NOTE_TITLE_MAX]
    text = opinion_text(entry.get("remark_html")) or "（无意见）"
    lines = [
        f"{action}　节点：{node}　审批人：{operator}{f'（{dept}）' if dept else ''}　时间：{when}",
        f"意见：{text}",
    ]
    if entry.get("received_persons"):
        lines.append(f"转发给：{entry['received_persons']}")
    lines.append(f"流程：{request_name} {note_marker(request_id, str(entry.get('log_id')))}")
    return title, "\n".join(lines)


# --- campaign → OA form -------------------------------------------------------------------------------------------
def path_value(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def campaign_form(rules: CampaignRules, campaign: Mapping[str, Any]) -> dict[str, str]:
    """The OA form fields of a campaign; empty CRM values are left out (the OA checks what it requires)."""
    form = {}
    for oa_field, crm_path in rules.form.items():
        value = path_value(campaign, crm_path)
        if value not in (None, "", "-None-"):
            form[oa_field] = _text(value)
    return form


def campaign_request_name(rules: CampaignRules, campaign: Mapping[str, Any]) -> str:
    values = {k: "" if v is None else v for k, v in campaign.items() if isinstance(v, str | int | float)}
    values.setdefault("id", campaign.get("id", ""))
    try:
        return rules.request_name.format_map(_Defaulting(values))
    except (ValueError, IndexError):
        return f"CRM{campaign.get('id')}"


def crm_marker(campaign_id: str) -> str:
    """The end of the request name of a campaign's request: how it is found again before creating another."""
    return f"CRM{campaign_id}"


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""

