"""HTTP handlers of the simulated Huilianyi Open API and its OAuth token endpoint.

Write-backs answer 200 ``{"errorCode": "0000", "message": "SUCCESS"}`` [L]; errors are described in
:mod:`errors`. Identification of the report is by ``businessCode`` (``businessKey`` in the journal-number
call, as documented).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, cast
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.requestlog import notes
from infra.simulators.huilianyi.auth import basic_credentials
from infra.simulators.huilianyi.errors import SUCCESS, HuilianyiApiError, OAuthError, invalid_parameter
from infra.simulators.huilianyi.query import parse_window_query
from infra.simulators.huilianyi.reports import api_view
from infra.simulators.huilianyi.simulator import HuilianyiSimulator

EXPENSE_REPORT_ENTITY = 1002  # approvals/pass entityType of an expense report (1001 would be an application)


def _sim(request: Request) -> HuilianyiSimulator:
    return cast(HuilianyiSimulator, request.app.state.sim)


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid_parameter("body", "not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_parameter("body", "must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise invalid_parameter(name, "is required")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise invalid_parameter(name, "must be a string")
    return str(value)


def _business_code(request: Request, body: dict[str, Any]) -> str:
    code = _text(body, "businessCode", required=True)
    assert code is not None
    notes(request.scope)["business_code"] = code
    return code


async def oauth_token(request: Request) -> Response:
    params = dict(request.query_params)
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        params.update(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    authorization = request.headers.get("authorization")
    with contextlib.suppress(OAuthError):
        notes(request.scope)["client_id"] = basic_credentials(authorization)[0]
    return _json(_sim(request).authority.mint(authorization, params))


async def expense_reports(request: Request) -> Response:
    query = parse_window_query(await _json_body(request))
    reports = [api_view(doc) for doc in _sim(request).store.search(query)]
    notes(request.scope)["returned"] = len(reports)
    return _json(reports)


async def expense_report_detail(request: Request) -> Response:
    code = _business_code(request, dict(request.query_params))
    doc = _sim(request).workflow.load(code)
    notes(request.scope)["returned"] = 1
    return _json(api_view(doc))


def _check_company(sim: HuilianyiSimulator, code: str, company_oid: str | None) -> None:
    if company_oid and company_oid != sim.workflow.load(code)["companyOID"]:
        raise HuilianyiApiError(400, "COMPANY_MISMATCH", f"报销单 {code} 不属于公司 {company_oid}")


async def _audit(request: Request, action: str) -> Response:
    body = await _json_body(request)
    code = _business_code(request, body)
    sim = _sim(request)
    _check_company(sim, code, _text(body, "companyOID"))
    sim.workflow.move(code, action, operator=_text(body, "operator"), text=_text(body, "approvalTxt"))
    return _json(SUCCESS)


async def audit_pass(request: Request) -> Response:
    return await _audit(request, "audit_pass")


async def audit_reject(request: Request) -> Response:
    return await _audit(request, "audit_reject")


async def approvals_pass(request: Request) -> Response:
    body = await _json_body(request)
    code = _business_code(request, body)
    entity = _text(body, "entityType") or str(EXPENSE_REPORT_ENTITY)
    if entity != str(EXPENSE_REPORT_ENTITY):
        raise invalid_parameter("entityType", f"{entity} is not an expense report ({EXPENSE_REPORT_ENTITY})")
    operator = _text(body, "approver") or _text(body, "operator")
    _sim(request).workflow.move(code, "approval_pass", operator=operator, text=_text(body, "approvalTxt"))
    return _json(SUCCESS)


async def update_journal_no(request: Request) -> Response:
    params: dict[str, Any] = dict(request.query_params)
    if not params.get("businessKey"):  # lenient [L]: the same fields in a JSON body
        params = {**(await _json_body(request)), **params}
    params.setdefault("businessKey", params.get("businessCode"))
    code = _text(params, "businessKey", required=True)
    journal_no = _text(params, "journalNo", required=True)
    assert code is not None and journal_no is not None
    notes(request.scope)["business_code"] = code
    _sim(request).workflow.write_journal_no(code, journal_no, company_code=_text(params, "companyCode"))
    return _json(SUCCESS)


def api_routes() -> list[Route]:
    base = "/api/open"
    return [
        Route("/oauth/token", oauth_token, methods=["POST"]),
        Route(f"{base}/expenseReport/v2", expense_reports, methods=["POST"]),
        Route(f"{base}/expenseReport/detail", expense_report_detail, methods=["GET"]),
        Route(f"{base}/expenseReport/audit/pass", audit_pass, methods=["POST"]),
        Route(f"{base}/expenseReport/audit/reject", audit_reject, methods=["POST"]),
        Route(f"{base}/approvals/pass", approvals_pass, methods=["POST"]),
        Route(f"{base}/expenseReport/update/journalNo", update_journal_no, methods=["PUT"]),
    ]
