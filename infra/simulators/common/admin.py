"""The ``/__sim/`` control API every simulator exposes to tests: faults, request log, reset.

No auth by default (simulators bind to 127.0.0.1); with an admin token configured, each call must send it in
the ``X-Sim-Admin-Token`` header. Answers are plain JSON (``{"error": ...}`` with 400/403/404 on misuse),
never the simulated system's error shape, so a test can tell the two apart.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.faults import FaultInjector
from infra.simulators.common.requestlog import RequestLog

ADMIN_TOKEN_HEADER = "x-sim-admin-token"
Endpoint = Callable[[Request], Awaitable[Response]]


class AdminError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def guarded(admin_token: str | None, endpoint: Endpoint) -> Endpoint:
    """Wrap an admin endpoint: check the admin token, turn :class:`AdminError` into a JSON answer."""

    async def wrapper(request: Request) -> Response:
        if admin_token and request.headers.get(ADMIN_TOKEN_HEADER) != admin_token:
            return JSONResponse({"error": "admin token missing or wrong"}, status_code=403)
        try:
            return await endpoint(request)
        except AdminError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)

    return wrapper


def admin_router(admin_token: str | None) -> Callable[[str, Endpoint, list[str]], Route]:
    """``route(path, endpoint, methods)``: a ``/__sim/`` route behind :func:`guarded` with this admin token."""

    def route(path: str, endpoint: Endpoint, methods: list[str]) -> Route:
        return Route(path, guarded(admin_token, endpoint), methods=methods)

    return route


async def json_body(request: Request, default: Any = None) -> Any:
    raw = await request.body()
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AdminError(f"body is not JSON: {exc}") from exc


def int_param(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise AdminError(f"{name} must be an integer") from exc


def common_admin_routes(
    *,
    injector: FaultInjector,
    request_log: RequestLog,
    on_reset: Callable[[], None],
    admin_token: str | None,
) -> list[Route]:
    """Routes for ``/__sim/faults``, ``/__sim/requests`` and ``/__sim/reset``."""

    async def list_faults(request: Request) -> Response:
        return JSONResponse({"rules": [r.to_json() for r in injector.rules()]})

    async def add_faults(request: Request) -> Response:
        body = await json_body(request)
        raw_rules = body.get("rules") if isinstance(body, dict) and "rules" in body else body
        raw_rules = raw_rules if isinstance(raw_rules, list) else [raw_rules]
        try:
            added = [injector.add(raw) for raw in raw_rules]
        except ValueError as exc:
            raise AdminError(str(exc)) from exc
        return JSONResponse({"rules": [r.to_json() for r in added]}, status_code=201)

    async def clear_faults(request: Request) -> Response:
        injector.clear()
        return JSONResponse({"cleared": True})

    async def delete_fault(request: Request) -> Response:
        if not injector.remove(request.path_params["rule_id"]):
            raise AdminError("no such fault rule", status=404)
        return JSONResponse({"deleted": request.path_params["rule_id"]})

    async def list_requests(request: Request) -> Response:
        entries = request_log.entries(
            since_seq=int_param(request, "since_seq", 0) or 0,
            path_regex=request.query_params.get("path_regex"),
            method=request.query_params.get("method"),
            limit=int_param(request, "limit"),
        )
        return JSONResponse({"count": len(entries), "requests": entries})

    async def clear_requests(request: Request) -> Response:
        request_log.clear()
        return JSONResponse({"cleared": True})

    async def reset(request: Request) -> Response:
        injector.clear()
        request_log.clear()
        on_reset()
        return JSONResponse({"reset": True})

    route = admin_router(admin_token)
    return [
        route("/__sim/faults", list_faults, ["GET"]),
        route("/__sim/faults", add_faults, ["POST"]),
        route("/__sim/faults", clear_faults, ["DELETE"]),
        route("/__sim/faults/{rule_id}", delete_fault, ["DELETE"]),
        route("/__sim/requests", list_requests, ["GET"]),
        route("/__sim/requests", clear_requests, ["DELETE"]),
        route("/__sim/reset", reset, ["POST"]),
    ]


def healthz_route(simulator: str) -> Route:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "simulator": simulator})

    return Route("/healthz", healthz, methods=["GET"])
