"""Contract suite of the Huilianyi Open API, driven through the production ``HuilianyiClient``.

Every test runs against the simulator (a real process on a free port with a temporary state dir). The read-only
tests also run against a real Huilianyi sandbox when ``HUILIANYI_CONTRACT_URL``, ``HUILIANYI_CONTRACT_APP_ID`` and
``HUILIANYI_CONTRACT_APP_SECRET`` are set (otherwise they are skipped, and the skip reason says so). On a sandbox
they read whatever reports were modified in the last ``HUILIANYI_CONTRACT_DAYS`` days (default 30); tests that
seed data, inject faults, write back or restart the server need the simulator's ``/__sim/`` API and are skipped
there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.huilianyi.client import HuilianyiClient, parse_instant, request_time
from connectors.huilianyi.settings import HuilianyiSettings
from core.errors import PermanentError, RateLimited, TransientError
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.common.requestlog import token_fingerprint

pytestmark = pytest.mark.integration

APP_ID = "hly-contract-app"
APP_SECRET = "hly-contract-secret"
SIM = "infra.simulators.huilianyi"
#: Seeded reports live in this window (UTC+8 2024-03-01 10:00 …), far from "now", so the driver never mixes in.
SEED_AT = datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)
REPORT_KEYS = {
    "id", "expenseReportOID", "businessCode", "title", "status", "rejectType", "type", "applicantOID",
    "applicantName", "applicantEmployeeId", "departmentName", "companyCode", "currencyCode", "totalAmount",
    "baseCurrencyAmount", "realPaymentAmount", "createdDate", "lastSubmittedDate", "lastModifiedDate",
    "customFormValueVOList", "invoiceVOList",
}  # fmt: skip


# -- targets -------------------------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    settings: HuilianyiSettings
    admin: httpx.Client | None = None  # the simulator's control API; None on a real sandbox

    def sim(self) -> httpx.Client:
        """The control API, or skip: the test seeds, breaks or inspects the server."""
        if self.admin is None:
            pytest.skip(f"needs the simulator's /__sim/ control API; not run against {self.name}")
        return self.admin

    def log(self, path_regex: str) -> list[dict[str, Any]]:
        return list(self.sim().get("/__sim/requests", params={"path_regex": path_regex}).json()["requests"])


def _start(state_dir: Path, log_path: Path, port: int | None = None) -> SimulatorProcess:
    args = ["--state-dir", str(state_dir), "--app-id", APP_ID, "--app-secret", APP_SECRET]
    return SimulatorProcess(SIM, port=port, args=args, log_path=log_path).start()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    root = tmp_path_factory.mktemp("huilianyi-sim")
    process = _start(root / "state", root / "sim.log")
    yield process
    process.stop()


@pytest.fixture(scope="module", params=["simulator", "sandbox"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "sandbox":
        names = ("HUILIANYI_CONTRACT_URL", "HUILIANYI_CONTRACT_APP_ID", "HUILIANYI_CONTRACT_APP_SECRET")
        missing = [n for n in names if not os.environ.get(n)]
        if missing:
            pytest.skip(f"no real Huilianyi sandbox configured (set {', '.join(missing)}); simulator only")
        settings = HuilianyiSettings(
            base_url=os.environ["HUILIANYI_CONTRACT_URL"].rstrip("/"),
            app_id=os.environ["HUILIANYI_CONTRACT_APP_ID"],
            app_secret=SecretStr(os.environ["HUILIANYI_CONTRACT_APP_SECRET"]),
        )
        yield Target("the Huilianyi sandbox", settings)
        return
    sim: SimulatorProcess = request.getfixturevalue("simulator")
    settings = HuilianyiSettings(base_url=sim.base_url, app_id=APP_ID, app_secret=SecretStr(APP_SECRET))
    with httpx.Client(base_url=sim.base_url, timeout=10) as admin:
        yield Target("the simulator", settings, admin)


@pytest.fixture
def fresh(target: Target) -> Target:
    """The target with a clean simulator (no reports, tokens, faults or log); a sandbox as it is."""
    if target.admin is not None:
        assert target.admin.post("/__sim/reset").status_code == 200
    return target


@pytest.fixture
def client(fresh: Target) -> Iterator[HuilianyiClient]:
    with HuilianyiClient(fresh.settings) as hly:
        yield hly


@dataclass
class Sample:
    start: datetime
    end: datetime
    reports: list[dict[str, Any]]


def seed(target: Target, count: int = 1, **body: Any) -> list[dict[str, Any]]:
    response = target.sim().post("/__sim/reports", json={"count": count, **body})
    assert response.status_code == 201, response.text
    return list(response.json()["reports"])


@pytest.fixture
def sample(fresh: Target, client: HuilianyiClient) -> Sample:
    """Reports to read: seeded on the simulator; on a sandbox, those modified in the last few days."""
    if fresh.admin is not None:
        for n, status in enumerate((1001, 1002, 1002, 1003, 1003, 1003, 1004, 1005)):
            at = (SEED_AT + timedelta(minutes=n)).isoformat()
            seed(fresh, 1, status=status, at=at, seed=n, type=1002 if n % 2 else 1001)
        start, end = SEED_AT - timedelta(hours=1), SEED_AT + timedelta(hours=1)
    else:
        end = datetime.now(UTC).replace(microsecond=0)
        start = end - timedelta(days=int(os.environ.get("HUILIANYI_CONTRACT_DAYS") or 30))
    reports = list(client.expense_reports(start, end))
    if not reports:
        pytest.skip(f"{fresh.name} has no expense report modified between {start} and {end}")
    return Sample(start, end, reports)


def codes(reports: list[dict[str, Any]]) -> list[str]:
    return [r["businessCode"] for r in reports]


# -- auth ----------------------------------------------------------------------------------------------------
def test_token_answer_has_the_documented_shape(fresh: Target) -> None:
    s = fresh.settings
    response = httpx.post(
        f"{s.base_url}/oauth/token",
        auth=(s.app_id, s.app_secret.get_secret_value()),
        data={"grant_type": "client_credentials", "scope": "write"},
        timeout=10,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"] and body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert "write" in body["scope"]


def test_bad_credentials_are_permanent_and_calls_need_a_bearer_token(fresh: Target) -> None:
    wrong = fresh.settings.model_copy(update={"app_secret": SecretStr("not-the-secret")})
    with HuilianyiClient(wrong) as hly, pytest.raises(PermanentError):
        hly.detail("ER00000000")

    url = f"{fresh.settings.base_url}/api/open/expenseReport/v2"
    for headers in ({}, {"Authorization": "Bearer 00000000-0000-0000-0000-000000000000"}):
        response = httpx.post(url, json={"page": 1, "size": 1}, headers=headers, timeout=10)
        assert response.status_code == 401
        assert "error" in response.json()


def test_the_token_is_fetched_once_and_reused(fresh: Target, client: HuilianyiClient, sample: Sample) -> None:
    list(client.expense_reports(sample.start, sample.end, page_size=3))
    client.detail(sample.reports[0]["businessCode"])

    assert client.tokens.fetch_count == 1
    if fresh.admin is not None:
        assert len(fresh.log("^/oauth/token$")) == 1
        api_tokens = {e["token"] for e in fresh.log("^/api/")}
        assert api_tokens == {token_fingerprint(client.tokens.token())}


@pytest.mark.parametrize(
    ("loss", "description"), [("expire-tokens", "Access token expired"), ("revoke-tokens", "Invalid access token")]
)
def test_a_refused_token_is_replaced_once_and_the_call_retried(
    fresh: Target, client: HuilianyiClient, loss: str, description: str
) -> None:
    code = seed(fresh)[0]["businessCode"]
    assert client.detail(code) is not None
    first_token = client.tokens.token()
    assert fresh.sim().post(f"/__sim/{loss}").json() in ({"expired": 1}, {"revoked": 1})
    raw = httpx.get(
        f"{fresh.settings.base_url}/api/open/expenseReport/detail",
        params={"businessCode": code},
        headers={"Authorization": f"Bearer {first_token}"},
    )
    assert raw.status_code == 401
    assert raw.json() == {"error": "invalid_token", "error_description": f"{description}: {first_token}"}

    assert client.detail(code) is not None

    assert client.tokens.fetch_count == 2
    calls = fresh.log("^/api/open/expenseReport/detail$")
    assert [c["status"] for c in calls] == [200, 401, 401, 200]  # client, raw check, client refused, retried
    assert calls[-1]["token"] != token_fingerprint(first_token)


def test_a_token_lost_in_flight_is_fetched_again_and_the_same_valid_one_comes_back(
    fresh: Target, client: HuilianyiClient
) -> None:
    code = seed(fresh)[0]["businessCode"]
    client.detail(code)
    fresh.sim().post("/__sim/faults", json={"path_regex": "/detail$", "status": 401, "count": 1})

    assert client.detail(code) is not None

    assert client.tokens.fetch_count == 2
    assert [c["status"] for c in fresh.log("/detail$")] == [200, 401, 200]
    assert len({c["token"] for c in fresh.log("/detail$")}) == 1  # the server handed out the same token


# -- reading -------------------------------------------------------------------------------------------------
def test_the_query_answers_a_bare_array_of_documented_reports(fresh: Target, sample: Sample) -> None:
    with HuilianyiClient(fresh.settings) as hly:
        body = hly.request(
            "POST",
            "/api/open/expenseReport/v2",
            json={
                "lastModifyStartDate": request_time(sample.start),
                "lastModifyEndDate": request_time(sample.end),
                "page": 1,
                "size": 5,
            },
        )

    assert isinstance(body, list) and 0 < len(body) <= 5
    for report in body:
        assert REPORT_KEYS <= set(report), REPORT_KEYS - set(report)
        assert report["lastModifiedDate"].endswith("Z")
        assert sample.start <= parse_instant(report["lastModifiedDate"]) < sample.end
        for line in report["invoiceVOList"]:
            assert {"invoiceOID", "expenseTypeCode", "expenseTypeName", "amount", "currencyCode"} <= set(line)


def test_paging_from_one_gives_the_same_reports_at_any_page_size(
    fresh: Target, client: HuilianyiClient, sample: Sample
) -> None:
    small = list(client.expense_reports(sample.start, sample.end, page_size=3))

    assert codes(small) == codes(sample.reports)
    assert len(set(codes(small))) == len(small)
    if fresh.admin is not None:  # 8 reports at size 3: pages 1, 2 and a short page 3, then stop
        pages = [c for c in fresh.log("/expenseReport/v2$") if c["returned"] in (3, 2)]
        assert [p["returned"] for p in pages[-3:]] == [3, 3, 2]


def test_paging_stops_at_an_empty_page(fresh: Target, client: HuilianyiClient) -> None:
    seed(fresh, 6, at=SEED_AT.isoformat())
    fresh.sim().delete("/__sim/requests")

    found = list(client.expense_reports(SEED_AT, SEED_AT + timedelta(seconds=1), page_size=3))

    assert len(found) == 6
    assert [c["returned"] for c in fresh.log("/expenseReport/v2$")] == [3, 3, 0]


def test_the_window_includes_its_start_and_excludes_its_end(client: HuilianyiClient, sample: Sample) -> None:
    report = sample.reports[len(sample.reports) // 2]
    second = parse_instant(report["lastModifiedDate"]).replace(microsecond=0)
    code = report["businessCode"]

    def window(start: datetime, end: datetime) -> list[str]:
        return codes(list(client.expense_reports(start, end)))

    assert code in window(second, second + timedelta(seconds=1))  # start inclusive, to the second
    assert code not in window(second - timedelta(hours=1), second)  # end exclusive
    assert code not in window(second + timedelta(seconds=1), second + timedelta(hours=1))
    for found in client.expense_reports(second, second + timedelta(seconds=1)):
        assert second <= parse_instant(found["lastModifiedDate"]) < second + timedelta(seconds=1)


def test_status_list_filters(client: HuilianyiClient, sample: Sample) -> None:
    by_status: dict[int, list[str]] = {}
    for report in sample.reports:
        by_status.setdefault(report["status"], []).append(report["businessCode"])

    for status, expected in by_status.items():
        assert codes(list(client.expense_reports(sample.start, sample.end, [status]))) == expected
    two = sorted(by_status)[:2]
    both = list(client.expense_reports(sample.start, sample.end, two))
    assert {r["status"] for r in both} == set(two)
    assert len(both) == sum(len(by_status[s]) for s in two)


def test_detail_matches_the_query_and_unknown_codes_give_none(client: HuilianyiClient, sample: Sample) -> None:
    listed = sample.reports[0]

    detail = client.detail(listed["businessCode"])

    assert detail is not None
    for key in ("id", "businessCode", "status", "rejectType", "lastModifiedDate", "totalAmount"):
        assert detail[key] == listed[key]
    assert client.detail("ER00000000") is None


def test_bad_queries_get_the_api_error_shape_not_a_traceback(fresh: Target, client: HuilianyiClient) -> None:
    fresh.sim()
    with pytest.raises(PermanentError) as caught:
        client.request("POST", "/api/open/expenseReport/v2", json={"lastModifyStartDate": "yesterday"})
    assert caught.value.code == "INVALID_PARAMETER"
    with pytest.raises(PermanentError) as caught:
        client.request(
            "POST", "/api/open/expenseReport/v2", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert caught.value.code == "INVALID_PARAMETER"
    with pytest.raises(PermanentError) as caught:
        client.request("GET", "/api/open/nowhere")
    assert caught.value.code == "NOT_FOUND"
    with pytest.raises(ValueError):
        list(client.expense_reports(None, None, page_size=101))


# -- write-backs and the report's life -----------------------------------------------------------------------
def test_approval_then_finance_audit_move_the_report_and_bump_last_modified(
    fresh: Target, client: HuilianyiClient
) -> None:
    report = seed(fresh, status=1002, at=SEED_AT.isoformat())[0]
    code = report["businessCode"]

    client.approvals_pass(code, operator="E0001", approver="E0001", approval_txt="同意")
    approved = client.detail(code) or {}
    client.audit_pass(code, operator="财务", approval_txt="审核通过", company_oid=report["companyOID"])
    audited = client.detail(code) or {}

    assert (approved["status"], audited["status"]) == (1003, 1004)
    assert parse_instant(audited["lastModifiedDate"]) > parse_instant(report["lastModifiedDate"])
    recent = datetime.now(UTC) - timedelta(minutes=1)
    assert code in codes(list(client.expense_reports(recent, None, [1004])))
    assert code not in codes(list(client.expense_reports(SEED_AT, SEED_AT + timedelta(seconds=1))))
    history = fresh.sim().get(f"/__sim/reports/{code}").json()["history"]
    assert [(h["action"], h["text"]) for h in history[-2:]] == [("approval_pass", "同意"), ("audit_pass", "审核通过")]


def test_rejections_return_the_report_to_editing_with_a_reject_type(fresh: Target, client: HuilianyiClient) -> None:
    finance = seed(fresh, status=1003)[0]["businessCode"]
    approval = seed(fresh, status=1002)[0]["businessCode"]

    client.audit_reject(finance, operator="财务", approval_txt="发票抬头错误")
    advance = fresh.sim().post("/__sim/advance", json={"businessCode": approval, "reject": "approval"})
    assert advance.json()["report"]["rejectType"] == 1002 and advance.json()["moves"] == ["approval_reject"]
    resubmit = fresh.sim().post("/__sim/advance", json={"businessCode": approval, "to": 1002})
    assert resubmit.status_code == 200, resubmit.text

    rejected = client.detail(finance) or {}
    assert (rejected["status"], rejected["rejectType"]) == (1001, 1003)
    resubmitted = client.detail(approval) or {}
    assert (resubmitted["status"], resubmitted["rejectType"]) == (1002, 1000)
    editing = list(client.expense_reports(datetime.now(UTC) - timedelta(minutes=1), None, [1001]))
    assert codes(editing) == [finance]


def test_wrong_transitions_and_unknown_codes_are_permanent_errors(fresh: Target, client: HuilianyiClient) -> None:
    code = seed(fresh, status=1002)[0]["businessCode"]

    with pytest.raises(PermanentError) as wrong:
        client.audit_pass(code, operator="财务")
    assert wrong.value.code == "EXPENSE_REPORT_STATUS_ERROR"
    with pytest.raises(PermanentError) as unknown:
        client.approvals_pass("ER00000000", operator="E0001")
    assert unknown.value.code == "EXPENSE_REPORT_NOT_FOUND"
    with pytest.raises(PermanentError) as entity:
        client.approvals_pass(code, operator="E0001", entity_type=1001)
    assert entity.value.code == "INVALID_PARAMETER"
    assert (client.detail(code) or {})["status"] == 1002


def test_journal_number_write_back_is_idempotent(fresh: Target, client: HuilianyiClient) -> None:
    report = seed(fresh, status=1004)[0]
    code = report["businessCode"]

    client.update_journal_no(code, "FYBX-2024-0001", report["companyCode"])
    first = client.detail(code) or {}
    client.update_journal_no(code, "FYBX-2024-0001", report["companyCode"])
    second = client.detail(code) or {}

    assert first["journalNo"] == second["journalNo"] == "FYBX-2024-0001"
    assert parse_instant(first["lastModifiedDate"]) > parse_instant(report["lastModifiedDate"])
    assert second["lastModifiedDate"] == first["lastModifiedDate"]  # a repeat does not echo into the next poll
    editing = seed(fresh)[0]["businessCode"]
    with pytest.raises(PermanentError):
        client.update_journal_no(editing, "FYBX-2024-0002")


def test_the_driver_creates_and_moves_reports_some_linked_to_campaigns(fresh: Target, client: HuilianyiClient) -> None:
    admin = fresh.sim()
    admin.put("/__sim/driver", json={"campaign_share": 1.0, "campaign_ids": ["CAMPAIGN-1"]})
    created = admin.post("/__sim/tick", json={"seed": 11, "create": 4}).json()["created"]
    admin.put("/__sim/driver", json={"odds": {"submit": 1.0}})
    moved = admin.post("/__sim/tick", json={"seed": 12, "create": 0}).json()["moved"]

    assert len(created) == 4 and {m["businessCode"] for m in moved} == set(created)
    reports = list(client.expense_reports(datetime.now(UTC) - timedelta(minutes=1), None, [1002]))
    assert sorted(codes(reports)) == sorted(created)
    for report in reports:
        forms = {f["fieldCode"]: f["value"] for f in report["customFormValueVOList"]}
        assert forms["crm_campaign_id"] == "CAMPAIGN-1"
        assert report["lastSubmittedDate"] is not None


# -- faults and restarts -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"status": 500}, TransientError),
        ({"status": 503}, TransientError),
        ({"status": 429, "headers": {"Retry-After": "7"}}, RateLimited),
        ({"malformed": True}, TransientError),
    ],
)
def test_faults_map_to_the_error_taxonomy(
    fresh: Target, client: HuilianyiClient, rule: dict[str, Any], error: type[Exception]
) -> None:
    seed(fresh, 3, at=SEED_AT.isoformat())
    fresh.sim().post("/__sim/faults", json={"path_regex": "/expenseReport/v2$", "count": 1, **rule})

    with pytest.raises(error) as caught:
        list(client.expense_reports(SEED_AT, SEED_AT + timedelta(seconds=1)))
    if rule.get("status") == 429:
        assert caught.value.retry_after == 7.0  # type: ignore[attr-defined]

    assert len(list(client.expense_reports(SEED_AT, SEED_AT + timedelta(seconds=1)))) == 3


def test_a_write_applied_behind_a_500_fails_its_retry_with_a_status_error(
    fresh: Target, client: HuilianyiClient
) -> None:
    code = seed(fresh, status=1003)[0]["businessCode"]
    fresh.sim().post("/__sim/faults", json={"path_regex": "/audit/pass$", "status": 500, "apply": True, "count": 1})

    with pytest.raises(TransientError):
        client.audit_pass(code, operator="财务")
    with pytest.raises(PermanentError) as retry:
        client.audit_pass(code, operator="财务")

    assert retry.value.code == "EXPENSE_REPORT_STATUS_ERROR"
    assert (client.detail(code) or {})["status"] == 1004  # the first call did pass: check detail before failing


def test_a_timeout_is_transient(fresh: Target) -> None:
    fresh.sim().post("/__sim/faults", json={"path_regex": "/detail$", "timeout": True, "timeout_s": 1, "count": 1})
    with HuilianyiClient(fresh.settings.model_copy(update={"timeout_s": 0.3})) as hly, pytest.raises(TransientError):
        hly.detail("ER00000000")


def test_state_and_tokens_survive_a_restart(tmp_path: Path, target: Target) -> None:
    target.sim()
    first = _start(tmp_path / "state", tmp_path / "sim.log")
    hly = HuilianyiClient(target.settings.model_copy(update={"base_url": first.base_url}))
    second: SimulatorProcess | None = None
    try:
        with httpx.Client(base_url=first.base_url) as admin:
            report = admin.post("/__sim/reports", json={"status": 1003}).json()["reports"][0]
        hly.audit_pass(report["businessCode"], operator="财务")
        hly.update_journal_no(report["businessCode"], "J-1")
        first.stop()

        second = _start(tmp_path / "state", tmp_path / "sim.log", port=first.port)
        after = hly.detail(report["businessCode"]) or {}
        with httpx.Client(base_url=second.base_url) as admin:
            newer = admin.post("/__sim/reports", json={}).json()["reports"][0]
            token_calls = admin.get("/__sim/requests", params={"path_regex": "/oauth/token"}).json()
    finally:
        hly.close()
        first.stop()
        if second is not None:
            second.stop()

    assert (after["status"], after["journalNo"]) == (1004, "J-1")
    assert hly.tokens.fetch_count == 1 and token_calls["count"] == 0  # the old token is still valid
    assert newer["businessCode"] > report["businessCode"] and newer["id"] > report["id"]
