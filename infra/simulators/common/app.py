"""Wiring every simulator's Starlette app shares: route order, middleware stack, error handlers, lifespan.

Routes: ``/healthz``, the shared ``/__sim/`` routes, then the simulator's own (admin routes first, API last).
Middleware, outermost first: request log → the simulator's gate (if any) → fault injection → routes.
Errors: the simulator's request-level exceptions answer ``exc.body()`` with ``exc.status`` (and ``exc.headers``
when they carry some); Starlette's 404/405/other HTTP errors and unexpected exceptions answer what the simulator's
hooks return. An unexpected exception's traceback goes to the simulator's own log, never to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from infra.simulators.common.admin import common_admin_routes, healthz_route
from infra.simulators.common.faults import ErrorBody, FaultInjector, FaultMiddleware
from infra.simulators.common.requestlog import RequestLog, RequestLogMiddleware

HttpErrorAnswer = Callable[[Request, HTTPException], Response]
ExceptionHandler = Callable[[Request, Exception], Coroutine[Any, Any, Response]]


class Simulator(Protocol):
    """What the shared wiring needs of a simulator object (each ``<name>/simulator.py`` dataclass)."""

    injector: FaultInjector
    request_log: RequestLog

    def reset(self) -> None: ...

    def close(self) -> None: ...


class ApiError(Protocol):
    """A simulator's request-level exception: answered as its own JSON body with its HTTP status."""

    status: int

    def body(self) -> Any: ...


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=getattr(exc, "headers", None))


def build_app(
    name: str,
    sim: Simulator,
    *,
    admin_token: str | None,
    routes: Sequence[BaseRoute],
    fault_error_body: ErrorBody,
    http_error: HttpErrorAnswer,
    internal_error: Callable[[], Response],
    api_errors: Sequence[type[Exception]] = (),
    gate: Middleware | None = None,
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> Starlette:
    """The simulator ``name``'s app around ``sim``; ``app.state.sim`` is ``sim``.

    ``routes``: the simulator's own (after ``/healthz`` and the shared ``/__sim/`` routes). ``gate``: its auth/limits
    middleware, between the request log and fault injection. ``background``: a coroutine run as a task while the
    app lives (cancelled on shutdown, before ``sim.close()``).
    """
    log = logging.getLogger(f"infra.simulators.{name}.app")

    async def on_api_error(request: Request, exc: Exception) -> Response:
        return api_error_response(cast(ApiError, exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return http_error(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return internal_error()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(background()) if background is not None else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sim.close()

    handlers: dict[Any, ExceptionHandler] = {error: on_api_error for error in api_errors}
    handlers.update({HTTPException: on_http_error, Exception: on_unexpected})
    app = Starlette(
        routes=[
            healthz_route(name),
            *common_admin_routes(
                injector=sim.injector, request_log=sim.request_log, on_reset=sim.reset, admin_token=admin_token
            ),
            *routes,
        ],
        middleware=[
            Middleware(RequestLogMiddleware, log=sim.request_log),
            *([gate] if gate is not None else []),
            Middleware(FaultMiddleware, injector=sim.injector, error_body=fault_error_body),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
