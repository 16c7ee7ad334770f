"""Assemble the Weaver OA simulator's Starlette app: routes, the token gate, error shapes, the driver task.

Middleware, outermost first: request log → token gate → fault injection → routes (stacked by
:func:`infra.simulators.common.app.build_app`). Auth failures answer the gateway shape, service failures the
``code``/``errMsg`` shape (both HTTP 200, like the real OA); an unexpected exception becomes
``SYSTEM_INNER_ERROR`` with HTTP 500 (its traceback goes to the simulator's own log only).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from infra.simulators.common.app import build_app
from infra.simulators.weaver.admin import weaver_admin_routes
from infra.simulators.weaver.api import api_routes
from infra.simulators.weaver.config import WeaverSimConfig
from infra.simulators.weaver.errors import (
    SYSTEM_INNER_ERROR,
    AuthFailure,
    ServiceError,
    auth_error_body,
    fault_error_body,
    service_body,
)
from infra.simulators.weaver.gate import TokenGate
from infra.simulators.weaver.hrm import hrm_routes
from infra.simulators.weaver.simulator import WeaverSimulator


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return JSONResponse(auth_error_body(f"接口不存在：{request.url.path}"), status_code=404)
    if exc.status_code == 405:
        return JSONResponse(auth_error_body(f"不支持的请求方法：{request.method}"), status_code=405)
    return JSONResponse(auth_error_body(str(exc.detail)), status_code=exc.status_code)


def _internal_error() -> Response:
    return JSONResponse(service_body(SYSTEM_INNER_ERROR, message="系统内部错误"), status_code=500)


def create_app(config: WeaverSimConfig) -> Starlette:
    sim = WeaverSimulator.build(config)
    return build_app(
        "weaver",
        sim,
        admin_token=config.admin_token,
        routes=[*weaver_admin_routes(sim), *api_routes(), *hrm_routes()],
        gate=Middleware(TokenGate, authority=sim.authority),
        fault_error_body=fault_error_body,
        api_errors=[ServiceError, AuthFailure],
        http_error=_http_error,
        internal_error=_internal_error,
        background=sim.driver.run_forever,
    )
