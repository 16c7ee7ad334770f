"""Assemble the Weaver OA simulator's Starlette app: routes, middleware order, error shapes, the driver task.

Middleware, outermost first: request log → token gate → fault injection → routes. Auth failures answer the
gateway shape, service failures the ``code``/``errMsg`` shape (both HTTP 200, like the real OA); an unexpected
exception becomes ``SYSTEM_INNER_ERROR`` with HTTP 500 (its traceback goes to the simulator's own log only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from infra.simulators.common.admin import common_admin_routes, healthz_route
from infra.simulators.common.faults import FaultMiddleware
from infra.simulators.common.requestlog import RequestLogMiddleware
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
from infra.simulators.weaver.simulator import WeaverSimulator

log = logging.getLogger(__name__)


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthFailure)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return JSONResponse(auth_error_body(f"接口不存在：{request.url.path}"), status_code=404)
    if exc.status_code == 405:
        return JSONResponse(auth_error_body(f"不支持的请求方法：{request.method}"), status_code=405)
    return JSONResponse(auth_error_body(str(exc.detail)), status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(service_body(SYSTEM_INNER_ERROR, message="系统内部错误"), status_code=500)


def create_app(config: WeaverSimConfig) -> Starlette:
    sim = WeaverSimulator.build(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        driver_task = asyncio.create_task(sim.driver.run_forever())
        yield
        driver_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver_task
        sim.close()

    routes = [
        healthz_route("weaver"),
        *common_admin_routes(
            injector=sim.injector,
            request_log=sim.request_log,
            on_reset=sim.reset,
            admin_token=config.admin_token,
        ),
        *weaver_admin_routes(sim),
        *api_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestLogMiddleware, log=sim.request_log),
            Middleware(TokenGate, authority=sim.authority),
            Middleware(FaultMiddleware, injector=sim.injector, error_body=fault_error_body),
        ],
        exception_handlers={
            ServiceError: _service_error,
            AuthFailure: _auth_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
