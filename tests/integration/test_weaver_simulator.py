"""Contract suite of the Weaver e-cology 9 OA API, driven through ``WeaverClient`` the way a connector drives it.

Runs against the simulator (started here on a free port with a temporary state dir; no Kafka/PostgreSQL), and
against a real e-cology sandbox when ``WEAVER_CONTRACT_URL`` and ``WEAVER_CONTRACT_APP_ID`` are set (optional:
``WEAVER_CONTRACT_USER_ID``, default 1; ``WEAVER_CONTRACT_WORKFLOW_ID``, a workflow whose form has the campaign
fields ``hdmc``/``crmid``/``ysje``). Tests that need the simulator's ``/__sim/`` control API (driver, faults,
restarts) run on the simulator only; the sandbox variant is skipped, with the reason printed, without the env.
"""

from __future__ import annotations

import base64
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import SecretStr

from connectors.weaver.client import WeaverClient, WeaverConfig, detail_table
from core.errors import PermanentError, TransientError
from infra.simulators.common.process import SimulatorProcess

pytestmark = pytest.mark.integration

SIM_APP_ID = "5A1D3C6E-0B4F-4E2A-9C1D-CDCHUB000001"
CAMPAIGN_WF = 101
CAMPAIGN_DETAIL = "formtable_main_101_dt1"
TOKEN_ERROR = re.compile(r"^token不存在或者超时：")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLOCK = re.compile(r"^\d{2}:\d{2}:\d{2}$")


@dataclass
class Target:
    """What the suite talks to: the simulator (with its control API) or a real sandbox (without)."""

    base_url: str
    app_id: str
    user_id: int
    campaign_workflow_id: int
    admin: httpx.Client | None
    process: SimulatorProcess | None = None

    def require_sim(self) -> httpx.Client:
        if self.admin is None:
            pytest.skip("needs the simulator's /__sim/ control API (not available on a real sandbox)")
        return self.admin

    def client(self, state_dir: Path, **overrides: Any) -> WeaverClient:
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "app_id": SecretStr(self.app_id),
            "user_id": self.user_id,
            "state_file": state_dir / "weaver-client.json",
            "timeout_s": 10,
        }
        return WeaverClient(WeaverConfig(**{**settings, **overrides}))


def _start_sim(state_dir: Path, log_path: Path) -> SimulatorProcess:
    args = [
        "--state-dir", str(state_dir), "--app-id", SIM_APP_ID, "--secrets-dir", str(state_dir / "secrets"),
        "--driver-interval", "0", "--approval-delay", "3600",
    ]  # fmt: skip
    return SimulatorProcess("infra.simulators.weaver", args=args, log_path=log_path).start()


@pytest.fixture(scope="module", params=["simulator", "sandbox"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if request.param == "sandbox":
        url, app_id = os.environ.get("WEAVER_CONTRACT_URL"), os.environ.get("WEAVER_CONTRACT_APP_ID")
        if not (url and app_id):
            pytest.skip("real e-cology sandbox not configured: set WEAVER_CONTRACT_URL and WEAVER_CONTRACT_APP_ID")
        yield Target(
            url.rstrip("/"), app_id, int(os.environ.get("WEAVER_CONTRACT_USER_ID", "1")),
            int(os.environ.get("WEAVER_CONTRACT_WORKFLOW_ID", str(CAMPAIGN_WF))), admin=None,
        )  # fmt: skip
        return
    root = tmp_path_factory.mktemp("weaver-sim")
    process = _start_sim(root / "state", root / "weaver-sim.log")
    with httpx.Client(base_url=process.base_url, timeout=10) as admin:
        yield Target(process.base_url, SIM_APP_ID, 1, CAMPAIGN_WF, admin=admin, process=process)
    process.stop()


@pytest.fixture
def oa(target: Target, tmp_path: Path) -> Iterator[WeaverClient]:
    """A fresh client (own state file); on the simulator, after a reset (no requests, tokens, faults, log)."""
    if target.admin is not None:
        assert target.admin.post("/__sim/reset").status_code == 200
    client = target.client(tmp_path)
    yield client
    client.close()


def _campaign(name: str = "春季新品发布会", budget: str = "50000") -> dict[str, str]:
    return {"hdmc": name, "crmid": "4876876000000123001", "ysje": budget, "hdlx": "线下活动"}


def _log_types(oa: WeaverClient, request_id: int) -> list[str]:
    return [row["logtype"] for row in sorted(oa.request_log(request_id), key=lambda r: int(r["logid"]))]


def _requests(admin: httpx.Client, path_regex: str) -> list[dict[str, Any]]:
    return admin.get("/__sim/requests", params={"path_regex": path_regex}).json()["requests"]


def _tick(admin: httpx.Client, rounds: int = 10) -> list[dict[str, Any]]:
    return admin.post("/__sim/tick", json={"rounds": rounds}).json()["acted"]


# -- auth ----------------------------------------------------------------------------------------------------
def test_regist_and_applytoken_with_real_rsa(target: Target) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cpk = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    with httpx.Client(base_url=target.base_url, timeout=10) as http:
        registered = http.post("/api/ec/dev/auth/regist", headers={"appid": target.app_id, "cpk": cpk}).json()
        assert registered["status"] is True and registered["secrit"] and registered["spk"]
        spk = serialization.load_der_public_key(base64.b64decode(registered["spk"]))
        assert isinstance(spk, rsa.RSAPublicKey)
        secret = base64.b64encode(spk.encrypt(registered["secrit"].encode(), padding.PKCS1v15())).decode()
        answer = http.post(
            "/api/ec/dev/auth/applytoken", headers={"appid": target.app_id, "secret": secret, "time": "600"}
        ).json()
        assert {k: answer[k] for k in ("code", "status", "msg")} == {"code": 0, "status": True, "msg": "获取成功!"}
        assert answer["token"]

        wrong = base64.b64encode(spk.encrypt(b"not-the-secrit", padding.PKCS1v15())).decode()
        refused = http.post("/api/ec/dev/auth/applytoken", headers={"appid": target.app_id, "secret": wrong})
        assert refused.json()["status"] is False
        unknown_app = http.post("/api/ec/dev/auth/regist", headers={"appid": "NO-SUCH-APP", "cpk": cpk}).json()
        assert unknown_app["status"] is False


def test_unknown_token_gets_the_token_error(target: Target, oa: WeaverClient) -> None:
    registration = oa.registration()
    spk = serialization.load_der_public_key(base64.b64decode(registration.spk))
    assert isinstance(spk, rsa.RSAPublicKey)
    userid = base64.b64encode(spk.encrypt(str(target.user_id).encode(), padding.PKCS1v15())).decode()
    answer = httpx.get(
        f"{target.base_url}/api/workflow/paService/getRequestStatus",
        params={"requestId": "1"},
        headers={"appid": target.app_id, "token": "no-such-token", "userid": userid},
    )
    assert answer.status_code == 200
    assert answer.json() == {"msg": "token不存在或者超时：no-such-token", "code": -1, "status": False}


def test_expired_token_is_applied_for_again_once(target: Target, oa: WeaverClient) -> None:
    admin = target.require_sim()
    request_id = oa.create_request(target.campaign_workflow_id, _campaign())
    assert oa.token_count == 1 and oa.regist_count == 1

    assert admin.post("/__sim/expire-tokens").json()["expired"] >= 1
    assert oa.request_status(request_id)["requestId"] == str(request_id)

    assert oa.token_count == 2 and oa.regist_count == 1
    status_calls = _requests(admin, "getRequestStatus")
    assert [c["status"] for c in status_calls] == [200, 200]
    assert len(_requests(admin, "applytoken")) == 2


def test_token_lifetime_follows_the_time_header(target: Target, tmp_path: Path) -> None:
    admin = target.require_sim()
    admin.post("/__sim/reset")
    client = target.client(tmp_path, token_ttl_s=1)
    first = client.token()
    time.sleep(1.2)
    stale = httpx.get(
        f"{target.base_url}/api/workflow/paService/getMyWorkflowRequestList",
        headers=client._headers(first, None),
    ).json()
    assert stale["status"] is False and TOKEN_ERROR.match(stale["msg"])
    assert client.create_request(target.campaign_workflow_id, _campaign()) > 0  # renewed before use
    assert client.token_count == 2 and client.token() != first
    client.close()


def test_userid_must_decrypt_to_an_existing_user(target: Target, oa: WeaverClient) -> None:
    with pytest.raises(PermanentError):
        oa.request_status(1, user_id=987654)


def test_the_hrm_directory_lists_every_person_with_login_and_email_page_by_page(target: Target,
                                                                              oa: WeaverClient) -> None:
    people = oa.users(page_size=4)  # three pages of the 11 people
    assert len(people) == len({p["id"] for p in people}) >= 11
    lina = next(p for p in people if p["loginid"] == "lina")
    assert lina["lastname"] == "李娜" and lina["email"] == "lina@cdchub.local" and str(lina["id"]) == "101"
    body = oa.call("POST", "/api/hrm/resful/getHrmUserInfoWithPage", checked=False,
                   data={"params": '{"curpage": 1, "pagesize": 10, "loginid": "LINA"}'})
    assert [p["id"] for p in body["data"]["dataList"]] == [101] and body["data"]["totalSize"] == 1
    refused = oa.call("POST", "/api/hrm/resful/getHrmUserInfoWithPage", checked=False, data={"params": "{bad"})
    assert refused["code"] != "1"


def test_registration_is_persisted_and_redone_when_forgotten(target: Target, oa: WeaverClient, tmp_path: Path) -> None:
    admin = target.require_sim()
    oa.token()
    again = target.client(tmp_path)  # same state file: no second regist
    again.token()
    assert again.regist_count == 0

    admin.post("/__sim/forget-registrations")
    fresh = target.client(tmp_path)
    assert fresh.create_request(target.campaign_workflow_id, _campaign()) > 0
    assert fresh.regist_count == 1
    again.close()
    fresh.close()


# -- creating and reading requests ---------------------------------------------------------------------------
@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_create_and_read_back(target: Target, oa: WeaverClient, as_json: bool) -> None:
    request_id = oa.create_request(
        target.campaign_workflow_id,
        _campaign("双十一促销活动（华东区）"),
        request_name="市场活动审批-双十一促销活动",
        detail_data=[
            detail_table(CAMPAIGN_DETAIL, [{"fyxm": "场地租赁", "je": "20000"}, {"fyxm": "物料", "je": "5000"}])
        ],
        remark="请审批",
        as_json=as_json,
    )
    status = oa.request_status(request_id)
    assert status["requestName"] == "市场活动审批-双十一促销活动"
    assert status["workflowId"] == str(target.campaign_workflow_id)
    assert int(status["currentNodeType"]) == 1 and status["creatorId"] == str(target.user_id)

    form = oa.workflow_request(request_id)
    main = {
        f["fieldName"]: f["fieldValue"]
        for f in form["workflowMainTableInfo"]["requestRecords"][0]["workflowRequestTableFields"]
    }
    assert main["hdmc"] == "双十一促销活动（华东区）" and main["crmid"] == "4876876000000123001"
    details = form["workflowDetailTableInfos"][0]["workflowRequestTableRecords"]
    assert [r["workflowRequestTableFields"][0]["fieldValue"] for r in details] == ["场地租赁", "物料"]

    log = oa.request_log(request_id)
    assert [row["logtype"] for row in log] == ["2"]
    assert DATE.match(log[0]["operatedate"]) and CLOCK.match(log[0]["operatetime"])
    assert log[0]["remarkHtml"] == "<p>请审批</p>"


def test_saved_draft_stays_on_the_create_node(target: Target, oa: WeaverClient) -> None:
    request_id = oa.create_request(target.campaign_workflow_id, {"hdmc": "草稿活动"}, submit=False)
    assert int(oa.request_status(request_id)["currentNodeType"]) == 0
    assert _log_types(oa, request_id) == ["1"]
    with pytest.raises(PermanentError) as missing:
        oa.submit_request(request_id, remark="提交")
    assert missing.value.code == "PARAM_ERROR"


@pytest.mark.parametrize(
    ("workflow_id", "main"),
    [(CAMPAIGN_WF, {}), (999_999, {"hdmc": "x"}), (CAMPAIGN_WF, {"hdmc": "缺少预算"})],
    ids=["empty-mainData", "unknown-workflow", "missing-required"],
)
def test_param_errors(target: Target, oa: WeaverClient, workflow_id: int, main: dict[str, str]) -> None:
    wf = target.campaign_workflow_id if workflow_id == CAMPAIGN_WF else workflow_id
    with pytest.raises(PermanentError) as error:
        oa.create_request(wf, main)
    assert error.value.code == "PARAM_ERROR"


def test_no_permission(target: Target, oa: WeaverClient) -> None:
    target.require_sim()
    with pytest.raises(PermanentError) as create:
        oa.create_request(CAMPAIGN_WF, _campaign(), user_id=104)  # 刘洋, 法务部
    assert create.value.code == "NO_PERMISSION"
    request_id = oa.create_request(CAMPAIGN_WF, _campaign())
    with pytest.raises(PermanentError) as approve:
        oa.submit_request(request_id, remark="同意", user_id=105)  # not the current approver
    assert approve.value.code == "NO_PERMISSION"


def test_bad_requests_get_weaver_shapes_not_tracebacks(target: Target, oa: WeaverClient) -> None:
    target.require_sim()
    headers = oa._headers(oa.token(), None)
    base = f"{target.base_url}/api/workflow/paService"
    garbage = httpx.post(
        f"{base}/doCreateRequest", content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert garbage.json()["code"] == "PARAM_ERROR"
    bad_json_param = httpx.post(
        f"{base}/doCreateRequest", data={"workflowId": "101", "mainData": "[{"}, headers=headers
    )
    assert bad_json_param.json()["code"] == "PARAM_ERROR"
    no_id = httpx.get(f"{base}/getRequestStatus", headers=headers)
    assert no_id.json()["code"] == "PARAM_ERROR"
    broken_upload = httpx.post(
        f"{target.base_url}/api/doc/upload/uploadFile2Doc",
        content=b"--x\r\nnonsense",
        headers={**headers, "content-type": "multipart/form-data; boundary=x"},
    )
    assert broken_upload.json()["code"] == "PARAM_ERROR"
    unknown = httpx.get(f"{target.base_url}/api/workflow/paService/noSuchService", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["status"] is False
    for answer in (garbage, bad_json_param, no_id, broken_upload, unknown):
        assert "Traceback" not in answer.text


# -- the approval driver -------------------------------------------------------------------------------------
def test_scripted_approvals_archive_the_request(target: Target, oa: WeaverClient) -> None:
    admin = target.require_sim()
    request_id = oa.create_request(CAMPAIGN_WF, _campaign())
    admin.post(
        "/__sim/script", json={"requestId": request_id, "steps": ["approve:<p>同意。</p>", "approve:预算合理，同意"]}
    )
    assert _tick(admin, rounds=1)[0]["nodeName"] == "部门经理"
    assert oa.request_status(request_id)["currentNodeName"] == "市场总监"
    _tick(admin)

    status = oa.request_status(request_id)
    assert (int(status["currentNodeType"]), status["status"]) == (3, "归档")
    log = sorted(oa.request_log(request_id), key=lambda r: int(r["logid"]))
    assert [(r["logtype"], r["nodename"], r["operatorName"], r["operatorDept"]) for r in log] == [
        ("2", "申请人", "系统管理员", "信息部"),
        ("0", "部门经理", "王强", "市场部"),
        ("0", "市场总监", "陈静", "市场部"),
    ]
    assert [r["remarkHtml"] for r in log[1:]] == ["<p>同意。</p>", "<p>预算合理，同意</p>"]
    assert _tick(admin) == []  # archived requests are left alone


def test_reject_edit_resubmit_and_forward(target: Target, oa: WeaverClient) -> None:
    admin = target.require_sim()
    request_id = oa.create_request(CAMPAIGN_WF, _campaign(budget="80000"))
    steps = ["approve", "reject:预算超标，请调整后重新提交", "forward:张伟", "approve"]
    assert admin.post("/__sim/script", json={"requestId": request_id, "steps": steps}).status_code == 200
    acted = _tick(admin)
    assert [a["action"] for a in acted] == ["approve", "reject"]

    status = oa.request_status(request_id)
    assert (int(status["currentNodeType"]), status["isbereject"]) == (0, "1")
    todo = {row["requestId"]: row for row in oa.todo_requests()}
    assert todo[str(request_id)]["isbereject"] == "1"
    assert _tick(admin) == []  # the creator (us) must act first

    oa.submit_request(request_id, remark="已将预算调整为6万", main_data={"ysje": "60000"})
    acted = _tick(admin)
    assert [(a["action"], a["scripted"]) for a in acted] == [
        ("forward", True), ("approve", True), ("approve", False),
    ]  # fmt: skip
    assert int(oa.request_status(request_id)["currentNodeType"]) == 3
    log = sorted(oa.request_log(request_id), key=lambda r: int(r["logid"]))
    assert [r["logtype"] for r in log] == ["2", "0", "3", "2", "7", "0", "0"]
    reject, forward = log[2], log[4]
    assert reject["remarkHtml"] == "<p>预算超标，请调整后重新提交</p>" and reject["operatorName"] == "陈静"
    assert forward["receivedPersons"] == "张伟" and forward["nodename"] == "部门经理"
    main = oa.workflow_request(request_id)["workflowMainTableInfo"]["requestRecords"][0]["workflowRequestTableFields"]
    assert {f["fieldName"]: f["fieldValue"] for f in main}["ysje"] == "60000"


def test_approvers_can_act_through_the_api(target: Target, oa: WeaverClient) -> None:
    target.require_sim()
    request_id = oa.create_request(CAMPAIGN_WF, _campaign())
    oa.submit_request(request_id, remark="<p>同意。</p>", user_id=102)
    oa.reject_request(request_id, remark="请补充活动方案", user_id=103)
    assert oa.request_status(request_id)["isbereject"] == "1"
    assert _log_types(oa, request_id) == ["2", "0", "3"]
    with pytest.raises(PermanentError):
        oa.reject_request(request_id, remark="创建节点不能退回")


def test_background_driver_acts_after_the_delay(target: Target, oa: WeaverClient) -> None:
    admin = target.require_sim()
    request_id = oa.create_request(CAMPAIGN_WF, _campaign())
    admin.put("/__sim/driver", json={"interval_s": 0.1, "delay_s": 0})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and int(oa.request_status(request_id)["currentNodeType"]) != 3:
        time.sleep(0.1)
    admin.put("/__sim/driver", json={"interval_s": 0})
    assert int(oa.request_status(request_id)["currentNodeType"]) == 3


def test_random_outcomes_are_reproducible_with_a_seed(target: Target, oa: WeaverClient) -> None:
    admin = target.require_sim()

    def run() -> list[str]:
        admin.post("/__sim/reset")
        admin.put("/__sim/driver", json={"outcomes": "random", "reject_rate": 0.4, "forward_rate": 0.2, "seed": 7})
        for deal in ("D-1", "D-2", "D-3"):
            admin.post("/__sim/contracts", json={"crmDealId": deal})
        actions = [f"{a['nodeName']}:{a['action']}" for a in _tick(admin, rounds=60)]
        states = admin.get("/__sim/workflow-requests").json()["requests"]
        assert all(s["currentNodeType"] == "3" for s in states), "random runs always finish"
        return actions

    first, second = run(), run()
    assert first == second
    assert any(a.endswith(":reject") for a in first) and any(a.endswith(":resubmit") for a in first)


# -- files ---------------------------------------------------------------------------------------------------
def test_contract_attachments_are_a_real_pdf_and_png(target: Target, oa: WeaverClient, tmp_path: Path) -> None:
    admin = target.require_sim()
    created = admin.post("/__sim/contracts", json={"crmDealId": "4876876000000456001", "fields": {"htje": "99000"}})
    assert created.status_code == 201
    request_id = created.json()["requestId"]
    assert created.json()["main"]["crmdealid"] == "4876876000000456001"

    resources = oa.request_resources(request_id)
    assert [r["type"] for r in resources] == ["3", "3"]
    assert all(r["downloadUrl"] == f"/weaver/weaver.file.FileDownload?fileid={r['id']}&download=1" for r in resources)
    files = [oa.download(r["downloadUrl"], tmp_path / "downloads") for r in resources]
    pdf, png = files
    assert pdf.name.startswith("合同正文_HT-") and pdf.name.endswith(".pdf") and pdf.content_type == "application/pdf"
    assert png.name == "盖章页扫描件.png" and png.content_type == "image/png"
    pdf_bytes, png_bytes = pdf.path.read_bytes(), png.path.read_bytes()
    assert pdf_bytes.startswith(b"%PDF-") and pdf_bytes.rstrip().endswith(b"%%EOF")
    assert png_bytes.startswith(b"\x89PNG\r\n\x1a\n") and png_bytes[12:16] == b"IHDR"
    (length,) = struct.unpack(">I", png_bytes[8:12])
    assert zlib.crc32(png_bytes[12 : 16 + length]) == struct.unpack(">I", png_bytes[16 + length : 20 + length])[0]
    assert [f.path.name for f in files] == [r["name"] for r in resources]

    raw = httpx.get(target.base_url + resources[1]["downloadUrl"], headers=oa._headers(oa.token(), None))
    assert "filename*=UTF-8''%E7%9B%96" in raw.headers["content-disposition"]


def test_upload_attach_and_download(target: Target, oa: WeaverClient, tmp_path: Path) -> None:
    source = tmp_path / "活动方案（终稿）.txt"
    source.write_text("活动方案：上海站 3 月 15 日\n", encoding="utf-8")
    fileid = oa.upload(source)
    request_id = oa.create_request(target.campaign_workflow_id, {**_campaign(), "fj": str(fileid)})
    resources = oa.request_resources(request_id)
    assert [(r["id"], r["name"]) for r in resources] == [(str(fileid), "活动方案（终稿）.txt")]
    downloaded = oa.download(resources[0]["downloadUrl"], tmp_path / "out")
    assert downloaded.path.read_bytes() == source.read_bytes() and downloaded.name == source.name


# -- faults and restarts -------------------------------------------------------------------------------------
def test_injected_faults(target: Target, oa: WeaverClient) -> None:
    admin = target.require_sim()
    request_id = oa.create_request(CAMPAIGN_WF, _campaign())

    admin.post("/__sim/faults", json={"path_regex": "getRequestStatus", "status": 500, "count": 1})
    with pytest.raises(TransientError):
        oa.request_status(request_id)
    admin.post("/__sim/faults", json={"path_regex": "getRequestLog", "malformed": True, "count": 1})
    with pytest.raises(TransientError):
        oa.request_log(request_id)
    token_loss = {"msg": "token不存在或者超时：lost", "code": -1, "status": False}
    admin.post("/__sim/faults", json={"path_regex": "getRequestStatus", "status": 200, "body": token_loss, "count": 1})
    assert oa.request_status(request_id)["requestId"] == str(request_id)
    assert oa.token_count == 2

    admin.post("/__sim/faults", json={"path_regex": "doCreateRequest", "status": 502, "apply": True, "count": 1})
    with pytest.raises(TransientError):
        oa.create_request(CAMPAIGN_WF, _campaign("超时后已创建"))
    assert "超时后已创建" in {row["requestName"].split("-")[-1] for row in oa.my_requests()}  # the write happened


def test_state_survives_a_restart(target: Target, tmp_path: Path) -> None:
    target.require_sim()
    state, log = tmp_path / "state", tmp_path / "restart.log"
    first = _start_sim(state, log)
    try:
        client = target.client(tmp_path, base_url=first.base_url)
        request_id = client.create_request(CAMPAIGN_WF, _campaign("重启前创建"))
        contract = httpx.post(f"{first.base_url}/__sim/contracts", json={"crmDealId": "D-R"}).json()["requestId"]
        contract = int(contract)
        token = client.token()
    finally:
        first.stop()
    second = SimulatorProcess(
        "infra.simulators.weaver", port=first.port, log_path=log,
        args=["--state-dir", str(state), "--app-id", SIM_APP_ID, "--driver-interval", "0"],
    ).start()  # fmt: skip
    try:
        assert client.request_status(request_id)["requestName"].endswith("重启前创建")
        assert client.token() == token and client.token_count == 1  # token and server key survived
        resources = client.request_resources(contract)
        assert client.download(resources[0]["downloadUrl"], tmp_path / "dl").path.read_bytes().startswith(b"%PDF-")
        assert client.create_request(CAMPAIGN_WF, _campaign()) > contract  # ids keep counting
        client.close()
    finally:
        second.stop()
