"""The pure parts of the approval flows: opinions as text, the rules file, OA state → CRM status, notes, idempotency
keys, routing of request versions, which campaign changes start or re-submit a request, the poller's change test,
and notes/attachments written once (with an in-memory CRM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.common.dead_letters import DeadLetter
from connectors.common.sync import SyncCommand
from connectors.weaver.source import change_fingerprint, form_values, log_entry
from connectors.zoho.related_once import FileToCopy, LocalFile, NoteToWrite, Origin, RelatedOnce
from core.ledger import Position, SyncLedger, open_engine
from flows import approval_status, campaign_approvals
from flows.approval_rules import (
    RULES_PATH,
    attachment_key,
    campaign_form,
    campaign_request_name,
    load_rules,
    note_for,
    note_key,
    note_marker,
    oa_state,
)
from flows.kingdee_documents import DocumentEvent
from flows.opinions import opinion_text

RULES = load_rules()


# --- opinions -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("html", "text"), [
    ("<p>同意。</p>", "同意。"),
    ('<p>资料不全，请补充<span style="color:#ff0000">报价单</span>。</p>', "资料不全，请补充报价单。"),
    ("<p>预算合理，<strong>同意</strong> &amp; 执行</p>", "预算合理，同意 & 执行"),
    ("<p>第一段</p><p>第二段<br/>第三行</p>", "第一段\n第二段\n第三行"),
    ("&lt;script&gt;alert(1)&lt;/script&gt; 原样显示", "<script>alert(1)</script> 原样显示"),
    ("<script>alert('x')</script><style>p{}</style><p>只留正文</p>", "只留正文"),
    ("<p>未闭合 <b>粗体", "未闭合 粗体"),
    ("同意&nbsp;&nbsp;签署 &#x540C;&#24847;", "同意 签署 同意"),
    ("纯文本意见", "纯文本意见"),
    ("", ""),
    (None, ""),
])
def test_opinions_become_plain_text(html: str | None, text: str) -> None:
    assert opinion_text(html) == text


# --- rules --------------------------------------------------------------------------------------------------------
def test_the_rules_file_names_both_workflows() -> None:
    assert RULES.kind_of(101).module == "Campaigns" and RULES.kind_of("101").crm_id_field == "crmid"  # type: ignore[union-attr]
    contract = RULES.kind_of(" 102 ")
    assert contract is not None and contract.module == "Deals" and contract.attachments
    assert RULES.kind_of(103) is None and RULES.kind_of("x") is None
    assert RULES.list_users[0] == 1


def test_a_wrong_rules_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    text = RULES_PATH.read_text(encoding="utf-8").replace('102 = "contract"', '102 = "contracts"')
    wrong = tmp_path / "approvals.toml"
    wrong.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"approvals\.toml.*contracts"):
        load_rules(wrong)
    wrong.write_text(RULES_PATH.read_text(encoding="utf-8").replace('approved = "Approved"', ""), encoding="utf-8")
    with pytest.raises(ValueError, match="status.values"):
        load_rules(wrong)


@pytest.mark.parametrize(("node_type", "rejected", "state", "crm"), [
    (0, False, "draft", "Draft"), (0, True, "rejected", "Rejected"), (1, False, "in_approval", "In Approval"),
    (2, False, "in_approval", "In Approval"), (3, False, "approved", "Approved"),
])
def test_oa_state_to_crm_status(node_type: int, rejected: bool, state: str, crm: str) -> None:
    assert oa_state(node_type, rejected) == state
    assert RULES.status_values[state] == crm


# --- notes and keys -----------------------------------------------------------------------------------------------
ENTRY = {"log_id": "2180003", "log_type": "3", "node_id": "1012", "node_name": "部门经理", "operator_id": "102",
         "operator_name": "王强", "operator_dept": "市场部", "operate_date": "2026-11-30", "operate_time": "18:02:03",
         "remark_html": '<p>预算超标，请<span style="color:red">调整</span>后重新提交。</p>', "received_persons": None}


def test_a_note_says_who_did_what_where_and_when_in_plain_chinese() -> None:
    title, content = note_for(RULES, "447001", "市场活动审批-春季发布会-CRM42", ENTRY)
    assert title == "OA审批 退回：部门经理 · 王强"
    assert "退回　节点：部门经理　审批人：王强（市场部）　时间：2026-11-30 18:02:03" in content
    assert "意见：预算超标，请调整后重新提交。" in content
    assert content.endswith(note_marker("447001", "2180003")) and "<" not in content.split("[OA")[0]
    forward = note_for(RULES, "447001", "x", {**ENTRY, "log_type": "7", "remark_html": "", "received_persons": "张伟"})
    assert "意见：（无意见）" in forward[1] and "转发给：张伟" in forward[1]


def test_idempotency_keys_are_stable_and_distinct() -> None:
    assert note_key("447001", "2180003") == "447001/log/2180003"
    assert attachment_key("447001", "90001") == "447001/file/90001"
    assert note_key("447001", "1") != attachment_key("447001", "1")
    assert note_marker("447001", "2180003") == "[OA 447001#2180003]"


def test_campaign_form_and_request_name() -> None:
    campaign = {"id": "4876876000000000007", "Campaign_Name": "春季新品发布会", "Type": "Conference",
                "Budgeted_Cost": 50000.0, "Expected_Revenue": 1234.5, "Start_Date": "2026-12-01", "End_Date": None,
                "Owner": {"name": "李娜", "id": "1"}, "Description": ""}
    assert campaign_form(RULES.campaign, campaign) == {
        "hdmc": "春季新品发布会", "crmid": "4876876000000000007", "hdlx": "Conference", "ksrq": "2026-12-01",
        "ysje": "50000", "yqsr": "1234.5", "fzr": "李娜"}
    assert campaign_request_name(RULES.campaign, campaign) == "市场活动审批-春季新品发布会-CRM4876876000000000007"


# --- routing request versions -------------------------------------------------------------------------------------
def request_event(workflow_id: str = "102", form: dict[str, str] | None = None, node_type: int = 1,
                  version: int = 1000) -> DocumentEvent:
    envelope = {"request_id": "447005", "workflow_id": workflow_id, "workflow_name": "合同审批",
                "request_name": "合同审批-启明", "current_node_type": node_type, "current_node_name": "法务",
                "rejected": False, "form": {"crmdealid": "D-1"} if form is None else form, "log": [ENTRY],
                "resources": [], "source": {"version": version}}
    return DocumentEvent("447005", envelope, Position("weaver.requests", 0, 7))


def test_request_versions_are_routed_by_workflow() -> None:
    cmd = approval_status.to_command(RULES, request_event())
    assert isinstance(cmd, SyncCommand)
    assert (cmd.key, cmd.version, cmd.record["kind"], cmd.record["crm_id"], cmd.record["state"]) == (
        "447005", 1000, "contract", "D-1", "in_approval")
    assert cmd.fingerprint == approval_status.to_command(RULES, request_event()).fingerprint  # type: ignore[union-attr]

    unknown = approval_status.to_command(RULES, request_event(workflow_id="103"))
    assert isinstance(unknown, DeadLetter) and unknown.error_class == "UnknownWorkflow"
    assert "unknown workflow 103" in unknown.error and unknown.key == "447005" and unknown.offset == 7
    json.loads(unknown.to_json())

    no_id = approval_status.to_command(RULES, request_event(form={"crmdealid": " "}))
    assert isinstance(no_id, DeadLetter) and no_id.error_class == "NoCrmId" and "crmdealid" in no_id.error


# --- which campaign changes matter --------------------------------------------------------------------------------
def campaign_event(by_integration: bool = False, op: str = "u", **fields: Any) -> DocumentEvent:
    record = {"id": "C-1", "Campaign_Name": "春季新品发布会", **fields}
    envelope = {"op": op, "id": "C-1", "record": json.dumps(record, ensure_ascii=False),
                "by_integration": by_integration, "source": {"version": 5}}
    return DocumentEvent("C-1", envelope, Position("zoho.campaigns", 0, 1))


@pytest.mark.parametrize(("event", "acts"), [
    (campaign_event(op="c"), True),                                                  # created: start
    (campaign_event(Approval_Status="Submit"), True),                                # asked for
    (campaign_event(Approval_Status="In Approval", Weaver_Request_ID="447001"), False),
    (campaign_event(Approval_Status="Approved", Weaver_Request_ID="447001", Budgeted_Cost=9), False),  # edit after
    (campaign_event(Approval_Status="Rejected", Weaver_Request_ID="447001"), False),  # edited, not re-submitted
    (campaign_event(Approval_Status="Re-submit", Weaver_Request_ID="447001"), True),
    (campaign_event(by_integration=True, Weaver_Request_ID="447001", Approval_Status="In Approval"), False),  # ours
    # another flow's write (a cost) before the poller saw the new campaign: it still wants its request
    (campaign_event(by_integration=True, Actual_Cost=8000), True),
    (campaign_event(op="d"), False),
])
def test_which_campaign_changes_start_or_resubmit_a_request(event: DocumentEvent, acts: bool) -> None:
    if event.envelope["op"] == "d":
        event.envelope["record"] = None
    assert (campaign_approvals.to_command(RULES, event) is not None) is acts


# --- the poller's change test -------------------------------------------------------------------------------------
def test_a_new_version_only_when_node_status_or_log_changed() -> None:
    status = {"currentNodeId": "1012", "currentNodeType": "1", "status": "审批", "isbereject": "0",
              "lastOperateTime": "10:00:00", "currentOperators": [{"id": "102"}]}
    log_rows = [{"logid": "2180001"}]
    same = change_fingerprint({**status, "lastOperateTime": "10:00:05"}, log_rows)
    assert change_fingerprint(status, log_rows) == same
    assert change_fingerprint(status, [*log_rows, {"logid": "2180002"}]) != same  # a forward: same node, new log
    assert change_fingerprint({**status, "isbereject": "1"}, log_rows) != same


def test_form_and_log_rows_as_the_event_carries_them() -> None:
    form = {"workflowMainTableInfo": {"requestRecords": [{"workflowRequestTableFields": [
        {"fieldName": "crmdealid", "fieldValue": "D-1"}, {"fieldName": "htje", "fieldValue": None}]}]}}
    assert form_values(form) == {"crmdealid": "D-1", "htje": ""}
    assert form_values({}) == {}
    row = log_entry({"logid": "1", "logtype": "0", "nodename": "法务", "operatorName": "刘洋", "receivedPersons": ""})
    assert (row["log_id"], row["node_name"], row["operator_name"]) == ("1", "法务", "刘洋")
    assert row["received_persons"] is None


# --- written once -------------------------------------------------------------------------------------------------
class MemoryCrm:
    """Notes and attachments of one record, in memory; ``fail_after_write`` loses the answer of the next write."""

    def __init__(self) -> None:
        self.note_rows: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.fail_after_write = False

    def _lost(self) -> None:
        if self.fail_after_write:
            self.fail_after_write = False
            raise TimeoutError("answer lost")

    def notes(self, module: str, record_id: str) -> list[dict[str, Any]]:
        return list(self.note_rows)

    def add_note(self, module: str, record_id: str, title: str, content: str) -> str:
        self.note_rows.append({"id": f"n{len(self.note_rows)}", "Note_Title": title, "Note_Content": content})
        self._lost()
        return str(self.note_rows[-1]["id"])

    def attachments(self, module: str, record_id: str) -> list[dict[str, Any]]:
        return list(self.files)

    def upload_attachment(self, module: str, record_id: str, path: Path, name: str, content_type: str) -> str:
        self.files.append({"id": f"a{len(self.files)}", "File_Name": name, "Size": str(path.stat().st_size)})
        self._lost()
        return str(self.files[-1]["id"])


def test_notes_and_files_are_written_once_across_a_lost_answer(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    crm = MemoryCrm()
    once = RelatedOnce(crm, SyncLedger(engine, "f", "note"), SyncLedger(engine, "f", "file"),  # type: ignore[arg-type]
                       tmp_path / "tmp")
    origin = Origin(1, None, Position(), 1)
    notes = [NoteToWrite(f"r/log/{i}", f"[OA r#{i}]", "t", f"意见 {i} [OA r#{i}]") for i in range(3)]
    crm.fail_after_write = True
    with pytest.raises(TimeoutError):
        once.notes("Deals", "D", notes, origin)  # the CRM stored note 0, the answer was lost
    assert once.notes("Deals", "D", notes, origin) == 2  # note 0 found by its marker, 1 and 2 written
    assert once.notes("Deals", "D", notes, origin) == 0
    assert len(crm.note_rows) == 3 and once.found == 1

    def fetch(item: FileToCopy, folder: Path) -> LocalFile:
        path = folder / item.name
        path.write_bytes(b"x" * (item.size or 0))
        return LocalFile(path, item.name, "application/pdf")

    files = [FileToCopy("r/file/1", "合同正文.pdf", 10, "/dl?1"), FileToCopy("r/file/2", "盖章页.png", 5, "/dl?2")]
    crm.fail_after_write = True
    with pytest.raises(TimeoutError):
        once.files("Deals", "D", files, fetch, origin)
    assert once.files("Deals", "D", files, fetch, origin) == 1
    assert once.files("Deals", "D", files, fetch, origin) == 0
    assert [(f["File_Name"], f["Size"]) for f in crm.files] == [("合同正文.pdf", "10"), ("盖章页.png", "5")]
    assert not list((tmp_path / "tmp").iterdir()), "temporary copies removed"
