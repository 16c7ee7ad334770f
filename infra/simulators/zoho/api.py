"""HTTP handlers of the simulated CRM API (``/crm/{version}/...``) and the accounts token endpoint."""

from __future__ import annotations

import json
from typing import Any, cast
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.requestlog import notes
from infra.simulators.zoho.errors import (
    ZohoApiError,
    invalid_module,
    invalid_url,
    limit_exceeded,
    required_param,
)
from infra.simulators.zoho.gate import principal_of
from infra.simulators.zoho.modules import ModuleDef
from infra.simulators.zoho.reader import NotModified
from infra.simulators.zoho.simulator import ZohoSimulator

API_VERSIONS = frozenset({"v2", "v2.1", "v3", "v4", "v5", "v6", "v7", "v8"})
MAX_RECORDS_PER_CALL = 100


def _sim(request: Request) -> ZohoSimulator:
    return cast(ZohoSimulator, request.app.state.sim)


def respond(body: dict[str, Any] | None, status: int = 200) -> Response:
    """JSON, or HTTP 204 with an empty body when there is nothing to return."""
    return Response(status_code=204) if body is None else JSONResponse(body, status_code=status)


def _module(request: Request) -> ModuleDef:
    if request.path_params["version"] not in API_VERSIONS:
        raise invalid_url()
    name = request.path_params["module"]
    module = _sim(request).modules.get(name)
    if module is None:
        raise invalid_module(name)
    return module


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ZohoApiError(400, "INVALID_DATA", "the body is not a valid JSON", {}) from exc
    if not isinstance(body, dict):
        raise required_param("data")
    return body


async def _records(request: Request) -> tuple[dict[str, Any], list[Any]]:
    body = await _json_object(request)
    items = body.get("data")
    if items is None:
        raise required_param("data")
    if not isinstance(items, list) or not items:
        raise ZohoApiError(400, "INVALID_DATA", "data must be a non-empty JSON array", {"api_name": "data"})
    notes(request.scope).update(records=len(items), write_records=len(items))
    if len(items) > MAX_RECORDS_PER_CALL:
        raise limit_exceeded(MAX_RECORDS_PER_CALL)
    return body, items


def _returned(request: Request, body: dict[str, Any] | None) -> None:
    notes(request.scope)["returned"] = len(body["data"]) if body else 0


async def oauth_token(request: Request) -> Response:
    params = dict(request.query_params)
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        params.update(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    notes(request.scope)["client_id"] = params.get("client_id")
    sim = _sim(request)
    api_domain = sim.config.public_url or str(request.base_url).rstrip("/")
    answer = sim.authority.refresh(params, api_domain)
    return JSONResponse(answer.body, status_code=answer.status)


async def module_collection(request: Request) -> Response:
    module = _module(request)
    sim = _sim(request)
    user = principal_of(request.scope).user
    if request.method == "GET":
        try:
            body = sim.reader.list(
                module,
                request.path_params["version"],
                request.query_params,
                request.headers.get("if-modified-since"),
            )
        except NotModified:
            return Response(status_code=304)
        _returned(request, body)
        return respond(body)
    if request.method == "DELETE":
        ids = [i.strip() for i in request.query_params.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise required_param("ids")
        notes(request.scope)["records"] = len(ids)
        if len(ids) > MAX_RECORDS_PER_CALL:
            raise limit_exceeded(MAX_RECORDS_PER_CALL)
        outcome = sim.writer.delete(module, ids, user)
        return respond(outcome.body(), outcome.http_status())
    _, items = await _records(request)
    if request.method == "POST":
        outcome = sim.writer.insert(module, items, user)
    else:
        outcome = sim.writer.update(module, items, user, _unmodified_since(request))
    return respond(outcome.body(), outcome.http_status())


def _unmodified_since(request: Request) -> int | None:
    """``If-Unmodified-Since`` of an update (epoch ms), None when not sent; a malformed one is a 400."""
    return _sim(request).reader.parse_since(request.headers.get("if-unmodified-since"), "If-Unmodified-Since")


async def upsert(request: Request) -> Response:
    module = _module(request)
    body, items = await _records(request)
    check_fields = body.get("duplicate_check_fields") or []
    if not isinstance(check_fields, list):
        raise ZohoApiError(
            400,
            "INVALID_DATA",
            "duplicate_check_fields must be a JSON array",
            {"api_name": "duplicate_check_fields"},
        )
    outcome = _sim(request).writer.upsert(module, items, principal_of(request.scope).user, check_fields)
    return respond(outcome.body(), outcome.http_status())


async def record_item(request: Request) -> Response:
    module = _module(request)
    sim = _sim(request)
    record_id = request.path_params["record_id"]
    user = principal_of(request.scope).user
    if request.method == "GET":
        body = sim.reader.get(module, record_id, request.query_params, request.path_params["version"])
        _returned(request, body)
        return respond(body)
    if request.method == "DELETE":
        notes(request.scope)["records"] = 1
        outcome = sim.writer.delete(module, [record_id], user)
        return respond(outcome.body(), outcome.http_status())
    _, items = await _records(request)
    if len(items) != 1 or not isinstance(items[0], dict):
        raise ZohoApiError(400, "INVALID_DATA", "give exactly one record to update by id", {"api_name": "data"})
    outcome = sim.writer.update(module, [{**items[0], "id": record_id}], user, _unmodified_since(request))
    return respond(outcome.body(), outcome.http_status())


async def deleted_records(request: Request) -> Response:
    module = _module(request)
    try:
        body = _sim(request).reader.deleted(module, request.query_params, request.headers.get("if-modified-since"))
    except NotModified:
        return Response(status_code=304)
    _returned(request, body)
    return respond(body)


async def search(request: Request) -> Response:
    module = _module(request)
    body = _sim(request).reader.search(module, request.query_params, request.path_params["version"])
    _returned(request, body)
    return respond(body)


def api_routes() -> list[Route]:
    """Record routes; more specific routes (metadata, watch, attachments, notes, convert) go before these."""
    base = "/crm/{version}"
    return [
        Route("/oauth/v2/token", oauth_token, methods=["POST"]),
        Route(f"{base}/{{module}}/upsert", upsert, methods=["POST"]),
        Route(f"{base}/{{module}}/deleted", deleted_records, methods=["GET"]),
        Route(f"{base}/{{module}}/search", search, methods=["GET"]),
        Route(f"{base}/{{module}}/{{record_id}}", record_item, methods=["GET", "PUT", "DELETE"]),
        Route(f"{base}/{{module}}", module_collection, methods=["GET", "POST", "PUT", "DELETE"]),
    ]
