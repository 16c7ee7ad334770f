"""HTTP handlers of the simulated OA: token auth, workflow services, document upload, file download.

Parameters may come in the query string, a URL-encoded form (values like ``mainData`` as JSON strings), or a
JSON body (values as JSON or as JSON strings); all three are merged, body over query.
"""

from __future__ import annotations

import json
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from infra.simulators.common.forms import FormError, parse_body
from infra.simulators.common.requestlog import notes
from infra.simulators.weaver.clock import now_ms
from infra.simulators.weaver.errors import SUCCESS, param_error, service_body
from infra.simulators.weaver.files import DOWNLOAD_PATH, content_disposition
from infra.simulators.weaver.gate import principal_of
from infra.simulators.weaver.simulator import WeaverSimulator

SERVICE = "/api/workflow/paService"
JSON_PARAMS = ("mainData", "detailData", "otherParams")


def _sim(request: Request) -> WeaverSimulator:
    return cast(WeaverSimulator, request.app.state.sim)


def ok(data: Any) -> Response:
    return JSONResponse(service_body(SUCCESS, data))


async def params(request: Request) -> dict[str, Any]:
    merged: dict[str, Any] = dict(request.query_params)
    if request.method == "GET":
        return merged
    try:
        body = parse_body(await request.body(), request.headers.get("content-type"))
    except FormError as exc:
        raise param_error(f"请求参数格式错误：{exc}") from exc
    if body.is_json:
        if body.json is not None and not isinstance(body.json, dict):
            raise param_error("请求体应为JSON对象")
        merged.update(body.json or {})
    else:
        merged.update(body.fields)
    for name in JSON_PARAMS:
        value = merged.get(name)
        if isinstance(value, str) and value.strip():
            try:
                merged[name] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise param_error(f"{name}不是合法的JSON：{exc.msg}") from exc
    return merged


def _request_id(values: dict[str, Any]) -> Any:
    value = values.get("requestId", values.get("requestid"))
    if value in (None, ""):
        raise param_error("requestId不能为空")
    return value


# -- auth ----------------------------------------------------------------------------------------------------
async def regist(request: Request) -> Response:
    answer = _sim(request).authority.regist(request.headers.get("appid"), request.headers.get("cpk"))
    notes(request.scope)["appid"] = request.headers.get("appid")
    return JSONResponse(answer)


async def apply_token(request: Request) -> Response:
    notes(request.scope)["appid"] = request.headers.get("appid")
    answer = _sim(request).authority.apply_token(
        request.headers.get("appid"), request.headers.get("secret"), request.headers.get("time")
    )
    return JSONResponse(answer)


# -- workflow services ---------------------------------------------------------------------------------------
async def do_create_request(request: Request) -> Response:
    values = await params(request)
    user = principal_of(request.scope).user
    request_id = _sim(request).engine.create(
        user, values.get("workflowId"), values.get("requestName"), values.get("mainData"),
        values.get("detailData"), values.get("otherParams"), values.get("remark"),
    )  # fmt: skip
    notes(request.scope)["request_id"] = request_id
    return ok({"requestid": request_id})


async def submit_request(request: Request) -> Response:
    values = await params(request)
    sim = _sim(request)
    req = sim.engine.submit(
        principal_of(request.scope).user, _request_id(values), values.get("remark"),
        values.get("mainData"), values.get("detailData"),
    )  # fmt: skip
    return ok({"requestid": req.requestid})


async def reject_request(request: Request) -> Response:
    values = await params(request)
    req = _sim(request).engine.reject(
        principal_of(request.scope).user, _request_id(values), values.get("remark")
    )
    return ok({"requestid": req.requestid})


async def save_request_log(request: Request) -> Response:
    values = await params(request)
    req = _sim(request).engine.comment(
        principal_of(request.scope).user, _request_id(values), values.get("remark")
    )
    return ok({"requestid": req.requestid})


def _viewed(request: Request, values: dict[str, Any]) -> tuple[Any, Any]:
    return _sim(request).engine.check_view(principal_of(request.scope).user, _request_id(values))


async def get_request_status(request: Request) -> Response:
    req, wf = _viewed(request, await params(request))
    return ok(_sim(request).views.status(req, wf))


async def get_workflow_request(request: Request) -> Response:
    req, wf = _viewed(request, await params(request))
    return ok(_sim(request).views.workflow_request(req, wf))


async def get_request_log(request: Request) -> Response:
    req, wf = _viewed(request, await params(request))
    rows = _sim(request).views.log(req, wf)
    notes(request.scope)["returned"] = len(rows)
    return ok(rows)


async def get_request_resources(request: Request) -> Response:
    req, wf = _viewed(request, await params(request))
    rows = _sim(request).views.resources(req, wf)
    notes(request.scope)["returned"] = len(rows)
    return ok(rows)


def _page(values: dict[str, Any]) -> tuple[int, int]:
    try:
        return max(1, int(values.get("pageNo") or 1)), max(1, min(int(values.get("pageSize") or 10), 500))
    except (TypeError, ValueError) as exc:
        raise param_error("pageNo/pageSize应为整数") from exc


def _list(request: Request, values: dict[str, Any], todo: bool) -> Response:
    sim = _sim(request)
    user = principal_of(request.scope).user
    rows = []
    for req in reversed(sim.store.all()):
        wf = sim.engine.workflows[req.workflowid]
        if (todo and sim.engine.current_operator(req, wf) == user.id) or (
            not todo and req.creatorid == user.id
        ):
            rows.append(sim.views.list_row(req, wf))
    page_no, page_size = _page(values)
    page = rows[(page_no - 1) * page_size : page_no * page_size]
    notes(request.scope)["returned"] = len(page)
    return ok(page)


async def get_todo_list(request: Request) -> Response:
    return _list(request, await params(request), todo=True)


async def get_my_list(request: Request) -> Response:
    return _list(request, await params(request), todo=False)


# -- documents -----------------------------------------------------------------------------------------------
async def upload_file(request: Request) -> Response:
    try:
        body = parse_body(await request.body(), request.headers.get("content-type"))
    except FormError as exc:
        raise param_error(f"上传格式错误：{exc}") from exc
    upload = next((f for f in body.files if f.field_name == "file"), None)
    if upload is None:
        raise param_error("缺少上传文件参数file")
    name = body.fields.get("name") or upload.filename or "未命名文件"
    meta = _sim(request).files.add(
        name, upload.data, now_ms(), upload.content_type, principal_of(request.scope).user.id
    )
    data = {
        "fileid": meta.fileid,
        "imagefileid": meta.fileid,
        "filename": meta.filename,
        "filesize": meta.size,
    }
    return JSONResponse({"api_status": True, "status": True, **service_body(SUCCESS, data)})


async def download(request: Request) -> Response:
    fileid = request.query_params.get("fileid", "")
    sim = _sim(request)
    meta = sim.files.meta(int(fileid)) if fileid.isdigit() else None
    if meta is None:
        return JSONResponse(service_body("PARAM_ERROR", message=f"文件不存在：{fileid}"), status_code=404)
    headers = {"Content-Disposition": content_disposition(meta.filename), "Content-Length": str(meta.size)}
    return StreamingResponse(sim.files.chunks(meta.fileid), media_type=meta.content_type, headers=headers)


def api_routes() -> list[Route]:
    def service(name: str, endpoint: Any, methods: tuple[str, ...] = ("GET", "POST")) -> Route:
        return Route(f"{SERVICE}/{name}", endpoint, methods=list(methods))

    return [
        Route("/api/ec/dev/auth/regist", regist, methods=["POST"]),
        Route("/api/ec/dev/auth/applytoken", apply_token, methods=["POST"]),
        service("doCreateRequest", do_create_request, ("POST",)),
        service("submitRequest", submit_request, ("POST",)),
        service("rejectRequest", reject_request, ("POST",)),
        service("saveRequestLog", save_request_log, ("POST",)),
        service("getRequestStatus", get_request_status),
        service("getWorkflowRequest", get_workflow_request),
        service("getRequestLog", get_request_log),
        service("getRequestResources", get_request_resources),
        service("getToDoWorkflowRequestList", get_todo_list),
        service("getMyWorkflowRequestList", get_my_list),
        Route("/api/doc/upload/uploadFile2Doc", upload_file, methods=["POST"]),
        Route(DOWNLOAD_PATH, download, methods=["GET"]),
    ]
