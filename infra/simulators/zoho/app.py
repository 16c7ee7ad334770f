"""Assemble the ZOHO CRM simulator's Starlette app: routes, middleware order, error shapes.

Middleware, outermost first: request log → API gate (token, concurrency, credits) → fault injection → routes.
Every error a client can see has the CRM's JSON shape; an unexpected exception becomes 500 ``INTERNAL_ERROR``
(its traceback goes to the simulator's own log, never to the client).
"""

from __future__ import annotations

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
from infra.simulators.zoho.admin import zoho_admin_routes
from infra.simulators.zoho.api import api_routes
from infra.simulators.zoho.api_meta import meta_routes
from infra.simulators.zoho.api_related import related_routes
from infra.simulators.zoho.config import ZohoSimConfig
from infra.simulators.zoho.errors import (
    ZohoApiError,
    error_body,
    fault_error_body,
    invalid_method,
    invalid_url,
)
from infra.simulators.zoho.gate import ApiGate
from infra.simulators.zoho.simulator import ZohoSimulator

log = logging.getLogger(__name__)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ZohoApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await _api_error(request, invalid_url())
    if exc.status_code == 405:
        return await _api_error(request, invalid_method())
    return JSONResponse(error_body("INVALID_REQUEST", str(exc.detail)), status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("INTERNAL_ERROR", "Internal Server Error"), status_code=500)


def create_app(config: ZohoSimConfig) -> Starlette:
    sim = ZohoSimulator.build(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sim.close()

    routes = [
        healthz_route("zoho"),
        *common_admin_routes(
            injector=sim.injector,
            request_log=sim.request_log,
            on_reset=sim.reset,
            admin_token=config.admin_token,
        ),
        *zoho_admin_routes(sim),
        *meta_routes(),  # before the record routes: /users/{id} would match /{module}/{record_id}
        *related_routes(),
        *api_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestLogMiddleware, log=sim.request_log),
            Middleware(ApiGate, authority=sim.authority, concurrency=sim.concurrency, credits=sim.credits),
            Middleware(FaultMiddleware, injector=sim.injector, error_body=fault_error_body),
        ],
        exception_handlers={ZohoApiError: _api_error, HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
