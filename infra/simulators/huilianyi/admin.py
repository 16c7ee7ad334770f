"""Huilianyi-specific ``/__sim/`` routes: seed and move reports, run the driver, lose or expire tokens.

These exist for tests and demos only; the real service has nothing like them. Answers are plain JSON; misuse
gets ``{"error": ...}`` with 400/404/409 (see ``common/admin.py``).
"""

from __future__ import annotations

import random
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.admin import AdminError, admin_router, int_param, json_body
from infra.simulators.huilianyi.catalog import EMPLOYEES_BY_ID, EXPENSE_TYPES_BY_CODE
from infra.simulators.huilianyi.driver import DriverError, WrongDirection
from infra.simulators.huilianyi.errors import HuilianyiApiError
from infra.simulators.huilianyi.generator import LineSpec, ReportSpec
from infra.simulators.huilianyi.reports import api_view
from infra.simulators.huilianyi.simulator import HuilianyiSimulator
from infra.simulators.huilianyi.statuses import TRANSITIONS, ReportType, Status
from infra.simulators.huilianyi.timefmt import parse_request_time

MAX_CREATE = 1000
DRIVER_KEYS = (
    "interval_s", "create_per_tick", "campaign_share", "campaign_ids", "odds", "max_moves_per_tick",
)  # fmt: skip


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise AdminError("body must be a JSON object")
    return body


def _at(body: dict[str, Any]) -> int | None:
    if body.get("at") is None:
        return None
    try:
        return parse_request_time(str(body["at"]))
    except ValueError as exc:
        raise AdminError(f"at: {exc}") from None


def _line(raw: Any) -> LineSpec:
    if not isinstance(raw, dict) or raw.get("expenseTypeCode") not in EXPENSE_TYPES_BY_CODE:
        raise AdminError(f"each line needs expenseTypeCode, one of {sorted(EXPENSE_TYPES_BY_CODE)}")
    try:
        amount = Decimal(str(raw["amount"])) if raw.get("amount") is not None else None
    except InvalidOperation:
        raise AdminError("line amount must be a number") from None
    return LineSpec(raw["expenseTypeCode"], amount, raw.get("comment"))


def _spec(body: dict[str, Any]) -> ReportSpec:
    report_type = body.get("type")
    if report_type is not None and report_type not in {int(t) for t in ReportType}:
        raise AdminError(f"type must be one of {[int(t) for t in ReportType]}")
    employee = body.get("employeeId")
    if employee is not None and employee not in EMPLOYEES_BY_ID:
        raise AdminError(f"employeeId must be one of {sorted(EMPLOYEES_BY_ID)}")
    lines = body.get("lines")
    if lines is not None and (not isinstance(lines, list) or not lines):
        raise AdminError("lines must be a non-empty array")
    return ReportSpec(
        type=ReportType(report_type) if report_type is not None else None,
        employee_id=employee,
        campaign_id=str(body["campaignId"]) if body.get("campaignId") else None,
        title=body.get("title"),
        lines=tuple(_line(line) for line in lines) if lines else None,
    )


def huilianyi_admin_routes(sim: HuilianyiSimulator) -> list[Route]:
    driver = sim.driver

    def business_error(exc: HuilianyiApiError) -> AdminError:
        return AdminError(exc.message, status=404 if exc.status == 404 else 409)

    async def create_reports(request: Request) -> Response:
        body = _object(await json_body(request, default={}))
        count = body.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= MAX_CREATE:
            raise AdminError(f"count must be an integer from 1 to {MAX_CREATE}")
        status = body.get("status", int(Status.EDITING))
        if status not in {int(s) for s in Status}:
            raise AdminError(f"status must be one of {[int(s) for s in Status]}")
        spec, at = _spec(body), _at(body)
        rng = random.Random(body["seed"]) if body.get("seed") is not None else None
        created = []
        for _ in range(count):
            doc = driver.create(spec, rng=rng, at_ms=at)
            if status != Status.EDITING:
                doc, _ = driver.advance(doc["businessCode"], to=status, at_ms=at)
            created.append(api_view(doc))
        return JSONResponse({"count": len(created), "reports": created}, status_code=201)

    async def list_reports(request: Request) -> Response:
        status = int_param(request, "status")
        reports = [api_view(d) for d in sim.store.all([status] if status else ())]
        return JSONResponse({"count": len(reports), "reports": reports})

    async def show_report(request: Request) -> Response:
        code = request.path_params["business_code"]
        doc = sim.store.get(code)
        if doc is None:
            raise AdminError(f"no report {code}", status=404)
        return JSONResponse({"report": api_view(doc), "history": sim.store.history(code)})

    async def advance(request: Request) -> Response:
        body = _object(await json_body(request, default={}))
        code = body.get("businessCode")
        if not isinstance(code, str) or not code:
            raise AdminError("businessCode is required")
        to = body.get("to")
        if to is not None and not isinstance(to, int):
            raise AdminError("to must be an integer status")
        try:
            doc, moves = driver.advance(code, to=to, reject=body.get("reject"), text=body.get("text"), at_ms=_at(body))
        except WrongDirection as exc:
            raise AdminError(str(exc), status=409) from None
        except DriverError as exc:
            raise AdminError(str(exc)) from None
        except HuilianyiApiError as exc:
            raise business_error(exc) from None
        return JSONResponse({"report": api_view(doc), "moves": moves})

    async def tick(request: Request) -> Response:
        body = _object(await json_body(request, default={}))
        seed, create = body.get("seed"), body.get("create")
        if seed is not None and not isinstance(seed, int):
            raise AdminError("seed must be an integer")
        if create is not None and (not isinstance(create, int) or not 0 <= create <= MAX_CREATE):
            raise AdminError(f"create must be an integer from 0 to {MAX_CREATE}")
        return JSONResponse(driver.tick(seed=seed, create=create))

    def driver_view() -> dict[str, Any]:
        view = asdict(driver.settings)
        view["campaign_ids"] = list(view["campaign_ids"])
        return view

    async def get_driver(request: Request) -> Response:
        return JSONResponse(driver_view())

    async def set_driver(request: Request) -> Response:
        body = _object(await json_body(request, default={}))
        unknown = set(body) - set(DRIVER_KEYS)
        if unknown:
            raise AdminError(f"unknown keys {sorted(unknown)}; known: {list(DRIVER_KEYS)}")
        settings = driver.settings
        for key in ("interval_s", "campaign_share"):
            if key in body:
                if not isinstance(body[key], int | float) or body[key] < 0:
                    raise AdminError(f"{key} must be a number >= 0")
                setattr(settings, key, float(body[key]))
        for key in ("create_per_tick", "max_moves_per_tick"):
            if key in body:
                if not isinstance(body[key], int) or body[key] < 0:
                    raise AdminError(f"{key} must be an integer >= 0")
                setattr(settings, key, body[key])
        if "campaign_ids" in body:
            if not isinstance(body["campaign_ids"], list):
                raise AdminError("campaign_ids must be an array of strings")
            settings.campaign_ids = tuple(str(c) for c in body["campaign_ids"])
        if "odds" in body:
            odds = body["odds"]
            if not isinstance(odds, dict) or set(odds) - set(TRANSITIONS):
                raise AdminError(f"odds must map moves {sorted(TRANSITIONS)} to probabilities")
            if any(not isinstance(v, int | float) or not 0 <= v <= 1 for v in odds.values()):
                raise AdminError("odds must be numbers from 0 to 1")
            settings.odds.update({k: float(v) for k, v in odds.items()})
        return JSONResponse(driver_view())

    async def expire_tokens(request: Request) -> Response:
        return JSONResponse({"expired": sim.authority.expire_tokens()})

    async def revoke_tokens(request: Request) -> Response:
        return JSONResponse({"revoked": sim.authority.revoke_tokens()})

    async def get_settings(request: Request) -> Response:
        return JSONResponse({"token_ttl_s": sim.authority.ttl_s})

    async def set_settings(request: Request) -> Response:
        body = _object(await json_body(request, default={}))
        if set(body) - {"token_ttl_s"}:
            raise AdminError("known keys: token_ttl_s")
        if "token_ttl_s" in body:
            if not isinstance(body["token_ttl_s"], int) or body["token_ttl_s"] < 1:
                raise AdminError("token_ttl_s must be a positive integer")
            sim.authority.ttl_s = body["token_ttl_s"]
        return JSONResponse({"token_ttl_s": sim.authority.ttl_s})

    route = admin_router(sim.config.admin_token)
    return [
        route("/__sim/reports", create_reports, ["POST"]),
        route("/__sim/reports", list_reports, ["GET"]),
        route("/__sim/reports/{business_code}", show_report, ["GET"]),
        route("/__sim/advance", advance, ["POST"]),
        route("/__sim/tick", tick, ["POST"]),
        route("/__sim/driver", get_driver, ["GET"]),
        route("/__sim/driver", set_driver, ["PUT"]),
        route("/__sim/expire-tokens", expire_tokens, ["POST"]),
        route("/__sim/revoke-tokens", revoke_tokens, ["POST"]),
        route("/__sim/settings", get_settings, ["GET"]),
        route("/__sim/settings", set_settings, ["PUT"]),
    ]
