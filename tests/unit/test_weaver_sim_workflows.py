"""Weaver simulator workflows without a server: the definitions, the engine's rules, the driver, attachments."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.weaver.approval_driver import ApprovalDriver, ScriptError, parse_step
from infra.simulators.weaver.attachments import contract_pdf, seal_png
from infra.simulators.weaver.clock import OaClock
from infra.simulators.weaver.config import DriverSettings
from infra.simulators.weaver.directory import USERS
from infra.simulators.weaver.engine import WorkflowEngine, remark_html
from infra.simulators.weaver.errors import ServiceError
from infra.simulators.weaver.files import FileStore, content_disposition
from infra.simulators.weaver.requests_store import RequestStore
from infra.simulators.weaver.views import Views
from infra.simulators.weaver.workflows import (
    CAMPAIGN_APPROVAL,
    CONTRACT_APPROVAL,
    NODE_APPROVE,
    NODE_ARCHIVE,
    NODE_CREATE,
    WORKFLOWS,
)

ADMIN, ZHANG = USERS[1], USERS[107]
CAMPAIGN = [{"fieldName": "hdmc", "fieldValue": "新品发布会"}, {"fieldName": "crmid", "fieldValue": "C-1"},
            {"fieldName": "ysje", "fieldValue": "50000"}]  # fmt: skip


@pytest.fixture
def engine() -> WorkflowEngine:
    db = SqliteDb(None)
    return WorkflowEngine(RequestStore(db), FileStore(db), WORKFLOWS, USERS, OaClock(8))


def _driver(engine: WorkflowEngine, **settings: object) -> ApprovalDriver:
    return ApprovalDriver(engine, DriverSettings(interval_s=0, delay_s=3600, **settings))  # type: ignore[arg-type]


def test_workflow_definitions_are_consistent() -> None:
    node_ids = [n.id for wf in WORKFLOWS.values() for n in wf.nodes]
    assert len(node_ids) == len(set(node_ids))
    for wf in WORKFLOWS.values():
        assert [n.type for n in wf.nodes][0] == NODE_CREATE and wf.nodes[-1].type == NODE_ARCHIVE
        assert all(n.type == NODE_APPROVE and n.operator_id in USERS for n in wf.nodes[1:-1])
        assert len({f.name for f in wf.fields}) == len(wf.fields)
        assert wf.field(wf.title_field) is not None
        assert all(d.db_name.startswith(wf.form_table + "_dt") for d in wf.details)
    assert [n.name for n in CAMPAIGN_APPROVAL.nodes] == ["申请人", "部门经理", "市场总监", "归档"]
    assert [n.name for n in CONTRACT_APPROVAL.nodes] == ["申请人", "法务", "财务", "总经理", "归档"]
    assert {"hdmc", "crmid", "ysje"} <= {f.name for f in CAMPAIGN_APPROVAL.fields}
    assert {"htbh", "htmc", "crmdealid", "htje"} <= {f.name for f in CONTRACT_APPROVAL.fields}


def test_create_submit_reject_resubmit(engine: WorkflowEngine) -> None:
    rid = engine.create(ADMIN, 101, "", CAMPAIGN, None, {"isnextflow": "1"}, "请审批")
    req, wf = engine.request(rid)
    assert wf.node(req.current_node_id).name == "部门经理" and req.requestname.endswith("新品发布会")

    engine.submit(USERS[102], rid, "同意")
    engine.reject(USERS[103], rid, "预算超标")
    req, _ = engine.request(rid)
    assert (req.current_node_id, req.isbereject) == (1011, True)
    with pytest.raises(ServiceError) as wrong_user:
        engine.submit(USERS[102], rid, "同意")
    assert wrong_user.value.code == "NO_PERMISSION"

    engine.submit(ADMIN, rid, "已调整", [{"fieldName": "ysje", "fieldValue": "40000"}])
    engine.submit(USERS[102], rid, None)
    engine.submit(USERS[103], rid, None)
    req, _ = engine.request(rid)
    assert req.archived_ms is not None and req.main["ysje"] == "40000" and not req.isbereject
    assert [e.logtype for e in engine.store.logs(rid)] == ["2", "0", "3", "2", "0", "0"]
    with pytest.raises(ServiceError, match="归档"):
        engine.submit(USERS[103], rid, None)


@pytest.mark.parametrize(
    ("workflow_id", "main", "details", "code"),
    [
        (101, [], None, "PARAM_ERROR"),
        ("abc", CAMPAIGN, None, "PARAM_ERROR"),
        (101, [{"fieldName": "hdmc", "fieldValue": "x"}], None, "PARAM_ERROR"),  # required crmid, ysje missing
        (101, [*CAMPAIGN, {"fieldName": "ysje", "fieldValue": "五万"}], None, "PARAM_ERROR"),
        (101, CAMPAIGN, [{"tableDBName": "no_such_dt1", "workflowRequestTableRecords": []}], "PARAM_ERROR"),
        (101, [{"fieldValue": "x"}], None, "PARAM_ERROR"),
        (101, [*CAMPAIGN, {"fieldName": "fj", "fieldValue": "123456"}], None, "PARAM_ERROR"),  # no such file
    ],
)
def test_create_validation(
    engine: WorkflowEngine, workflow_id: object, main: object, details: object, code: str
) -> None:
    with pytest.raises(ServiceError) as error:
        engine.create(ADMIN, workflow_id, "", main, details, {"isnextflow": "1"}, None)
    assert error.value.code == code


def test_creators_are_limited_by_department(engine: WorkflowEngine) -> None:
    with pytest.raises(ServiceError) as error:
        engine.create(USERS[104], 101, "", CAMPAIGN, None, {"isnextflow": "1"}, None)
    assert error.value.code == "NO_PERMISSION"
    assert engine.create(USERS[101], 101, "", CAMPAIGN, None, {}, None) > 0


def test_unknown_fields_are_ignored_and_base64_attachments_stored(engine: WorkflowEngine) -> None:
    pdf = contract_pdf(["x"])
    main = [*CAMPAIGN, {"fieldName": "no_such_field", "fieldValue": "x"},
            {"fieldName": "fj", "fieldValue": [{"filePath": "base64:" + base64.b64encode(pdf).decode(),
                                                "fileName": "方案.pdf"}]}]  # fmt: skip
    rid = engine.create(ADMIN, 101, "", main, None, {"isnextflow": "1"}, None)
    req, wf = engine.request(rid)
    assert "no_such_field" not in req.main
    resources = Views(engine).resources(req, wf)
    assert [(r["name"], r["type"]) for r in resources] == [("方案.pdf", "3")]
    assert b"".join(engine.files.chunks(int(resources[0]["id"]))) == pdf


def test_script_steps_parse() -> None:
    assert parse_step("approve").action == "approve"
    assert parse_step("reject:预算超标，请调整后重新提交").opinion == "预算超标，请调整后重新提交"
    forward = parse_step("forward:张伟:请阅")
    assert (forward.target, forward.opinion) == (ZHANG, "请阅")
    assert parse_step("forward:107").target == ZHANG
    for bad in ("approve-ish", "forward:无名氏", "comment:"):
        with pytest.raises(ScriptError):
            parse_step(bad)


def test_driver_waits_for_the_delay_and_follows_scripts(engine: WorkflowEngine) -> None:
    driver = _driver(engine)
    rid = engine.create(ADMIN, 101, "", CAMPAIGN, None, {"isnextflow": "1"}, None)
    assert driver.tick() == []  # delay not over
    driver.set_script(rid, ["comment:<p>请补充<b>预算明细</b></p>", "reject"])
    actions = [driver.tick(ignore_delay=True)[0].action for _ in range(2)]
    assert actions == ["comment", "reject"]
    assert driver.tick(ignore_delay=True) == []  # API-created request: waits for its creator
    logs = engine.store.logs(rid)
    assert logs[1].remark_html == "<p>请补充<b>预算明细</b></p>" and logs[2].logtype == "3"


def test_driver_contracts_resubmit_after_rejection_and_finish(engine: WorkflowEngine) -> None:
    driver = _driver(engine)
    rid = driver.create_contract("DEAL-1", fields={"htje": "5000"})
    driver.set_script(rid, ["reject:付款条款需修改"])
    acted = [a.action for _ in range(10) for a in driver.tick(ignore_delay=True)]
    assert acted == ["reject", "resubmit", "approve", "approve", "approve"]
    req, wf = engine.request(rid)
    assert wf.node(req.current_node_id).type == NODE_ARCHIVE
    assert req.main["crmdealid"] == "DEAL-1" and len(req.main["htfj"].split(",")) == 2


def test_remark_html_and_content_disposition() -> None:
    assert remark_html("同意") == "<p>同意</p>"
    assert remark_html("a<b") == "<p>a&lt;b</p>"
    assert remark_html("<p>同意。</p>") == "<p>同意。</p>"
    assert remark_html(None) == ""
    assert content_disposition("合同.pdf") == (
        "attachment; filename=\"%E5%90%88%E5%90%8C.pdf\"; filename*=UTF-8''%E5%90%88%E5%90%8C.pdf"
    )


def test_generated_pdf_has_a_correct_xref() -> None:
    pdf = contract_pdf(["Sales Contract (HT-1)", "Amount: CNY 1,000.00", "客户"])
    assert pdf.startswith(b"%PDF-1.4") and pdf.endswith(b"%%EOF\n")
    xref_at = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[xref_at:].startswith(b"xref\n0 6\n")
    offsets = [int(line[:10]) for line in pdf[xref_at:].split(b"\n")[3:8]]
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(f"{number} 0 obj".encode())
    assert b"(Sales Contract \\(HT-1\\)) Tj" in pdf


def test_generated_png_decodes() -> None:
    png = seal_png(32)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + data)
        chunks[kind] = data
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, depth, colour) == (32, 32, 8, 2)
    pixels = zlib.decompress(chunks[b"IDAT"])
    assert len(pixels) == height * (1 + width * 3)
    assert b"\xd0\x10\x10" in pixels and b"\xff\xff\xff" in pixels
