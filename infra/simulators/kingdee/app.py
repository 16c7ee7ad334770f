"""Assemble the Kingdee WebAPI simulator's Starlette app: routes, the service endpoint, error shapes.

Middleware, outermost first: request log → fault injection → routes (stacked by
:func:`infra.simulators.common.app.build_app`; no gate: auth is checked per service call). Every answer a client
can see has the WebAPI's shape; an unexpected exception becomes the envelope with ``MsgCode`` 4 (HTTP 500), its
traceback going to the simulator's own log only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.simulators.common.app import build_app
from infra.simulators.common.requestlog import notes
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.admin import kingdee_admin_routes
from infra.simulators.kingdee.auth import ASP_COOKIE, SESSION_COOKIE, fingerprint, new_asp_session
from infra.simulators.kingdee.config import KingdeeSimConfig
from infra.simulators.kingdee.services import QUERY_METHODS
from infra.simulators.kingdee.services import Request as ApiRequest
from infra.simulators.kingdee.simulator import KingdeeSimulator
from infra.simulators.kingdee.transport import parse_json, service_of


def json_response(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json; charset=utf-8")


def _error(status: int, msg_code: int, message: str) -> Response:
    return json_response(env.error_result(msg_code, [env.Problem(message)]), status)


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 405:
        return _error(405, env.PARAMETER_ERROR, "WebAPI只接受POST请求")
    return _error(exc.status_code, env.PARAMETER_ERROR, f"请求的服务不存在：{request.url.path}")


def _internal_error() -> Response:
    return _error(500, env.EXCEPTION, "服务器内部错误")


def api_endpoint(sim: KingdeeSimulator) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        call = service_of(request.url.path)
        if call is None:
            return _error(404, env.PARAMETER_ERROR, f"请求的服务不存在：{request.url.path}")
        scope_notes = notes(request.scope)
        scope_notes["service"] = call.label
        try:
            body = parse_json(await request.body())
        except env.KingdeeError as exc:
            payload: Any = env.error_result(exc.msg_code, exc.problems)
            return json_response(env.wrap_query_error(payload) if call.method in QUERY_METHODS else payload)
        api_request = ApiRequest(call, body, request.url.path, request.headers, dict(request.cookies))
        answer = await run_in_threadpool(sim.api.handle, api_request)
        scope_notes.update(answer.notes)
        session = answer.session_id or sim.auth.session_id_of(request.headers, dict(request.cookies))
        scope_notes["token"] = fingerprint(session) if answer.notes.get("auth") != "signature" else None
        response = json_response(answer.payload)
        if answer.session_id:
            response.set_cookie(SESSION_COOKIE, answer.session_id, path="/", httponly=True)
            response.set_cookie(ASP_COOKIE, new_asp_session(), path="/", httponly=True)
        return response

    return endpoint


def create_app(config: KingdeeSimConfig) -> Starlette:
    sim = KingdeeSimulator.build(config)
    return build_app(
        "kingdee",
        sim,
        admin_token=config.admin_token,
        routes=[*kingdee_admin_routes(sim), Route("/{path:path}", api_endpoint(sim), methods=["POST"])],
        fault_error_body=env.fault_error_body,
        http_error=_http_error,
        internal_error=_internal_error,
    )
