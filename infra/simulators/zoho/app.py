"""Assemble the ZOHO CRM simulator's Starlette app: routes, the API gate, error shapes.

Middleware, outermost first: request log → API gate (token, concurrency, credits) → fault injection → routes
(stacked by :func:`infra.simulators.common.app.build_app`). Every error a client can see has the CRM's JSON
shape; an unexpected exception becomes 500 ``INTERNAL_ERROR`` (its traceback goes to the simulator's own log,
never to the client).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from infra.simulators.common.app import api_error_response, build_app
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


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return api_error_response(invalid_url())
    if exc.status_code == 405:
        return api_error_response(invalid_method())
    return JSONResponse(error_body("INVALID_REQUEST", str(exc.detail)), status_code=exc.status_code)


def _internal_error() -> Response:
    return JSONResponse(error_body("INTERNAL_ERROR", "Internal Server Error"), status_code=500)


def create_app(config: ZohoSimConfig) -> Starlette:
    sim = ZohoSimulator.build(config)
    return build_app(
        "zoho",
        sim,
        admin_token=config.admin_token,
        routes=[
            *zoho_admin_routes(sim),
            *meta_routes(),  # before the record routes: /users/{id} would match /{module}/{record_id}
            *related_routes(),
            *api_routes(),
        ],
        gate=Middleware(
            ApiGate, authority=sim.authority, concurrency=sim.concurrency, credits=sim.credits, modules=sim.modules
        ),
        fault_error_body=fault_error_body,
        api_errors=[ZohoApiError],
        http_error=_http_error,
        internal_error=_internal_error,
    )
