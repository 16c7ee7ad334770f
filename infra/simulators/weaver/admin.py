"""Weaver-specific ``/__sim/`` routes: driver scripts, ticks and settings, contracts, tokens, stored state.

These exist for tests and demos only; the real OA has nothing like them. Answers are plain JSON; misuse gets
``{"error": ...}`` with 400/404 (never the OA's error shape).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.admin import AdminError, admin_router, json_body
from infra.simulators.weaver.approval_driver import ScriptError
from infra.simulators.weaver.directory import USERS
from infra.simulators.weaver.errors import ServiceError
from infra.simulators.weaver.simulator import WeaverSimulator
from infra.simulators.weaver.workflows import WORKFLOWS


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AdminError("body must be a JSON object")
    return body


def _int(body: dict[str, Any], key: str, required: bool = True) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise AdminError(f"{key} must be an integer") from exc


def weaver_admin_routes(sim: WeaverSimulator) -> list[Route]:
    def request_state(request_id: int) -> dict[str, Any]:
        req, wf = sim.engine.request(request_id)
        script = sim.store.script(request_id)
        return {
            **sim.views.status(req, wf),
            "origin": req.origin,
            "main": req.main,
            "details": req.details,
            "viewers": req.viewers,
            "nodeArrivedMs": req.node_arrived_ms,
            "script": {"steps": script[0], "position": script[1]} if script else None,
        }

    async def set_script(request: Request) -> Response:
        body = _object(await json_body(request, default={}))
        request_id = _int(body, "requestId")
        steps = body.get("steps")
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise AdminError(
                'steps must be a list of strings like ["approve", "reject:意见", "forward:张伟"]'
            )
        assert request_id is not None
        try:
            sim.driver.set_script(request_id, steps)
        except ScriptError as exc:
            raise AdminError(str(exc)) from exc
        except ServiceError as exc:
            raise AdminError(exc.message, status=404) from exc
        return JSONResponse({"requestId": request_id, "steps": steps, "position": 0})

    async def tick(request: Request) -> Response:
        body = _object(await json_body(request, default={}) or {})
        rounds = _int(body, "rounds", required=False) or 1
        acted: list[dict[str, Any]] = []
        for _ in range(max(1, min(rounds, 100))):
            actions = sim.driver.tick(
                ignore_delay=bool(body.get("ignoreDelay", True)),
                request_id=_int(body, "requestId", required=False),
            )
            acted.extend(a.to_json() for a in actions)
            if not actions:
                break
        return JSONResponse({"acted": acted})

    async def get_driver(request: Request) -> Response:
        return JSONResponse(asdict(sim.driver.settings))

    async def put_driver(request: Request) -> Response:
        body = _object(await json_body(request, default={}) or {})
        try:
            settings = sim.driver.configure(**body)
        except (TypeError, ValueError) as exc:
            raise AdminError(str(exc)) from exc
        return JSONResponse(asdict(settings))

    async def create_contract(request: Request) -> Response:
        body = _object(await json_body(request, default={}) or {})
        deal_id = body.get("crmDealId")
        if not isinstance(deal_id, str | int) or not str(deal_id).strip():
            raise AdminError("crmDealId (the CRM deal id) is required")
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise AdminError('fields must be an object of form field values, e.g. {"htje": "5000"}')
        try:
            request_id = sim.driver.create_contract(
                str(deal_id), fields=fields, creator_id=_int(body, "creatorId", required=False) or 108,
                submit=bool(body.get("submit", True)),
            )  # fmt: skip
            if body.get("steps") is not None:
                steps = body["steps"]
                if not isinstance(steps, list):
                    raise AdminError("steps must be a list of strings")
                sim.driver.set_script(request_id, [str(s) for s in steps])
        except (ValueError, ScriptError) as exc:
            raise AdminError(str(exc)) from exc
        except ServiceError as exc:
            raise AdminError(exc.message) from exc
        req, wf = sim.engine.request(request_id)
        state = request_state(request_id)
        state["attachments"] = sim.views.resources(req, wf)
        return JSONResponse(state, status_code=201)

    async def list_requests(request: Request) -> Response:
        wanted = request.query_params.get("requestId")
        rows = [
            request_state(r.requestid) for r in sim.store.all() if not wanted or str(r.requestid) == wanted
        ]
        return JSONResponse({"count": len(rows), "requests": rows})

    async def expire_tokens(request: Request) -> Response:
        return JSONResponse({"expired": sim.authority.expire_tokens()})

    async def forget_registrations(request: Request) -> Response:
        return JSONResponse({"forgotten": sim.authority.forget_registrations()})

    async def describe(request: Request) -> Response:
        workflows = [
            {**asdict(wf), "creator_departments": sorted(wf.creator_departments)} for wf in WORKFLOWS.values()
        ]
        users = [u.to_json() for u in USERS.values()]
        return JSONResponse(
            {
                "workflows": workflows,
                "users": users,
                "app_ids": len(sim.config.app_ids),
                "token_ttl_s": sim.authority.ttl_s,
            }  # fmt: skip
        )

    async def set_token_ttl(request: Request) -> Response:
        body = _object(await json_body(request, default={}) or {})
        ttl = _int(body, "token_ttl_s")
        if ttl is None or ttl < 1:
            raise AdminError("token_ttl_s must be a positive integer")
        sim.authority.ttl_s = ttl
        return JSONResponse({"token_ttl_s": ttl})

    route = admin_router(sim.config.admin_token)
    return [
        route("/__sim/script", set_script, ["POST"]),
        route("/__sim/tick", tick, ["POST"]),
        route("/__sim/driver", get_driver, ["GET"]),
        route("/__sim/driver", put_driver, ["PUT"]),
        route("/__sim/contracts", create_contract, ["POST"]),
        route("/__sim/workflow-requests", list_requests, ["GET"]),
        route("/__sim/expire-tokens", expire_tokens, ["POST"]),
        route("/__sim/forget-registrations", forget_registrations, ["POST"]),
        route("/__sim/token-ttl", set_token_ttl, ["PUT"]),
        route("/__sim/workflows", describe, ["GET"]),
    ]
