"""Assemble the Huilianyi simulator's Starlette app: routes, the API gate, error shapes, the driver loop.

Middleware, outermost first: request log → API gate (Bearer token on ``/api/``) → fault injection → routes
(stacked by :func:`infra.simulators.common.app.build_app`). Every error a client can see has Huilianyi's JSON
shape; an unexpected exception becomes 500 ``SYSTEM_ERROR`` (its traceback goes to the simulator's own log,
never to the client).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from infra.simulators.common.app import build_app
from infra.simulators.huilianyi.admin import huilianyi_admin_routes
from infra.simulators.huilianyi.api import api_routes
from infra.simulators.huilianyi.config import HuilianyiSimConfig
from infra.simulators.huilianyi.errors import HuilianyiApiError, error_body, fault_error_body
from infra.simulators.huilianyi.gate import ApiGate
from infra.simulators.huilianyi.simulator import HuilianyiSimulator


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        body = error_body("NOT_FOUND", f"No handler found for {request.method} {request.url.path}")
    elif exc.status_code == 405:
        body = error_body("METHOD_NOT_ALLOWED", f"Request method '{request.method}' not supported")
    else:
        body = error_body("BAD_REQUEST", str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code)


def _internal_error() -> Response:
    return JSONResponse(error_body("SYSTEM_ERROR", "系统异常"), status_code=500)


def create_app(config: HuilianyiSimConfig) -> Starlette:
    sim = HuilianyiSimulator.build(config)
    return build_app(
        "huilianyi",
        sim,
        admin_token=config.admin_token,
        routes=[*huilianyi_admin_routes(sim), *api_routes()],
        gate=Middleware(ApiGate, authority=sim.authority),
        fault_error_body=fault_error_body,
        api_errors=[HuilianyiApiError],
        http_error=_http_error,
        internal_error=_internal_error,
        background=sim.driver.run_forever,
    )
