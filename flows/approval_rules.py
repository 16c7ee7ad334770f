"""The rules of the approval flows, declared as data in ``flows/mappings/approvals.toml`` and validated at start.

Shared by ``campaign_approvals`` (CRM campaign → Weaver request) and ``approval_status`` (Weaver request → CRM):
which workflow is which kind of approval, the CRM module and form field of each kind, the OA state → CRM status
table, which log entries become notes and how a note reads, and the idempotency keys of notes and attachments in
the sync ledger.  Everything here is pure (no I/O), so it is unit-tested directly.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.opinions import opinion_text

RULES_PATH = Path(__file__).parent / "mappings" / "approvals.toml"
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


def _creator(raw: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(raw) - {"crm_field", "match", "fallback_user"}
    if unknown:
        raise ValueError(f"[campaign.creator] has unknown keys {sorted(unknown)}")
    match = tuple(str(m) for m in raw.get("match", ("email", "loginid")))
    if set(match) - {"email", "loginid"}:
        raise ValueError(f"[campaign.creator] match must name email and/or loginid, got {list(match)}")
    return {"creator_field": str(raw.get("crm_field", "Owner.email")), "creator_match": match,
            "fallback_user": int(raw.get("fallback_user", 1))}


def load_rules(path: Path = RULES_PATH) -> ApprovalRules:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        kinds = {name: Kind(name, str(k["module"]), str(k["crm_id_field"]), bool(k.get("attachments", False)))
                 for name, k in raw["kinds"].items()}
        workflows = {str(wf).strip(): str(kind) for wf, kind in raw["workflows"].items()}
        unknown = sorted(set(workflows.values()) - set(kinds))
        if unknown:
            raise ValueError(f"[workflows] names kinds without a [kinds.*] section: {unknown}")
        values = {str(k): str(v) for k, v in raw["status"]["values"].items()}
        if set(values) != set(STATES):
            raise ValueError(f"[status.values] must map exactly {list(STATES)}, got {sorted(values)}")
        c = raw["campaign"]
        campaign = CampaignRules(
            workflow_id=int(c["workflow_id"]), start_values=frozenset(str(v) for v in c["start_values"]),
            resubmit_values=frozenset(str(v) for v in c["resubmit_values"]), request_name=str(c["request_name"]),
            remark=str(c.get("remark", "")), form={str(k): str(v) for k, v in c["form"].items()},
            **_creator(c.get("creator") or {}),
        )
        if str(campaign.workflow_id) not in workflows or workflows[str(campaign.workflow_id)] != "campaign":
            raise ValueError(f"[campaign] workflow_id {campaign.workflow_id} is not a campaign workflow in [workflows]")
        return ApprovalRules(
            workflows=workflows, kinds=kinds, status_field=str(raw["status"]["field"]),
            node_field=str(raw["status"]["node_field"]), request_id_field=str(raw["status"]["request_id_field"]),
            status_values=values, note_log_types=frozenset(str(t) for t in raw["notes"]["log_types"]),
            note_actions={str(k): str(v) for k, v in raw["notes"]["actions"].items()}, campaign=campaign,
            list_users=tuple(int(u) for u in raw["discovery"]["list_users"]),
            list_page_size=int(raw["discovery"].get("list_page_size", 100)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


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

