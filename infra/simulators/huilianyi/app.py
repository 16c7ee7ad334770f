"""Assemble the Huilianyi simulator's Starlette app: routes, middleware order, error shapes, the driver loop.

Middleware, outermost first: request log → API gate (Bearer token on ``/api/``) → fault injection → routes.
Every error a client can see has Huilianyi's JSON shape; an unexpected exception becomes 500 ``SYSTEM_ERROR``
(its traceback goes to the simulator's own log, never to the client).
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
from infra.simulators.huilianyi.admin import huilianyi_admin_routes
from infra.simulators.huilianyi.api import api_routes
from infra.simulators.huilianyi.config import HuilianyiSimConfig
from infra.simulators.huilianyi.errors import HuilianyiApiError, error_body, fault_error_body
from infra.simulators.huilianyi.gate import ApiGate
from infra.simulators.huilianyi.simulator import HuilianyiSimulator

log = logging.getLogger(__name__)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HuilianyiApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        body = error_body("NOT_FOUND", f"No handler found for {request.method} {request.url.path}")
    elif exc.status_code == 405:
        body = error_body("METHOD_NOT_ALLOWED", f"Request method '{request.method}' not supported")
    else:
        body = error_body("BAD_REQUEST", str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("SYSTEM_ERROR", "系统异常"), status_code=500)


def create_app(config: HuilianyiSimConfig) -> Starlette:
    sim = HuilianyiSimulator.build(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        driver_loop = asyncio.create_task(sim.driver.run_forever())
        yield
        driver_loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver_loop
        sim.close()

    routes = [
        healthz_route("huilianyi"),
        *common_admin_routes(
            injector=sim.injector,
            request_log=sim.request_log,
            on_reset=sim.reset,
            admin_token=config.admin_token,
        ),
        *huilianyi_admin_routes(sim),
        *api_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestLogMiddleware, log=sim.request_log),
            Middleware(ApiGate, authority=sim.authority),
            Middleware(FaultMiddleware, injector=sim.injector, error_body=fault_error_body),
        ],
        exception_handlers={
            HuilianyiApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
