"""The OA's people over the API: ``POST /api/hrm/resful/getHrmUserInfoWithPage`` (e-cology 9 HRM REST).

Parameters in ``params`` (a JSON object, or a JSON string in a form): ``curpage``, ``pagesize`` (at most 1,000) and
optional filters ``loginid``, ``email``, ``lastname`` (exact).  Answer ``{"code": "1", "data": {"dataList": [...],
"page", "pagesize", "totalSize"}}``; each person ``id``, ``loginid``, ``lastname``, ``email``, ``departmentName``,
``jobtitle``, ``status`` (1 = active).  The exact shape of the real answer is not confirmed [L].
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.forms import FormError, parse_body
from infra.simulators.common.requestlog import notes
from infra.simulators.weaver.directory import USERS

PATH = "/api/hrm/resful/getHrmUserInfoWithPage"
FILTERS = ("loginid", "email", "lastname")


def _refused(message: str) -> Response:
    return JSONResponse({"code": "0", "data": {}, "errMsg": message})


async def user_info_with_page(request: Request) -> Response:
    try:
        body = parse_body(await request.body(), request.headers.get("content-type"))
    except FormError as exc:
        return _refused(f"请求参数格式错误：{exc}")
    values: dict[str, Any] = body.json if isinstance(body.json, dict) else dict(body.fields or {})
    raw: Any = values.get("params", values)
    try:
        query = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        page, size = max(1, int(query.get("curpage") or 1)), max(1, min(int(query.get("pagesize") or 10), 1000))
    except (TypeError, ValueError):
        return _refused("params应为JSON对象，curpage/pagesize应为整数")
    people = [u.to_json() for u in USERS.values()]
    for key in FILTERS:
        if query.get(key):
            people = [p for p in people if str(p.get(key) or "").lower() == str(query[key]).strip().lower()]
    notes(request.scope)["returned"] = len(people)
    return JSONResponse({"code": "1", "data": {
        "dataList": people[(page - 1) * size : page * size], "page": page, "pagesize": size,
        "totalSize": len(people)}})


def hrm_routes() -> list[Route]:
    return [Route(PATH, user_info_with_page, methods=["POST"])]
